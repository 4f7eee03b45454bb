"""IP-to-AS databases: readers, ties, the compiled cache, lookups."""

from __future__ import annotations

import gzip
import ipaddress
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nkclass.asn import (
    AsDatabase,
    AsDataError,
    CountryTable,
    default_countries,
    default_database,
    detect_format,
)
from nkclass.asn import cache as cache_file
from nkclass.asn.formats import read_country_rows, read_rows
from tests.reference.geoip2fast_ref import write_geoip2fast

DATA = Path(__file__).parent.parent / "data" / "asn"


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


def test_pfx2as_sample_reads_origins_moas_and_as_sets(cache):
    db = AsDatabase.open(DATA / "routeviews-sample.pfx2as", cache=cache)
    assert db.source["format"] == "pfx2as"
    got = db.lookup(["1.0.0.1", "8.8.8.8", "8.1.2.3", "103.0.1.1", "175.45.178.9",
                     "2001:4860::8888", "9.9.9.9"]).tolist()
    # 8.8.8.0/24 inside 8.0.0.0/9: the most specific wins; MOAS and AS sets take
    # their first AS; no match is 0.
    assert got == [13335, 15169, 3356, 4134, 131279, 15169, 0]


def test_iptoasn_ranges_become_prefixes_and_unrouted_rows_are_left_out(cache):
    db = AsDatabase.open(DATA / "ip2asn-sample.tsv", cache=cache)
    assert db.source["format"] == "iptoasn"
    assert db.lookup(["1.0.0.9", "1.0.2.1", "9.9.9.10", "9.9.9.11", "45.57.100.1"]).tolist() == [
        13335, 0, 19281, 0, 2906]
    assert db.org_names(["8.8.8.8", "2001:4860:1::1"]) == ["GOOGLE", "GOOGLE"]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**16)), min_size=1,
                max_size=8))
def test_iptoasn_range_split_covers_exactly_the_range(tmp_path_factory, ranges):
    folder = tmp_path_factory.mktemp("ranges")
    lines, starts = [], []
    cursor = 0
    for gap, size in ranges:  # disjoint ranges in order
        first = min(cursor + gap % 2**20, 2**32 - 1)
        last = min(first + size, 2**32 - 1)
        if first < cursor or first > last:
            break
        lo, hi = ipaddress.IPv4Address(first), ipaddress.IPv4Address(last)
        lines.append(f"{lo}\t{hi}\t{64500 + len(lines)}\tZZ\tx")
        starts.append((first, last))
        cursor = last + 1
        if cursor > 2**32 - 1:
            break
    path = folder / "r.tsv"
    path.write_text("\n".join(lines) + "\n")
    rows = read_rows(path, "iptoasn")
    for i, (first, last) in enumerate(starts):
        expected = list(ipaddress.summarize_address_range(ipaddress.IPv4Address(first),
                                                          ipaddress.IPv4Address(last)))
        mine = rows.v4_where == i + 1
        got = sorted(ipaddress.IPv4Network((int(n), int(b))) for n, b in
                     zip(rows.v4_network[mine], rows.v4_length[mine], strict=True))
        assert got == sorted(expected)


def test_gzipped_text_is_read(tmp_path, cache):
    path = tmp_path / "x.pfx2as.gz"
    path.write_bytes(gzip.compress((DATA / "routeviews-sample.pfx2as").read_bytes()))
    assert AsDatabase.open(path, cache=cache).lookup(["8.8.8.8"]).tolist() == [15169]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("1.0.0.0\t24\t13335\n8.8.8.0\t24\n", 2, "expected 3 tab-separated fields"),
        ("1.0.0.0\t24\t13335\n8.8.8.0\t24\tAS15169\n", 2, "is not an integer"),
        ("1.0.0.0\t24\t13335\n\n8.8.8.1\t24\t15169\n", 3, "host bits"),
        ("1.0.0.0\t40\t13335\n", 1, "above 32"),
        ("1.0.0.0\t24\t13335\n999.0.0.0\t8\t1\n", 2, "not an IP address"),
    ],
)
def test_malformed_pfx2as_names_the_line(tmp_path, text, line, message):
    path = tmp_path / "bad.pfx2as"
    path.write_text(text)
    with pytest.raises(AsDataError, match=message) as err:
        read_rows(path, "pfx2as")
    assert err.value.line == line and err.value.path == str(path)


def test_malformed_iptoasn_names_the_line(tmp_path):
    path = tmp_path / "bad.tsv"
    path.write_text("1.0.0.0\t1.0.0.255\t13335\tUS\tX\n8.8.8.9\t8.8.8.0\t15169\tUS\tG\n")
    with pytest.raises(AsDataError, match="ends before it starts") as err:
        read_rows(path, "iptoasn")
    assert err.value.line == 2


def test_a_repeated_prefix_is_a_tie_naming_both_lines(tmp_path):
    path = tmp_path / "tie.pfx2as"
    path.write_text("8.8.8.0\t24\t15169\n8.0.0.0\t9\t3356\n8.8.8.0\t24\t3356\n")
    with pytest.raises(AsDataError, match="line 3 repeats the one at line 1") as err:
        AsDatabase.open(path, cache=False)
    assert err.value.line == 3


def test_unknown_format_names_the_first_line(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("# comment\nhello world\n")
    with pytest.raises(AsDataError, match="not a known IP-to-AS format") as err:
        detect_format(path)
    assert err.value.line == 2


# ---------------------------------------------------------------- MaxMind DB


def write_mmdb(path: Path, records: dict[str, dict]) -> None:
    from mmdb_writer import MmdbU32, MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-ASN", ipv4_compatible=True)
    for prefix, record in records.items():
        record = {k: MmdbU32(v) if isinstance(v, int) else v for k, v in record.items()}
        writer.insert_network(IPSet([prefix]), record)
    writer.to_db_file(str(path))


def test_geolite2_and_ipinfo_style_mmdb_files_are_read(tmp_path, cache):
    geolite = tmp_path / "GeoLite2-ASN.mmdb"
    write_mmdb(geolite, {
        "8.8.8.0/24": {"autonomous_system_number": 15169,
                       "autonomous_system_organization": "GOOGLE"},
        "2a03:2880::/32": {"autonomous_system_number": 32934,
                           "autonomous_system_organization": "FACEBOOK"},
    })
    ipinfo = tmp_path / "asn.mmdb"
    write_mmdb(ipinfo, {"1.1.1.0/24": {"asn": "AS13335", "name": "Cloudflare, Inc."}})
    assert detect_format(geolite) == "mmdb"
    db = AsDatabase.open(geolite, cache=cache)
    assert db.lookup(["8.8.8.8", "2a03:2880:1::1", "1.1.1.1"]).tolist() == [15169, 32934, 0]
    assert db.org_names(["2a03:2880:1::1"]) == ["FACEBOOK"]
    db = AsDatabase.open(ipinfo, cache=cache)
    assert db.lookup(["1.1.1.1"]).tolist() == [13335]
    assert db.org_names(["1.1.1.1"]) == ["Cloudflare, Inc."]


def test_truncated_mmdb_names_the_file_and_offset(tmp_path):
    path = tmp_path / "GeoLite2-ASN.mmdb"
    write_mmdb(path, {"8.8.8.0/24": {"autonomous_system_number": 15169}})
    data = path.read_bytes()
    cut = tmp_path / "cut.mmdb"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(AsDataError) as err:
        read_rows(cut, "mmdb")
    assert err.value.path == str(cut) and err.value.offset == len(data) // 2


# ---------------------------------------------------------------- geoip2fast (the extra's data)


def test_default_database_is_the_geolite2_extract_with_500k_ipv4_prefixes():
    db = default_database()
    assert db is not None, "nkclass[asn] is part of the test extra"
    v4, v6 = db.prefix_count
    assert v4 >= 500_000 and v6 >= 100_000
    assert db.org_names(["8.8.8.8", "1.1.1.1"]) == ["GOOGLE", "CLOUDFLARENET"]
    # The package's own labels for reserved ranges ("IANA.ORG") are left out.
    assert db.org_names(["10.1.2.3"]) == [""]


def test_a_pickle_naming_a_class_is_refused(tmp_path):
    path = tmp_path / "evil.dat.gz"
    path.write_bytes(gzip.compress(pickle.dumps(Path("/etc"))))
    with pytest.raises(AsDataError, match="refusing to load the class"):
        read_rows(path, "geoip2fast")


COUNTRIES = [
    ("10.0.0.0/8", "10:Private Network Class C"),  # the package's own reserved label
    ("203.0.113.0/24", "NZ:New Zealand"),
    ("198.51.100.0/24", "JP:Japan"),
    ("198.51.100.128/25", "MY:Malaysia"),
    ("2001:db8::/32", "NP:Nepal"),
]
ORGS = [("203.0.113.0/24", "EXAMPLE-NET"), ("198.51.100.0/24", "OTHER-NET")]
PROBE = ["203.0.113.9", "10.1.1.1", "198.51.100.1", "198.51.100.200", "2001:db8::1", "8.8.8.8"]


@pytest.mark.parametrize("with_asn", [False, True], ids=["country-only", "country-and-asn"])
def test_country_table_reads_both_geoip2fast_layouts_without_reserved_labels(
    tmp_path, cache, with_asn
):
    path = write_geoip2fast(tmp_path / "geo.dat.gz", COUNTRIES, ORGS if with_asn else None)
    table = CountryTable.open(path, cache=cache)
    assert table.codes(PROBE) == ["NZ", "", "JP", "MY", "NP", ""]
    again = CountryTable.open(path, cache=cache)  # from the compiled cache
    assert again.codes(PROBE) == table.codes(PROBE)
    assert pickle.loads(pickle.dumps(table)).codes(PROBE) == table.codes(PROBE)


def test_country_and_as_tables_of_one_file_are_cached_apart(tmp_path, cache):
    path = write_geoip2fast(tmp_path / "geo.dat.gz", COUNTRIES, ORGS)
    for _ in range(2):  # the second time both load from the cache
        assert AsDatabase.open(path, cache=cache).org_names(PROBE[:3]) == [
            "EXAMPLE-NET", "", "OTHER-NET"]
        assert CountryTable.open(path, cache=cache).codes(PROBE[:3]) == ["NZ", "", "JP"]
    assert len(list((cache / "asn").glob("*.nkas"))) == 2


def test_a_geoip2fast_file_without_country_data_is_an_error_naming_it(tmp_path):
    path = tmp_path / "asn-only.dat.gz"
    info = {"country": False, "asn": True}
    path.write_bytes(gzip.compress(pickle.dumps((120, info, 0, [[]] * 10))))
    with pytest.raises(AsDataError, match="unexpected geoip2fast data layout") as err:
        read_country_rows(path)
    assert err.value.path == str(path)
    only_reserved = write_geoip2fast(tmp_path / "reserved.dat.gz", COUNTRIES[:1])
    with pytest.raises(AsDataError, match="no country prefixes"):
        read_country_rows(only_reserved)


def test_default_countries_are_the_geolite2_country_data_of_the_extra():
    table = default_countries()
    assert table is not None, "nkclass[asn] is part of the test extra"
    assert table.codes(["8.8.8.8", "175.45.176.1", "10.1.2.3"]) == ["US", "KP", ""]


# ---------------------------------------------------------------- the compiled cache


def cached_file(cache: Path) -> Path:
    files = list((cache / "asn").glob("*.nkas"))
    assert len(files) == 1
    return files[0]


def test_cache_round_trip_gives_the_same_table(cache):
    first = AsDatabase.open(DATA / "ip2asn-sample.tsv", cache=cache)
    data = cached_file(cache).read_bytes()
    second = AsDatabase(cache_file.decode(data))
    probe = ["1.0.0.9", "8.8.8.8", "45.57.1.1", "2001:4860::1", "9.9.9.9"]
    assert second.lookup(probe).tolist() == first.lookup(probe).tolist()
    assert second.org_names(probe) == first.org_names(probe)
    assert not list((cache / "asn").glob("*.tmp"))  # written through a rename


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: d[: len(d) - 40], "checksum"),
        (lambda d: b"XXXXXXXX" + d[8:], "bad magic"),
        (lambda d: d[:8] + b"\x09\x00\x00\x00" + d[12:], "format version 9"),
        (lambda d: d[:10], "truncated"),
        (lambda d: d[:200] + bytes([d[200] ^ 1]) + d[201:], "checksum"),
    ],
)
def test_a_damaged_cache_is_detected_and_rebuilt(cache, damage, message):
    source = DATA / "routeviews-sample.pfx2as"
    AsDatabase.open(source, cache=cache)
    path = cached_file(cache)
    good = path.read_bytes()
    path.write_bytes(damage(good))
    with pytest.raises(AsDataError, match=message):
        cache_file.decode(path.read_bytes(), str(path))
    db = AsDatabase.open(source, cache=cache)  # rebuilt, not trusted
    assert db.lookup(["8.8.8.8"]).tolist() == [15169]
    assert path.read_bytes() == good


def test_a_cache_of_another_source_is_not_used(cache, tmp_path):
    source = tmp_path / "a.pfx2as"
    source.write_text("8.8.8.0\t24\t15169\n")
    AsDatabase.open(source, cache=cache)
    path = cached_file(cache)
    other = tmp_path / "b.pfx2as"
    other.write_text("8.8.8.0\t24\t64500\n")
    AsDatabase.open(other, cache=cache)
    # Plant a's table under b's key: the stored source hash does not match.
    b_path = next(p for p in (cache / "asn").glob("*.nkas") if p != path)
    b_path.write_bytes(path.read_bytes())
    assert AsDatabase.open(other, cache=cache).lookup(["8.8.8.8"]).tolist() == [64500]


def test_database_pickles(cache):
    db = AsDatabase.open(DATA / "ip2asn-sample.tsv", cache=cache)
    back = pickle.loads(pickle.dumps(db))
    assert back.lookup(["8.8.8.8"]).tolist() == [15169]
    assert back.org_names(["1.0.0.1"]) == ["CLOUDFLARENET"]


# ---------------------------------------------------------------- lookups against a reference


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(4, 32), st.integers(1, 2**31)),
             min_size=1, max_size=40, unique_by=lambda t: (t[0] >> (32 - t[1]), t[1])),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=60),
)
def test_lookups_match_a_slow_longest_prefix_reference(prefixes, probes):
    nets = [ipaddress.IPv4Network((a >> (32 - n) << (32 - n), n)) for a, n, _ in prefixes]
    db = AsDatabase.from_prefixes([str(n) for n in nets], [asn for _, _, asn in prefixes])

    def reference(addr: int) -> int:
        best = None
        for net, (_, _, asn) in zip(nets, prefixes, strict=True):
            if ipaddress.IPv4Address(addr) in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, asn)
        return 0 if best is None else best[1]

    got = db.lookup(np.array(probes, np.uint32)).tolist()
    assert got == [reference(a) for a in probes]
