"""Compiled ruleset files (nkclass rules compile, Classifier.save/load): a
loaded classifier labels exactly as the one it was compiled from; truncated,
damaged, foreign and other-version files are refused with the byte offset.
The C interface reads the same files (tests/c/)."""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import nkclass
from nkclass.asn import AsDatabase
from nkclass.classify import AS_COLUMNS, LABEL_COLUMNS
from nkclass.cli import main
from nkclass.errors import CompiledRulesError
from nkclass.rules import load_rules
from nkclass.rules.compiled import FORMAT_VERSION

DATA = Path(__file__).parent.parent / "data"
SMALL_RULES = DATA / "rules" / "small.toml"
SMALL_AS = DATA / "asn" / "ip2asn-sample.tsv"
HEADER = 32


def small_classifier(asn: bool = True) -> nkclass.Classifier:
    database = AsDatabase.open(SMALL_AS, cache=False) if asn else False
    return nkclass.Classifier(load_rules(SMALL_RULES, defaults=False), asn=database)


@pytest.fixture(scope="module")
def small_bytes() -> bytes:
    return small_classifier().compiled_bytes()


@pytest.fixture(scope="module")
def default_pair() -> tuple[nkclass.Classifier, nkclass.Classifier]:
    clf = nkclass.Classifier()
    return clf, nkclass.load_compiled(clf.compiled_bytes())


def with_crc(data: bytes | bytearray) -> bytes:
    """``data`` with its checksum recomputed (to reach the checks behind it)."""
    body = bytes(data[:-4])
    return body + struct.pack("<I", zlib.crc32(body))


def assert_same_codes(a: nkclass.Classified, b: nkclass.Classified) -> None:
    for column in LABEL_COLUMNS:
        np.testing.assert_array_equal(getattr(a, column), getattr(b, column), err_msg=column)


def assert_same_labels(a: nkclass.Classified, b: nkclass.Classified) -> None:
    assert_same_codes(a, b)
    assert a.to_arrow().equals(b.to_arrow())


def fixture_batches() -> list[pa.Table]:
    """Every real capture and flow-record fixture, as the readers give them."""
    paths = sorted((DATA / "pcap").glob("*.pcap")) + sorted(
        p for p in (DATA / "flows").iterdir() if p.suffix in (".csv", ".jsonl", ".json", ".log")
    )
    batches = [pa.Table.from_batches([b]) for p in paths for b in nkclass.read(p)]
    assert len(batches) >= 20
    return batches


def random_batch(rng: np.random.Generator, n: int, payloads: list[bytes]) -> dict:
    """Flows between watched, labelled and random addresses, on rule ports
    and random ones, with payloads, measurements and exporter AS numbers."""
    pool_v4 = np.array([0xAF2DB009, 0xAF2DB047, 0xD2346D05, 0x4D5E2301, 0xC0000207,
                        0xCB007101, 0x08080808, 0x01000001, 0x2D390001, 0x0A000001], np.uint32)
    pick = rng.integers(0, len(pool_v4) + 1, size=(2, n))
    addresses = np.where(pick < len(pool_v4), pool_v4[np.minimum(pick, len(pool_v4) - 1)],
                         rng.integers(0, 2**32, size=(2, n), dtype=np.uint32)).astype(np.uint32)
    ports = np.array([80, 443, 3333, 14444, 53, 22, 1194, 51820, 9001, 8333, 123, 5353])
    payload = [payloads[i] if i < len(payloads) else b""
               for i in rng.integers(0, 2 * len(payloads) + 1, size=n)]
    start = 1_500_000_000_000 + np.cumsum(rng.integers(0, 60_000, n))
    return {
        "src_ip": addresses[0],
        "dst_ip": addresses[1],
        "src_port": rng.integers(1024, 65536, n).astype(np.uint16),
        "dst_port": np.where(rng.random(n) < 0.8, rng.choice(ports, n),
                             rng.integers(0, 65536, n)).astype(np.uint16),
        "protocol": rng.choice(np.array([6, 6, 6, 17, 17, 1, 50], np.uint8), n),
        "src_payload": pa.array(payload, pa.binary()),
        "dst_payload": pa.array(payload[::-1], pa.binary()),
        "ts_start": start.astype(np.int64),
        "ts_end": (start + rng.integers(0, 900_000, n)).astype(np.int64),
        "packets": rng.integers(1, 400, n).astype(np.uint64),
        "bytes": rng.integers(40, 40_000, n).astype(np.uint64),
        "tcp_flags": rng.integers(0, 64, n).astype(np.uint8),
        "src_as": rng.choice(np.array([0, 0, 0, 15169, 19281, 64500, 2906], np.uint32), n),
        "dst_as": rng.choice(np.array([0, 0, 15169, 13335, 64500], np.uint32), n),
    }


# ------------------------------------------------------------ same labels

def test_loaded_classifier_labels_the_real_captures_identically(default_pair):
    built, loaded = default_pair
    assert loaded.as_attribution and loaded.asn_database is not None
    for batch in fixture_batches():
        a, b = built.classify(batch), loaded.classify(batch)
        assert_same_labels(a, b)
        for column in AS_COLUMNS[:3]:
            np.testing.assert_array_equal(getattr(a, column), getattr(b, column))
        assert a.names("peer_org") == b.names("peer_org")


@pytest.mark.parametrize("seed", range(4))
def test_loaded_classifier_labels_random_batches_identically(default_pair, seed):
    built, loaded = default_pair
    rng = np.random.default_rng(seed)
    payloads = [bytes(v) for batch in fixture_batches()[:12] if "src_payload" in batch.column_names
                for v in batch.column("src_payload").to_pylist() if v]
    batch = random_batch(rng, 3000, payloads)
    cache_a, cache_b = nkclass.PairCache(ttl=600.0), nkclass.PairCache(ttl=600.0)
    a, b = built.classify(batch, cache=cache_a), loaded.classify(batch, cache=cache_b)
    assert_same_labels(a, b)
    np.testing.assert_array_equal(a.peer_as, b.peer_as)
    np.testing.assert_array_equal(a.src_as, b.src_as)
    assert cache_a.entries()[0].tobytes() == cache_b.entries()[0].tobytes()
    # IPv6 rows of the same flows give the same labels
    as_v6 = dict(batch)
    for side in ("src_ip", "dst_ip"):
        rows = np.zeros((len(batch[side]), 16), np.uint8)
        rows[:, 10:12] = 0xFF
        rows[:, 12:] = batch[side].astype(">u4").view(np.uint8).reshape(-1, 4)
        as_v6[side] = rows
    c, d = built.classify(as_v6), loaded.classify(as_v6)
    assert_same_labels(c, d)
    assert_same_codes(built.classify(batch), d)


def test_small_ruleset_with_its_as_table_labels_identically():
    built = small_classifier()
    loaded = nkclass.load_compiled(built.compiled_bytes())
    assert loaded.paths == ("none", "lab", "annex") and loaded.services == built.services
    batch = random_batch(np.random.default_rng(7), 2000, [b'{"id":1,"method":"login",'
                                                          b'"params":{"login":"x","pass":"y",'
                                                          b'"agent":"xmrig"}}\n'])
    batch["src_ip"][:300] = 0xC0000207  # 192.0.2.7: watched
    batch["dst_ip"][300:600] = 0xCB007101  # 203.0.113.1: pool-x
    a, b = built.classify(batch), loaded.classify(batch)
    assert_same_labels(a, b)
    assert set(a.names("path")) >= {"lab", "none"}
    assert {"mining", "mining_suspect"} <= set(a.names("activity"))
    np.testing.assert_array_equal(a.peer_as, b.peer_as)
    assert a.names("peer_org") == b.names("peer_org")


def test_file_bytes_round_trip_exactly(small_bytes, default_pair):
    assert nkclass.load_compiled(small_bytes).compiled_bytes() == small_bytes
    built, loaded = default_pair
    assert loaded.compiled_bytes() == built.compiled_bytes()


def test_save_and_load_a_file_and_pickle_the_loaded_classifier(tmp_path):
    built = small_classifier(asn=False)
    path = tmp_path / "rules.nkc"
    built.save(path)
    loaded = nkclass.Classifier.load(path)
    assert loaded.rules is None and not loaded.as_attribution
    again = pickle.loads(pickle.dumps(loaded))
    batch = random_batch(np.random.default_rng(3), 500, [])
    assert_same_labels(built.classify(batch), again.classify(batch))


def test_header_names_the_format_version_and_the_as_stage(small_bytes):
    assert small_bytes[:8] == b"\x89NKC\r\n\x1a\n"
    version, flags, length, sections = struct.unpack_from("<IIQI", small_bytes, 8)
    assert (version, flags, length, sections) == (FORMAT_VERSION, 1, len(small_bytes), 22)
    plain = small_classifier(asn=False).compiled_bytes()
    assert struct.unpack_from("<IIQI", plain, 8)[1:] == (0, len(plain), 17)


# ------------------------------------------------------------ refusals

def test_every_truncation_is_refused_as_truncated(small_bytes):
    for size in range(len(small_bytes)):
        with pytest.raises(CompiledRulesError) as info:
            nkclass.load_compiled(small_bytes[:size])
        assert info.value.kind == "truncated", size
        assert info.value.offset == size


def test_every_flipped_byte_is_refused(small_bytes):
    for at in range(len(small_bytes)):
        damaged = bytearray(small_bytes)
        damaged[at] ^= 0x5A
        with pytest.raises(CompiledRulesError) as info:
            nkclass.load_compiled(bytes(damaged))
        expected = ("foreign" if at < 8 else "version" if at < 12 else
                    ("truncated", "corrupt") if 16 <= at < 24 else "corrupt")
        assert info.value.kind in expected, (at, info.value)


def test_damage_behind_a_valid_checksum_is_refused_or_harmless(small_bytes):
    """Every byte flipped with the checksum made to match: the structure and
    codes are checked too, so the file is refused, or it loads and works."""
    loads = 0
    batch = random_batch(np.random.default_rng(1), 64, [b"\x16\x03\x01"])
    for at in range(HEADER, len(small_bytes) - 4):
        damaged = bytearray(small_bytes)
        damaged[at] ^= 0xFF
        try:
            clf = nkclass.load_compiled(with_crc(damaged))
        except CompiledRulesError as exc:
            assert exc.kind in ("corrupt", "version"), (at, exc)
            assert exc.offset is not None
            continue
        loads += 1
        clf.classify(batch)
    assert 0 < loads < len(small_bytes) // 2


@pytest.mark.parametrize("content, kind", [
    (b"", "truncated"),
    (b"\x89NK", "truncated"),
    ((DATA / "pcap" / "dns53.pcap").read_bytes(), "foreign"),
    (b"NKASTAB\0" + bytes(64), "foreign"),
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "foreign"),
])
def test_foreign_and_empty_files_are_refused(content, kind):
    with pytest.raises(CompiledRulesError) as info:
        nkclass.load_compiled(content)
    assert info.value.kind == kind


def test_another_format_version_is_refused_with_both_versions(small_bytes):
    damaged = bytearray(small_bytes)
    struct.pack_into("<I", damaged, 8, FORMAT_VERSION + 1)
    with pytest.raises(CompiledRulesError, match=f"format version {FORMAT_VERSION + 1}, this "
                       f"library reads {FORMAT_VERSION}") as info:
        nkclass.load_compiled(with_crc(damaged))
    assert (info.value.kind, info.value.offset) == ("version", 8)


def test_another_label_vocabulary_is_refused(small_bytes):
    at = small_bytes.index(b"stratum\0")
    damaged = bytearray(small_bytes)
    damaged[at:at + 7] = b"strata_"
    with pytest.raises(CompiledRulesError, match="another label vocabulary") as info:
        nkclass.load_compiled(with_crc(damaged))
    assert info.value.kind == "version"


def test_bytes_after_the_end_and_a_bad_code_are_corrupt(small_bytes):
    with pytest.raises(CompiledRulesError, match="4 bytes after the end") as info:
        nkclass.load_compiled(small_bytes + b"\0" * 4)
    assert info.value.kind == "corrupt"
    # A watched-path row labelled with a path code the names do not have.
    at = small_bytes.index(b"WAT4") + 16
    damaged = bytearray(small_bytes)
    struct.pack_into("<I", damaged, at + 4, 9)
    with pytest.raises(CompiledRulesError, match=r"section WAT4 row 0: label 9 outside 1\.\.2"):
        nkclass.load_compiled(with_crc(damaged))


def test_errors_name_the_file_and_offset(tmp_path, small_bytes):
    path = tmp_path / "cut.nkc"
    path.write_bytes(small_bytes[:100])
    with pytest.raises(CompiledRulesError, match=rf"cut.nkc: at byte 100: truncated: 100 of "
                       rf"{len(small_bytes)} bytes"):
        nkclass.load_compiled(path)


# ------------------------------------------------------------ the command

def test_rules_compile_writes_a_loadable_file_and_says_what_it_holds(tmp_path, capsys):
    out = tmp_path / "rules.nkc"
    assert main(["rules", "compile", "--no-defaults", "--rules", str(SMALL_RULES),
                 "--asn-db", str(SMALL_AS), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"wrote {out}: {out.stat().st_size:,} bytes, format {FORMAT_VERSION}" in said
    assert "2 watched paths" in said and "AS stage on (6 IPv4 + 1 IPv6 AS prefixes)" in said
    assert nkclass.load_compiled(out).paths == ("none", "lab", "annex")
    assert main(["rules", "compile", "--no-defaults", "--rules", str(SMALL_RULES), "--no-asn",
                 "-o", str(out)]) == 0
    assert "AS stage off" in capsys.readouterr().out
    assert not nkclass.load_compiled(out).as_attribution


def test_rules_compile_leaves_no_file_on_bad_rules_and_refuses_a_folder(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[port]]\nprotocol = "tcp"\nports = [70000]\napp = "http"\n')
    out = tmp_path / "rules.nkc"
    assert main(["rules", "compile", "--rules", str(bad), "--no-asn", "-o", str(out)]) == 1
    assert "bad.toml:" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [bad]
    with pytest.raises(SystemExit) as info:
        main(["rules", "compile", "--no-asn", "-o", str(tmp_path)])
    assert info.value.code == 2
