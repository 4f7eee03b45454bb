"""The classifier's AS stage, [[asn]] rules and published prefix lists."""

from __future__ import annotations

import ipaddress
import pickle
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import nkclass
from nkclass.asn import AsDatabase
from nkclass.errors import RuleError
from nkclass.rules import rules_from_text
from nkclass.rules.published import read_prefix_list

DATA = Path(__file__).parent.parent / "data" / "asn"
KP = "175.45.176.9"


def flows(dst, dst_port=443, **extra):
    n = len(dst)
    batch = {
        "src_ip": [KP] * n, "dst_ip": dst,
        "src_port": np.full(n, 50000), "dst_port": np.full(n, dst_port),
        "protocol": np.full(n, 6),
    }
    batch.update(extra)
    return batch


@pytest.fixture(scope="module")
def clf():
    return nkclass.Classifier()


def row(result, i=0):
    table = result.to_arrow().to_pylist()[i]
    return {k: table[k] for k in ("service", "activity", "confidence", "evidence", "peer_as",
                                  "peer_org", "src_as", "dst_as")}


def test_as_attribution_is_on_by_default_with_the_extra(clf):
    assert clf.as_attribution and clf.asn_database is not None
    got = row(clf.classify(flows(["45.57.1.1"])))  # Netflix (AS2906, "AS-SSI")
    assert got["service"] == "netflix" and got["activity"] == "streaming"
    assert got["confidence"] == "medium" and "asn" in got["evidence"].split("|")
    assert got["peer_org"] == "AS-SSI"


def test_a_multi_tenant_cloud_is_the_cloud_at_low_confidence(clf):
    got = row(clf.classify(flows(["13.107.21.200", "34.96.0.1"])), 1)  # a GCP address
    assert got["service"] == "gcp" and got["activity"] == "vps_hosting"
    assert got["confidence"] == "low"


def test_a_port_rule_beats_a_cloud_guess_of_equal_rank(clf):
    got = row(clf.classify(flows(["34.96.0.1"], dst_port=22)))
    assert got["service"] == "gcp" and got["activity"] == "remote_admin"


def test_asn_false_turns_the_stage_off():
    plain = nkclass.Classifier(asn=False)
    result = plain.classify(flows(["45.57.1.1"]))
    assert result.names("service") == ["none"]
    assert "peer_org" not in result.to_arrow().column_names
    with pytest.raises(ValueError, match="AS stage"):
        _ = result.peer_as


def test_exporter_as_fields_are_used_and_reported(clf):
    result = clf.classify(flows(["192.0.2.1", "45.57.1.1"], dst_as=np.array([16509, 0])))
    aws, netflix = row(result, 0), row(result, 1)
    assert aws["service"] == "aws" and aws["dst_as"] == 16509 and aws["peer_as"] == 16509
    assert aws["peer_org"] == "Amazon Web Services"  # the ruleset's name: no table entry
    assert netflix["service"] == "netflix" and netflix["dst_as"] == 0  # names-only table


def test_exporter_as_fields_work_without_a_table():
    no_table = nkclass.Classifier(asn=AsDatabase.from_prefixes(["198.51.100.0/24"], [64500]))
    result = no_table.classify(flows(["192.0.2.1", "198.51.100.7"],
                                     dst_as=np.array([32934, 0])))
    assert result.names("service")[0] == "meta"
    assert result.dst_as.tolist() == [32934, 64500]


def test_exporter_numbers_resolve_as_a_search_would_small_and_large():
    """AS numbers below DENSE_LIMIT go through a table, larger ones through a
    search: both give the entry ids a sorted search gives."""
    from nkclass.asn.attribution import DENSE_LIMIT

    db = AsDatabase.from_prefixes(["198.51.100.0/24", "203.0.113.0/24", "192.0.2.0/24"],
                                  [64500, 4_200_000_001, DENSE_LIMIT])
    attribution = nkclass.Classifier(asn=db)._compiled.attribution
    keys, ids = attribution.number_keys, attribution.number_ids
    rng = np.random.default_rng(3)
    numbers = np.concatenate([rng.choice(keys, 500), rng.integers(0, 2**32, 500),
                              keys - 1, keys + 1, [0, 2**32 - 1, len(attribution.number_table)]])
    numbers = numbers.astype(np.uint32)
    at = np.minimum(np.searchsorted(keys, numbers), len(keys) - 1)
    expected = np.where((keys[at] == numbers) & (numbers != 0), ids[at], 0)
    assert attribution.ids_for_numbers(numbers).tolist() == expected.tolist()
    assert attribution.ids_for_numbers(np.array([4_200_000_001], np.uint32))[0] != 0


def test_the_peer_is_the_unwatched_side(clf):
    batch = {"src_ip": ["45.57.1.1"], "dst_ip": [KP], "src_port": np.array([443]),
             "dst_port": np.array([50000]), "protocol": np.array([6])}
    got = row(clf.classify(batch))
    assert got["service"] == "netflix" and got["peer_org"] == "AS-SSI"


@pytest.mark.parametrize("given", ["both", "src_as", "dst_as", "none"])
def test_peer_as_across_chunks_takes_the_exporter_number_of_the_peer_side(given):
    """20,000 flows (past the chunk the AS stage looks ahead by), the
    watched host on either side at random: the peer's AS, which names the
    service, is the exporter's number on the peer's side where nonzero, else
    the table's."""
    db = AsDatabase.from_prefixes(["198.51.100.0/24"], [16509])  # aws
    clf = nkclass.Classifier(asn=db)
    rng = np.random.default_rng(11)
    n = 20_000
    outside = (0xC6336400 + rng.integers(0, 256, n)).astype(np.uint32)
    watched = np.full(n, int(ipaddress.IPv4Address(KP)), np.uint32)
    peer_is_src = rng.random(n) < 0.5
    numbers = {side: rng.choice(np.array([0, 0, 32934, 2906], np.uint32), n)  # -, -, meta, netflix
               for side in ("src_as", "dst_as")}
    batch = {"src_ip": np.where(peer_is_src, outside, watched),
             "dst_ip": np.where(peer_is_src, watched, outside),
             "src_port": np.full(n, 50000, np.uint16), "dst_port": np.full(n, 50000, np.uint16),
             "protocol": np.full(n, 6, np.uint8)}
    batch.update({side: numbers[side] for side in numbers if given in (side, "both")})
    none = np.zeros(n, np.uint32)
    peer_given = np.where(peer_is_src, batch.get("src_as", none), batch.get("dst_as", none))
    expected = np.select([peer_given == 32934, peer_given == 2906], ["meta", "netflix"], "aws")
    result = clf.classify(batch)
    assert result.names("service") == expected.tolist()
    assert result.peer_as.tolist() == np.where(peer_given != 0, peer_given, 16509).tolist()


def test_as_verdicts_hold_in_blocks_where_they_are_rare_and_where_they_are_common():
    """Blocks of 512 flows whose peers have an AS verdict none, rarely, often
    or always (the flow loop offers the verdict on a branch where it is rare):
    every flow is labelled as the same flow classified alone."""
    db = AsDatabase.from_prefixes(["198.51.100.0/24", "203.0.113.0/24"], [16509, 64500])
    clf = nkclass.Classifier(asn=db)
    rng = np.random.default_rng(5)
    in_aws = np.concatenate([rng.random(512) < share for share in (0, 0.01, 0.1, 0.5, 0.9, 1)])
    in_aws = np.concatenate([in_aws, rng.random(3000) < 0.05])
    n = len(in_aws)
    dst = np.where(in_aws, 0xC6336400, 0xCB007100).astype(np.uint32) + rng.integers(0, 256, n)
    columns = ("service", "activity", "confidence", "evidence", "peer_as")

    def batch(addresses):
        return {"src_ip": np.full(len(addresses), int(ipaddress.IPv4Address(KP)), np.uint32),
                "dst_ip": addresses.astype(np.uint32),
                "src_port": np.full(len(addresses), 50000, np.uint16),
                "dst_port": np.full(len(addresses), 443, np.uint16),
                "protocol": np.full(len(addresses), 6, np.uint8)}

    alone = {inside: row(clf.classify(batch(np.array([0xC6336407 if inside else 0xCB007107]))))
             for inside in (True, False)}
    assert alone[True]["service"] == "aws" and alone[False]["service"] != "aws"
    got = clf.classify(batch(dst)).to_arrow().select(list(columns)).to_pylist()
    expected = [{k: alone[bool(inside)][k] for k in columns} for inside in in_aws]
    assert got == expected


@pytest.mark.parametrize("field", ["activity", "evidence", "service"])
def test_a_native_as_stage_whose_verdict_0_has_an_opinion_is_refused(field):
    """Verdict 0 is what peers without an AS rule get: the flow loop may skip
    it, so it must say nothing."""
    from nkclass import _core

    u1, u2, u4 = np.uint8, np.uint16, np.uint32

    def table():
        return _core.PrefixTable(np.array([], u4), np.array([], u1), np.array([], u4),
                                 np.zeros((0, 16), u1), np.array([], u1), np.array([], u4))

    codes, evidence, services = np.zeros((2, 3), u1), np.array([0, 256], u2), np.zeros(2, u4)
    codes[1, 1] = codes[0, 1] = _core.ACTIVITY_NAMES.index("vps_hosting")
    codes[1, 2] = _core.RANKS["asn"]
    if field != "activity":
        codes[0, 1] = 0
        (evidence if field == "evidence" else services)[0] = 1
    ports = _core.PortTable(np.array([], u1), np.array([], u2), np.array([], u2))
    with pytest.raises(_core.BuildError, match="AS verdict 0 must be empty"):
        _core.Classifier(table(), table(), ports, np.zeros((1, 3), u1), np.zeros(1, u2),
                         np.zeros((1, 3), u1), np.zeros(1, u2), np.zeros(1, u1),
                         np.arange(len(_core.ACTIVITY_NAMES), dtype=u2), as_table=table(),
                         as_codes=codes, as_evidence=evidence, as_services=services,
                         as_entry_verdict=np.array([0, 1], u2))


def test_sni_beats_the_as(clf):
    from tests.reference.sni_ref import build_client_hello

    batch = flows(["45.57.1.1"], src_payload=[build_client_hello([(0, b"www.youtube.com")])])
    got = row(clf.classify(batch))
    assert got["service"] == "youtube" and "sni" in got["evidence"]


def test_a_published_list_is_ip_list_at_medium(clf):
    got = row(clf.classify(flows(["149.154.167.50", "104.16.1.1"])))
    assert got["service"] == "telegram" and got["activity"] == "social"
    assert "ip_list" in got["evidence"].split("|") and got["confidence"] == "medium"
    cdn = row(clf.classify(flows(["104.16.1.1"])))
    assert cdn["service"] == "cloudflare" and cdn["activity"] == "web_other"


def test_classifier_with_a_database_pickles():
    db = AsDatabase.open(DATA / "ip2asn-sample.tsv", cache=False)
    clf = nkclass.Classifier(asn=db)
    back = pickle.loads(pickle.dumps(clf))
    assert back.classify(flows(["45.57.1.1"])).names("service") == ["netflix"]


def test_a_database_path_opens_that_database(tmp_path, monkeypatch):
    monkeypatch.setenv("NKCLASS_CACHE_DIR", str(tmp_path))
    clf = nkclass.Classifier(asn=DATA / "routeviews-sample.pfx2as")
    result = clf.classify(flows(["8.8.8.8", "2a03:2880::1"]))
    assert result.dst_as.tolist() == [15169, 32934]
    assert result.names("service") == ["google-public-dns", "meta"]


# ---------------------------------------------------------------- [[asn]] rules


def test_asn_rules_parse_and_layer():
    rules = rules_from_text(
        '[[asn]]\nservice = "mine"\norg = "Mine Ltd"\ncategory = "gaming"\n'
        'confidence = "medium"\nasns = [2906, "AS64500"]\nsource = "test"\n'
    )
    mine = next(a for a in rules.asns if a.service == "mine")
    assert mine.asns == (2906, 64500)
    netflix = next(a for a in rules.asns if a.service == "netflix")
    assert 2906 not in netflix.asns  # the later layer took AS2906
    clf = nkclass.Classifier(rules, asn=False)
    assert clf.rules.asns[-1].service == "mine"


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ('[[asn]]\nservice = "a"\norg = "A"\nasns = [1]\n\n[[asn]]\nservice = "b"\norg = "B"\n'
         "asns = [2, 1]\n", 9, "AS1 is already listed by asn"),
        ('[[asn]]\nservice = "a"\norg = "A"\nasns = [0]\n', 4, "is not an AS number"),
        ('[[asn]]\nservice = "a"\norg = "A"\n', 1, "needs asns or as_names"),
        ('[[asn]]\nservice = "a"\norg = "A"\nasns = [1]\nconfidence = "high"\n', 5,
         "confidence"),
    ],
)
def test_bad_asn_entries_name_file_and_line(text, line, message):
    with pytest.raises(RuleError, match=message) as err:
        rules_from_text(text, name="mine.toml")
    assert err.value.line == line and err.value.path == "mine.toml"


def test_builtin_asn_entries_all_have_a_source():
    rules = nkclass.load_rules()
    assert len(rules.asns) >= 40
    assert all(a.source for a in rules.asns)
    assert all(n.source for n in rules.networks)


# ---------------------------------------------------------------- published list formats


def test_aws_ip_ranges_keep_each_prefix_once_with_its_line():
    got = read_prefix_list(DATA / "aws-ip-ranges-sample.json", "aws-ip-ranges")
    assert got == [("3.5.140.0/22", 6), ("52.95.110.0/24", 18), ("2600:1f00::/24", 26)]


def test_google_ranges_read_both_families():
    got = read_prefix_list(DATA / "google-goog-sample.json", "google-ip-ranges")
    assert [p for p, _ in got] == ["8.8.4.0/24", "8.8.8.0/24", "2001:4860::/32"]


def test_published_lists_load_through_a_ruleset(tmp_path):
    (tmp_path / "ranges.json").write_bytes((DATA / "aws-ip-ranges-sample.json").read_bytes())
    rules_file = tmp_path / "aws.toml"
    rules_file.write_text('[[network]]\nservice = "aws-published"\ncategory = "vps_hosting"\n'
                          'prefix_file = "ranges.json"\nprefix_format = "aws-ip-ranges"\n')
    clf = nkclass.Classifier(nkclass.load_rules(rules_file), asn=False)
    got = clf.classify(flows(["52.95.110.7"]))
    assert got.names("service") == ["aws-published"] and got.names("confidence") == ["medium"]


def test_malformed_published_json_names_the_line(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"prefixes": [\n  {"ipv4Prefix": "8.8.8.0/24"},\n  {"ipv4Prefix": }\n]}\n')
    with pytest.raises(RuleError) as err:
        read_prefix_list(bad, "google-ip-ranges")
    assert err.value.line == 3
    bad.write_text('{"prefixes": [{"ipv4Prefix": "8.8.8.0/24"}, {"other": 1}]}')
    with pytest.raises(RuleError, match=r"prefixes\[1\] has neither"):
        read_prefix_list(bad, "google-ip-ranges")


def test_a_bad_prefix_in_a_published_list_names_its_line(tmp_path):
    (tmp_path / "list.json").write_text(
        '{"addresses": [\n"23.235.32.0/20",\n"23.235.32.1/20"\n]}\n')
    rules_file = tmp_path / "r.toml"
    rules_file.write_text('[[network]]\nservice = "cdn"\nprefix_file = "list.json"\n'
                          'prefix_format = "fastly-public-ip-list"\n')
    with pytest.raises(RuleError, match="host bits") as err:
        nkclass.load_rules(rules_file)
    assert err.value.line == 3


# ---------------------------------------------------------------- command line


def test_cli_classify_writes_as_columns_and_no_asn_turns_them_off(tmp_path):
    import pyarrow.parquet as pq

    from nkclass.cli import main

    pcap = Path(__file__).parent.parent / "data" / "pcap" / "tls-chrome-google.pcap"
    on, off = tmp_path / "on.parquet", tmp_path / "off.parquet"
    assert main(["classify", str(pcap), "-o", str(on)]) == 0
    assert main(["classify", str(pcap), "-o", str(off), "--no-asn"]) == 0
    with_as = pq.read_table(on)
    assert with_as.column("peer_org").to_pylist() == ["GOOGLE"]
    assert "peer_org" not in pq.read_table(off).column_names


def test_cli_asn_db_uses_that_database(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from nkclass.cli import main

    monkeypatch.setenv("NKCLASS_CACHE_DIR", str(tmp_path / "cache"))
    pcap = Path(__file__).parent.parent / "data" / "pcap" / "tls-chrome-google.pcap"
    db = tmp_path / "mine.pfx2as"
    db.write_text("74.125.0.0\t16\t15169\n")
    out = tmp_path / "out.parquet"
    assert main(["classify", str(pcap), "-o", str(out), "--asn-db", str(db)]) == 0
    assert pq.read_table(out).column("peer_as").to_pylist() == [15169]



def test_peer_org_is_a_dictionary_of_distinct_names():
    """A table's name can equal a rule's organisation (and tables repeat
    names): the column still has one category per name, so it converts to
    pandas."""
    db = AsDatabase.from_prefixes(["192.0.2.0/25", "192.0.2.128/25", "198.51.100.0/24"],
                                  [15169, 64500, 64501],
                                  orgs=["", "Google LLC", "Other Org"])
    out = nkclass.Classifier(asn=db).classify({
        "src_ip": ["175.45.176.9"] * 3, "dst_ip": ["192.0.2.1", "192.0.2.200", "198.51.100.7"],
        "src_port": np.array([50000] * 3), "dst_port": np.array([443] * 3),
        "protocol": np.array([6] * 3),
    })
    assert len(set(out.peer_org_names)) == len(out.peer_org_names)
    frame = out.to_pandas()
    assert list(frame["peer_org"].astype(str)) == ["Google LLC", "Google LLC", "Other Org"]


@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50),
       st.lists(st.integers(0, 2**32 - 1), max_size=200))
def test_take_clipped_is_numpys_clipped_take(table, index):
    """The native gather behind exporter AS numbers reads as numpy's
    ``take(mode="clip")`` does, for indices inside and far past the table."""
    from nkclass import _columns

    table, index = np.array(table, np.uint32), np.array(index, np.uint32)
    out = np.empty(len(index), np.uint32)
    _columns.take_clipped(table, index, out)
    assert out.tolist() == np.take(table, index.astype(np.int64), mode="clip").tolist()
