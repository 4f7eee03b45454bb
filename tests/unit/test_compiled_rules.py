"""Compiled ruleset files (nkclass rules compile, Classifier.save/load): a
loaded classifier labels exactly as the one it was compiled from (dated
lists included); truncated, damaged, foreign and other-version files are
refused with the byte offset. The C interface reads the same files
(tests/c/)."""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nkclass
from nkclass.asn import AsDatabase
from nkclass.classify import AS_COLUMNS, LABEL_COLUMNS
from nkclass.cli import main
from nkclass.errors import CompiledRulesError
from nkclass.lists import DatedList, read_dated_list
from nkclass.lists.files import utc_ms
from nkclass.rules import load_rules
from nkclass.rules.compiled import FORMAT_VERSION

DATA = Path(__file__).parent.parent / "data"
SMALL_RULES = DATA / "rules" / "small.toml"
SMALL_AS = DATA / "asn" / "ip2asn-sample.tsv"
HEADER = 32
DATED_TAGS = (b"DTP4", b"DTP6", b"DTVD", b"DTIV")


def small_classifier(asn: bool = True, dated: bool = False) -> nkclass.Classifier:
    database = AsDatabase.open(SMALL_AS, cache=False) if asn else False
    rules = load_rules(SMALL_RULES, defaults=False)
    if dated:
        rules = rules.with_dated_lists(*small_dated_lists())
    return nkclass.Classifier(rules, asn=database)


def small_dated_lists() -> list[DatedList]:
    """The test lists of pool endpoints (per-row services, IPv4) and VPN
    endpoints (IPv4 and IPv6)."""
    lists = DATA / "lists"
    return [read_dated_list(lists / "mining-pools.csv", "csv", service="pool-endpoints",
                            category="mining"),
            read_dated_list(lists / "vpn-endpoints.tsv", "csv", service="vpn-endpoints",
                            category="vpn")]


@pytest.fixture(scope="module")
def dated_bytes() -> bytes:
    return small_classifier(asn=False, dated=True).compiled_bytes()


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
    assert (version, flags, length, sections) == (FORMAT_VERSION, 1, len(small_bytes), 23)
    plain = small_classifier(asn=False).compiled_bytes()
    assert struct.unpack_from("<IIQI", plain, 8)[1:] == (0, len(plain), 18)


# ------------------------------------------------------------ dated lists

def dated_batch(addresses: list[str], times: list[str]) -> dict:
    """One flow from 192.0.2.7 (watched in small.toml, so that the other
    end is the peer) to each address at each time (tcp/443)."""
    pairs = [(a, t) for a in addresses for t in times]
    n = len(pairs)
    start = np.array([utc_ms(t) for _, t in pairs], np.int64)
    return {
        "src_ip": ["192.0.2.7"] * n,
        "dst_ip": [a for a, _ in pairs],
        "src_port": np.full(n, 50000, np.uint16),
        "dst_port": np.full(n, 443, np.uint16),
        "protocol": np.full(n, 6, np.uint8),
        "ts_start": start,
        "ts_end": start + 1000,
    }


def test_dated_lists_travel_in_the_file_and_label_by_flow_time():
    built = small_classifier(asn=False, dated=True)
    loaded = nkclass.load_compiled(built.compiled_bytes())
    assert loaded._compiled.dated_prefixes == ("192.0.2.10/32", "198.51.100.64/28",
                                               "203.0.113.77/32", "2001:db8:100::/48",
                                               "198.51.100.200/32")
    batch = dated_batch(["192.0.2.10", "198.51.100.70", "203.0.113.77", "198.51.100.200",
                         "2001:db8:100::9", "192.0.2.11"],
                        ["2017-12-31", "2018-03-01 12:00:00", "2019-05-10", "2019-06-15",
                         "2019-07-01", "2020-01-01"])
    a, b = built.classify(batch), loaded.classify(batch)
    assert_same_labels(a, b)
    services = b.names("service")
    evidence = b.names("evidence")
    # the lists name their services while their rows hold, and only then
    # (flow = address * 6 + time)
    assert services[0 * 6 + 2] == "supportxmr" and services[0 * 6 + 4] != "supportxmr"
    assert services[1 * 6 + 2] == "minexmr" and services[1 * 6 + 3] != "minexmr"
    assert services[2 * 6 + 3] == "moneroocean" and services[2 * 6 + 2] == "pool-x"
    assert services[3 * 6 + 1] == "vpn-endpoints" and services[3 * 6 + 2] != "vpn-endpoints"
    assert services[4 * 6 + 0] != "vpn-endpoints" and services[4 * 6 + 1] == "vpn-endpoints"
    assert sum("ip_list" in e for e in evidence) >= 6
    # without start times the dated lists match nothing, in both
    untimed = {k: v for k, v in batch.items() if k not in ("ts_start", "ts_end")}
    assert_same_labels(built.classify(untimed), loaded.classify(untimed))
    assert "supportxmr" not in loaded.classify(untimed).names("service")


def test_dated_file_header_sections_and_exact_round_trip(dated_bytes):
    version, flags, length, sections = struct.unpack_from("<IIQI", dated_bytes, 8)
    assert (version, flags, length, sections) == (FORMAT_VERSION, 2, len(dated_bytes), 22)
    assert all(tag in dated_bytes for tag in DATED_TAGS)
    assert nkclass.load_compiled(dated_bytes).compiled_bytes() == dated_bytes
    with_as = small_classifier(asn=True, dated=True)
    data = with_as.compiled_bytes()
    assert struct.unpack_from("<IIQI", data, 8)[1:] == (3, len(data), 27)
    loaded = nkclass.load_compiled(data)
    assert loaded.compiled_bytes() == data
    batch = dated_batch(["192.0.2.10", "8.8.8.8", "2001:db8:100::9"], ["2018-03-01 12:00:00",
                                                                       "2019-05-10"])
    a, b = with_as.classify(batch), loaded.classify(batch)
    assert_same_labels(a, b)
    np.testing.assert_array_equal(a.peer_as, b.peer_as)


def test_the_default_ruleset_with_a_tor_list_labels_identically():
    relays = read_dated_list(DATA / "lists" / "tor-consensus-2019-05-01-00", "tor-consensus",
                             service="tor-relays", category="tor")
    built = nkclass.Classifier(load_rules().with_dated_lists(relays), asn=False)
    loaded = nkclass.load_compiled(built.compiled_bytes())
    hosts = [p.split("/")[0] for p in relays.prefixes[:40]]
    batch = dated_batch(hosts, ["2019-04-30 23:30:00", "2019-05-01 00:30:00",
                                "2019-05-01 03:30:00"])
    a, b = built.classify(batch), loaded.classify(batch)
    assert_same_labels(a, b)
    assert "tor" in a.names("activity")


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_random_dated_lists_label_identically_after_the_round_trip(data):
    prefixes = ("192.0.2.10/32", "192.0.2.0/24", "198.51.100.0/25", "2001:db8:100::/48",
                "2001:db8:100:1::/64", "0.0.0.0/0")
    hours = 3_600_000
    lists = []
    for index in range(data.draw(st.integers(1, 3))):
        n = data.draw(st.integers(0, 12))
        key = data.draw(st.lists(st.integers(0, len(prefixes) - 1), min_size=n, max_size=n))
        start = sorted(data.draw(st.lists(st.integers(0, 40), min_size=n, max_size=n)))
        length = data.draw(st.lists(st.integers(1, 12), min_size=n, max_size=n))
        service = data.draw(st.lists(st.integers(0, 2), min_size=n, max_size=n))
        used = sorted(set(key))
        names = (f"list-{index}", f"list-{index}-a", f"list-{index}-b")
        lists.append(DatedList(
            category=data.draw(st.sampled_from([None, "tor", "vpn", "mining"])),
            services=names,
            prefixes=tuple(prefixes[k] for k in used),
            key=np.array([used.index(k) for k in key], np.uint32),
            start=np.array(start, np.int64) * hours,
            end=(np.array(start, np.int64) + np.array(length, np.int64)) * hours,
            service=np.array(service, np.uint16),
        ))
    built = nkclass.Classifier(load_rules(SMALL_RULES, defaults=False).with_dated_lists(*lists),
                               asn=False)
    data_bytes = built.compiled_bytes()
    loaded = nkclass.load_compiled(data_bytes)
    assert loaded.compiled_bytes() == data_bytes
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    n = 400
    pool = ["192.0.2.10", "192.0.2.99", "198.51.100.3", "203.0.113.9", "2001:db8:100::1",
            "2001:db8:100:1::5", "2001:db8:200::1", "10.1.2.3"]
    start = rng.integers(-2, 55, n).astype(np.int64) * hours + rng.integers(0, hours, n)
    batch = {
        "src_ip": [pool[i] for i in rng.integers(0, len(pool), n)],
        "dst_ip": [pool[i] for i in rng.integers(0, len(pool), n)],
        "src_port": rng.integers(1024, 65536, n).astype(np.uint16),
        "dst_port": rng.choice(np.array([443, 3333, 53, 9001], np.uint16), n),
        "protocol": rng.choice(np.array([6, 17], np.uint8), n),
        "ts_start": start,
        "ts_end": start + 1000,
    }
    assert_same_labels(built.classify(batch), loaded.classify(batch))


def dated_section(data: bytes, tag: bytes) -> tuple[int, int]:
    """(offset of the first item, item count) of a section."""
    at = data.index(tag)
    return at + 16, struct.unpack_from("<Q", data, at + 8)[0]


@pytest.mark.parametrize("damage, message", [
    (lambda d, at: struct.pack_into("<q", d, at + 16, struct.unpack_from("<q", d, at + 8)[0]),
     r"section DTIV row 0: empty validity interval \["),
    (lambda d, at: struct.pack_into("<I", d, at, 99), r"section DTIV row 0: key 99 outside the 5 "
     r"dated prefixes"),
    (lambda d, at: struct.pack_into("<H", d, at + 4, 0), r"section DTIV row 0: verdict 0 outside"),
    (lambda d, at: struct.pack_into("<H", d, at + 4, 9), r"section DTIV row 0: verdict 9 outside "
     r"1\.\.5"),
    (lambda d, at: d.__setitem__(slice(at, at + 48), d[at + 24:at + 48] + d[at:at + 24]),
     r"section DTIV row 1: out of order"),
    (lambda d, at: struct.pack_into("<H", d, at + 6, 1), r"section DTIV row 0: nonzero reserved"),
])
def test_damaged_dated_intervals_are_corrupt_naming_the_row(dated_bytes, damage, message):
    at, count = dated_section(dated_bytes, b"DTIV")
    assert count >= 2
    damaged = bytearray(dated_bytes)
    damage(damaged, at)
    with pytest.raises(CompiledRulesError, match=message) as info:
        nkclass.load_compiled(with_crc(damaged))
    assert info.value.kind == "corrupt"
    assert at <= info.value.offset < at + 48


def test_dated_prefix_and_verdict_codes_are_checked(dated_bytes):
    at, _ = dated_section(dated_bytes, b"DTP4")
    damaged = bytearray(dated_bytes)
    struct.pack_into("<I", damaged, at + 4, 7)  # label 7 for 5 keys
    with pytest.raises(CompiledRulesError, match=r"section DTP4 row 0: label 7 outside 1\.\.5"):
        nkclass.load_compiled(with_crc(damaged))
    at, _ = dated_section(dated_bytes, b"DTVD")
    damaged = bytearray(dated_bytes)
    damaged[at + 12 + 1] = 250  # entry 1's activity
    with pytest.raises(CompiledRulesError, match=r"section DTVD row 1: activity code 250"):
        nkclass.load_compiled(with_crc(damaged))


@pytest.mark.parametrize("version", [1, 2])
def test_a_file_of_a_previous_format_is_refused_as_another_version(dated_bytes, version):
    old = bytearray(dated_bytes)
    struct.pack_into("<I", old, 8, version)
    with pytest.raises(CompiledRulesError, match=f"format version {version}, this library reads "
                       r"3 \(compile the ruleset again") as info:
        nkclass.load_compiled(with_crc(old))
    assert (info.value.kind, info.value.offset) == ("version", 8)


def test_dated_flag_without_its_sections_is_corrupt(small_bytes):
    damaged = bytearray(small_bytes)
    struct.pack_into("<I", damaged, 12, 3)
    with pytest.raises(CompiledRulesError, match="23 sections, expected 27"):
        nkclass.load_compiled(with_crc(damaged))
    struct.pack_into("<I", damaged, 24, 27)
    with pytest.raises(CompiledRulesError,
                       match="section DTP4: header runs past the sections") as info:
        nkclass.load_compiled(with_crc(damaged))
    assert info.value.kind == "corrupt"


# ------------------------------------------------------------ DNS tunnelling thresholds

def test_dns_tunnel_thresholds_travel_in_the_file(tmp_path):
    layer = tmp_path / "dns.toml"
    layer.write_text("[dns_tunnel]\nmin_conditions = 5\nmin_queries = 30\nname_chars = 50\n"
                     "label_bytes = 30\nentropy_bits = 3.75\nnames = 25\nqueries = 150\n",
                     encoding="utf-8")
    rules = load_rules(SMALL_RULES, layer, defaults=False)
    data = nkclass.Classifier(rules, asn=False).compiled_bytes()
    at, items = dated_section(data, b"DNST")
    assert items == 1 and struct.unpack_from("<BBHIQQIId", data, at) == (
        5, 30, 0, 50, 30, 150, 25, 0, 3.75)
    loaded = nkclass.load_compiled(data)
    assert loaded._compiled.image["dns_tunnel"] == rules.dns_tunnel_options.native()
    assert loaded.compiled_bytes() == data
    disabled = tmp_path / "off.toml"
    disabled.write_text("[dns_tunnel]\nenabled = false\n", encoding="utf-8")
    off = nkclass.Classifier(load_rules(SMALL_RULES, disabled, defaults=False), asn=False)
    at, _ = dated_section(off.compiled_bytes(), b"DNST")
    assert off.compiled_bytes()[at] == 0  # min conditions 0: the stage is off


@pytest.mark.parametrize("field, fmt, value, message", [
    (0, "<B", 7, "section DNST: dns_tunnel min_conditions must be 0..6"),
    (1, "<B", 64, "section DNST: dns_tunnel label_bytes must be 1..63"),
    (1, "<B", 0, "section DNST: dns_tunnel label_bytes must be 1..63"),
    (4, "<I", 254, "section DNST: dns_tunnel name_chars must be 1..253"),
    (16, "<Q", 0, "section DNST: dns_tunnel queries must be at least 1"),
    (24, "<I", 0, "section DNST: dns_tunnel names must be at least 1"),
    (32, "<d", float("nan"), r"section DNST: dns_tunnel entropy_bits must be in \(0, 8\]"),
    (32, "<d", 8.5, r"section DNST: dns_tunnel entropy_bits must be in \(0, 8\]"),
    (2, "<B", 1, "section DNST row 0: nonzero reserved byte"),
    (28, "<I", 1, "section DNST row 0: nonzero reserved byte"),
])
def test_a_dns_tunnel_threshold_out_of_range_is_corrupt(small_bytes, field, fmt, value, message):
    at, _ = dated_section(small_bytes, b"DNST")
    damaged = bytearray(small_bytes)
    struct.pack_into(fmt, damaged, at + field, value)
    with pytest.raises(CompiledRulesError, match=message) as info:
        nkclass.load_compiled(with_crc(damaged))
    assert info.value.kind == "corrupt" and at <= info.value.offset < at + 40


# ------------------------------------------------------------ refusals

@pytest.mark.parametrize("which", ["small_bytes", "dated_bytes"])
def test_every_truncation_is_refused_as_truncated(request, which):
    small_bytes = request.getfixturevalue(which)
    for size in range(len(small_bytes)):
        with pytest.raises(CompiledRulesError) as info:
            nkclass.load_compiled(small_bytes[:size])
        assert info.value.kind == "truncated", size
        assert info.value.offset == size


@pytest.mark.parametrize("which", ["small_bytes", "dated_bytes"])
def test_every_flipped_byte_is_refused(request, which):
    small_bytes = request.getfixturevalue(which)
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


def test_damage_in_the_dated_sections_is_refused_or_harmless(dated_bytes):
    """As above, over the dated-list sections: refused with an offset inside
    the file, or the file loads and labels timed flows."""
    batch = dated_batch(["192.0.2.10", "198.51.100.200", "2001:db8:100::9"],
                        ["2018-03-01 12:00:00", "2019-05-10"])
    refused = 0
    for at in range(dated_bytes.index(b"DTP4"), len(dated_bytes) - 4):
        damaged = bytearray(dated_bytes)
        damaged[at] ^= 0xFF
        try:
            clf = nkclass.load_compiled(with_crc(damaged))
        except CompiledRulesError as exc:
            assert exc.kind == "corrupt", (at, exc)
            assert 0 <= exc.offset < len(dated_bytes)
            refused += 1
            continue
        clf.classify(batch)
    assert refused > 0


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


def test_rules_compile_carries_a_ruleset_s_dated_lists(tmp_path, capsys):
    (tmp_path / "pools.csv").write_bytes((DATA / "lists" / "mining-pools.csv").read_bytes())
    rules = tmp_path / "dated.toml"
    rules.write_text('[[dated_list]]\nservice = "pool-endpoints"\ncategory = "mining"\n'
                     'format = "csv"\nfiles = ["pools.csv"]\nsource = "test"\n')
    out = tmp_path / "rules.nkc"
    assert main(["rules", "compile", "--rules", str(SMALL_RULES), "--rules", str(rules),
                 "--no-defaults", "--no-asn", "-o", str(out)]) == 0
    assert "3 dated-list prefixes; AS stage off" in capsys.readouterr().out
    built = nkclass.Classifier(load_rules(SMALL_RULES, rules, defaults=False), asn=False)
    batch = dated_batch(["192.0.2.10", "203.0.113.77"], ["2019-05-10", "2019-06-15"])
    loaded = nkclass.Classifier.load(out).classify(batch)
    assert_same_labels(built.classify(batch), loaded)
    assert loaded.names("service") == ["supportxmr", "supportxmr", "pool-x", "moneroocean"]


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
