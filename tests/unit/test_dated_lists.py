"""Dated lists: the Tor Project's formats and the plain CSV/TSV form read
into validity intervals, their errors (file and line), the native interval
table against a brute-force reference, and the classifier matching flows
at their start time."""

from __future__ import annotations

import gzip
import io
import lzma
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import nkclass
from nkclass import _core
from nkclass.errors import RuleError
from nkclass.lists import DatedListError, read_dated_list
from nkclass.lists.files import utc_ms

LISTS = Path(__file__).resolve().parents[1] / "data" / "lists"
H = 3_600_000


def at(text: str) -> int:
    return utc_ms(text)


def addresses(lst, when: str) -> set[str]:
    return {p for p, _ in lst.valid_at(at(when))}


def tor(*names: str, format: str = "tor-consensus", **kw):
    return read_dated_list([LISTS / n for n in names], format, service="tor-relays",
                           category="tor", **kw)


# ---------------------------------------------------------------- Tor formats


def test_consensus_relays_hold_from_valid_after_to_valid_until_merged_hour_to_hour():
    lst = tor("tor-consensus-2019-05-01-00", "tor-consensus-2019-05-01-01",
              "tor-microdesc-consensus-2019-05-01-05")
    every = {"198.51.100.11/32", "198.51.100.12/32", "2001:db8::12/128", "203.0.113.20/32"}
    assert addresses(lst, "2019-05-01 00:30:00") == every
    assert addresses(lst, "2019-05-01 02:59:59") == every | {"203.0.113.21/32"}
    assert addresses(lst, "2019-05-01 03:00:00") == {"198.51.100.11/32", "198.51.100.12/32",
                                                     "2001:db8::12/128", "203.0.113.21/32"}
    assert addresses(lst, "2019-05-01 04:00:00") == set()
    assert addresses(lst, "2019-05-01 07:00:00") == {"203.0.113.20/32", "203.0.113.21/32"}
    # one interval per (address, service) where consensuses overlap
    seele = lst.prefixes.index("198.51.100.11/32")
    assert (lst.start[lst.key == seele].tolist(), lst.end[lst.key == seele].tolist()) == (
        [at("2019-05-01 00:00:00")], [at("2019-05-01 04:00:00")])


def test_consensus_flags_keep_only_relays_holding_them():
    lst = tor("tor-consensus-2019-05-01-00", flags=["Exit"])
    assert set(lst.prefixes) == {"198.51.100.12/32", "2001:db8::12/128"}


def test_onionoo_addresses_follow_first_seen_last_seen_and_address_changes():
    lst = tor("onionoo-details-2019-05-01.json", format="onionoo-details")
    assert addresses(lst, "2019-02-01 00:00:00") == {  # "gone" and exitone, not seele
        "203.0.113.21/32", "198.51.100.12/32", "2001:db8::12/128"}
    # seele's address holds from its last change (2019-03-01), not first_seen
    assert "198.51.100.11/32" not in addresses(lst, "2019-02-15 00:00:00")
    assert addresses(lst, "2019-05-01 13:59:59") == {
        "198.51.100.11/32", "198.51.100.12/32", "2001:db8::12/128", "198.51.100.99/32"}
    assert addresses(lst, "2019-05-01 14:00:00") == set()  # last_seen + 3 h
    # the exit address holds over the relay's last 24 hours only
    assert "198.51.100.99/32" not in addresses(lst, "2019-04-30 10:59:59")
    assert "198.51.100.99/32" in addresses(lst, "2019-04-30 11:00:00")
    exits = tor("onionoo-details-2019-05-01.json", format="onionoo-details", flags=["Exit"])
    assert set(exits.prefixes) == {"198.51.100.12/32", "2001:db8::12/128", "198.51.100.99/32"}


def test_exit_list_addresses_hold_from_publication_to_last_status_plus_a_consensus():
    lst = tor("tor-exit-list-2019-05-01-12-02-02", format="tor-exit-list")
    assert addresses(lst, "2019-04-30 19:16:26") == {"198.51.100.99/32"}
    assert addresses(lst, "2019-05-01 06:00:00") == {"198.51.100.99/32", "203.0.113.50/32",
                                                     "203.0.113.51/32"}
    assert addresses(lst, "2019-05-01 14:03:02") == {"198.51.100.99/32", "203.0.113.50/32",
                                                     "203.0.113.51/32"}
    assert addresses(lst, "2019-05-01 15:00:00") == set()


def test_archives_and_compressed_files_read_as_their_documents(tmp_path):
    names = ["tor-consensus-2019-05-01-00", "tor-consensus-2019-05-01-01"]
    archive = tmp_path / "consensuses-2019-05.tar.xz"
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for n in names:
            tar.add(LISTS / n, arcname=f"consensuses-2019-05/01/{n}")
    archive.write_bytes(lzma.compress(buf.getvalue()))
    zipped = tmp_path / "tor-consensus-2019-05-01-01.gz"
    zipped.write_bytes(gzip.compress((LISTS / names[1]).read_bytes()))
    plain = tor(*names)
    from_archive = read_dated_list(archive, "tor-consensus", service="tor-relays",
                                   category="tor")
    assert from_archive == plain
    assert from_archive.files[0].endswith("consensuses-2019-05.tar.xz/consensuses-2019-05/01/"
                                          "tor-consensus-2019-05-01-00")
    assert read_dated_list([LISTS / names[0], zipped], "tor-consensus", service="tor-relays",
                           category="tor") == plain


def _broken(tmp_path, name: str, old: str, new: str) -> Path:
    text = (LISTS / name).read_text()
    assert old in text
    path = tmp_path / name
    path.write_text(text.replace(old, new, 1))
    return path


@pytest.mark.parametrize("name, old, new, line, message", [
    ("tor-consensus-2019-05-01-00", "network-status-version 3", "network-status-version 2", 2,
     "not a network-status consensus"),
    ("tor-consensus-2019-05-01-00", "vote-status consensus", "vote-status vote", 3, "a vote"),
    ("tor-consensus-2019-05-01-00", "valid-until 2019-05-01 03:00:00",
     "valid-until 2019-05-01 00:00:00", 7, "empty validity"),
    ("tor-consensus-2019-05-01-00", "valid-after 2019-05-01 00:00:00", "valid-after 2019-13-01 0",
     5, "expected a time"),
    ("tor-consensus-2019-05-01-00", "r seele +OV94IznI98z927d/aBZy/7RMN8",
     "r seele AAAAAAAAAAAAAAAAAAAAAAAAAAA", 29, "out of order"),
    ("tor-consensus-2019-05-01-00", "198.51.100.12 443 80", "198.51.100.300 443 80", 16,
     "not an IP address"),
    ("tor-consensus-2019-05-01-00", "a [2001:db8::12]:443", "a 2001:db8::12", 17,
     "address:port"),
    ("tor-exit-list-2019-05-01-12-02-02", "ExitAddress 198.51.100.99 2019-05-01 11:10:42",
     "ExitAddress 198.51.100.99 2019-05-01 13:10:42", 6, "after the list was downloaded"),
    ("tor-exit-list-2019-05-01-12-02-02", "Published 2019-05-01 06:00:00\nLastStatus",
     "LastStatus 2019-05-01 12:00:00\nPublished", 9, "out of order: Published after LastStatus"),
    ("onionoo-details-2019-05-01.json", '"first_seen":"2018-06-01 00:00:00"',
     '"first_seen":"2019-05-02 00:00:00"', 6, "empty validity"),
    ("onionoo-details-2019-05-01.json", '"last_seen":"2019-05-01 11:00:00","last_changed',
     '"last_seen":"2019-05-02 11:00:00","last_changed', 5, "after relays_published"),
])
def test_bad_tor_data_names_file_and_line(tmp_path, name, old, new, line, message):
    fmt = ("tor-exit-list" if "exit" in name else
           "onionoo-details" if "onionoo" in name else "tor-consensus")
    path = _broken(tmp_path, name, old, new)
    with pytest.raises(DatedListError, match=message) as info:
        read_dated_list(path, fmt, service="tor-relays", category="tor")
    assert (info.value.path, info.value.line) == (str(path), line)


# ---------------------------------------------------------------- plain form


def test_csv_and_tsv_forms_with_per_row_services():
    pools = read_dated_list(LISTS / "mining-pools.csv", "csv", service="pool-endpoints",
                            category="mining")
    assert pools.services == ("pool-endpoints", "supportxmr", "minexmr", "moneroocean")
    assert pools.valid_at(at("2019-05-20 00:00:00")) == [("192.0.2.10/32", "supportxmr")]
    assert pools.valid_at(at("2019-06-15 00:00:00")) == [("192.0.2.10/32", "supportxmr"),
                                                          ("203.0.113.77/32", "moneroocean")]
    # touching intervals of one (prefix, service) merge
    assert len(pools) == 3
    vpn = read_dated_list(LISTS / "vpn-endpoints.tsv", "csv", service="vpn-endpoints",
                          category="vpn")
    assert vpn.valid_at(at("2018-03-01 00:00:00")) == [("198.51.100.200/32", "vpn-endpoints"),
                                                        ("2001:db8:100::/48", "vpn-endpoints")]
    assert vpn.valid_at(at("2018-02-28 23:59:59")) == [("2001:db8:100::/48", "vpn-endpoints")]


@pytest.mark.parametrize("text, line, message", [
    ("prefix,valid_from\n", 1, "lacks valid_until"),
    ("prefix,valid_from,valid_until\n198.51.100.7/24,2019-01-01,2019-02-01\n", 2,
     "not an address or a prefix"),
    ("prefix,valid_from,valid_until\n192.0.2.1,2019-02-01,2019-02-01\n", 2, "empty validity"),
    ("prefix,valid_from,valid_until\n192.0.2.1,2019-02-01,2019-03-01\n"
     "# fine\n192.0.2.2,2019-01-01,2019-03-01\n", 4, "out of order"),
    ("prefix,valid_from,valid_until\n192.0.2.1,yesterday,2019-03-01\n", 2, "ISO 8601"),
    ("prefix,valid_from,valid_until,service\n192.0.2.1,2019-01-01,2019-03-01,Bad Name\n", 2,
     "lowercase"),
    ("prefix,valid_from,valid_until\n192.0.2.1,2019-01-01\n", 2, "expected 3 fields"),
])
def test_bad_csv_rows_name_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "list.csv"
    path.write_text(text)
    with pytest.raises(DatedListError, match=message) as info:
        read_dated_list(path, "csv", service="x", category="proxy")
    assert (info.value.path, info.value.line) == (str(path), line)


def test_list_equality_pickling_and_argument_checks():
    a = tor("tor-consensus-2019-05-01-00")
    assert a == tor("tor-consensus-2019-05-01-00") and hash(a) == hash(pickle.loads(
        pickle.dumps(a)))
    assert a != tor("tor-consensus-2019-05-01-01")
    with pytest.raises(ValueError, match="format"):
        read_dated_list(LISTS / "mining-pools.csv", "xml", service="x", category=None)
    with pytest.raises(ValueError, match="flags"):
        read_dated_list(LISTS / "mining-pools.csv", "csv", service="x", category=None,
                        flags=["Exit"])


# ---------------------------------------------------------------- native table


@st.composite
def interval_rows(draw):
    n_keys = draw(st.integers(1, 6))
    rows = draw(st.lists(st.tuples(st.integers(0, n_keys - 1), st.integers(0, 60),
                                   st.integers(1, 30), st.integers(1, 4)), max_size=60))
    probes = draw(st.lists(st.tuples(st.integers(0, n_keys + 1), st.integers(-5, 100)),
                           min_size=1, max_size=40))
    return n_keys, rows, probes


@settings(max_examples=300, deadline=None)
@given(interval_rows())
def test_interval_table_matches_brute_force(case):
    n_keys, rows, probes = case
    key = np.array([r[0] for r in rows], np.uint32)
    start = np.array([r[1] for r in rows], np.int64)
    end = start + np.array([r[2] for r in rows], np.int64)
    verdict = np.array([r[3] for r in rows], np.uint16)
    table = _core.DatedIntervals(key, start, end, verdict, n_keys)
    labels = np.array([p[0] for p in probes], np.uint32)
    t = np.array([p[1] for p in probes], np.int64)
    got = table.verdicts_at(labels, t)
    for (label, when), found in zip(probes, got, strict=True):
        want = {v for k, s, e, v in zip(key, start, end, verdict, strict=True)
                if label >= 1 and k == label - 1 and s <= when < e}
        assert sorted(found) == sorted(want) and len(found) == len(set(found))


def test_interval_table_refuses_empty_intervals_and_unknown_keys():
    one = np.ones(1, np.uint16)
    with pytest.raises(ValueError, match="empty validity"):
        _core.DatedIntervals(np.zeros(1, np.uint32), np.array([5], np.int64),
                             np.array([5], np.int64), one, 1)
    with pytest.raises(ValueError, match="key"):
        _core.DatedIntervals(np.array([3], np.uint32), np.array([5], np.int64),
                             np.array([6], np.int64), one, 1)


# ---------------------------------------------------------------- classifier


WATCHED = "175.45.176.9"


def flows(rows, with_time=True):
    """rows: (src, dst, dst_port, ts_start)."""
    src, dst, dport, t = zip(*rows, strict=True)
    out = {"src_ip": list(src), "dst_ip": list(dst),
           "src_port": np.full(len(rows), 40000, np.uint16),
           "dst_port": np.array(dport, np.uint16), "protocol": np.full(len(rows), 6, np.uint8)}
    if with_time:
        out["ts_start"] = np.array(t, np.int64)
    return out


@pytest.fixture(scope="module")
def tor_classifier():
    relays = tor("tor-consensus-2019-05-01-00", "tor-consensus-2019-05-01-01")
    return nkclass.Classifier(nkclass.load_rules().with_dated_lists(relays), asn=False)


def test_flows_to_relays_are_tor_only_while_the_relay_is_listed(tor_classifier):
    batch = flows([
        (WATCHED, "198.51.100.11", 9001, at("2019-05-01 00:30:00")),
        (WATCHED, "198.51.100.11", 9001, at("2019-05-01 04:00:00")),  # after valid-until
        (WATCHED, "198.51.100.11", 9001, at("2019-04-30 23:59:59")),  # before valid-after
        ("198.51.100.12", WATCHED, 51000, at("2019-05-01 01:00:00")),  # the relay calls in
        (WATCHED, "2001:db8::12", 443, at("2019-05-01 01:00:00")),
        ("10.0.0.1", "203.0.113.21", 9001, at("2019-05-01 02:00:00")),  # neither side watched
    ])
    r = tor_classifier.classify(batch)
    assert r.names("service") == ["tor-relays", "none", "none", "tor-relays", "tor-relays",
                                  "tor-relays"]
    activity, confidence, evidence = (r.names(c) for c in ("activity", "confidence", "evidence"))
    for i in (0, 3, 4, 5):
        assert (activity[i], confidence[i]) == ("tor", "medium")
        assert "ip_list" in evidence[i].split("|")
    for i in (1, 2):  # outside the relay's interval: at most the weak ORPort guess
        assert "ip_list" not in evidence[i].split("|") and confidence[i] != "medium"


def test_without_start_times_the_dated_stage_does_not_run(tor_classifier):
    r = tor_classifier.classify(flows([(WATCHED, "198.51.100.11", 9001, 0)], with_time=False))
    assert r.names("service") == ["none"]


# ---------------------------------------------------------------- rulesets


def _ruleset(tmp_path, body: str) -> Path:
    for name in ("tor-consensus-2019-05-01-00", "mining-pools.csv"):
        (tmp_path / name).write_bytes((LISTS / name).read_bytes())
    path = tmp_path / "lists.toml"
    path.write_text(body)
    return path


def test_a_dated_list_entry_in_a_ruleset(tmp_path):
    path = _ruleset(tmp_path, """
[[dated_list]]
service = "tor-exits"
category = "tor"
files = ["tor-consensus-*"]
format = "tor-consensus"
flags = ["Exit"]
source = "a consensus, written from dir-spec for the tests"

[[dated_list]]
service = "pool-endpoints"
category = "mining"
files = ["mining-pools.csv"]
format = "csv"
""")
    rules = nkclass.load_rules(path)
    assert {"tor-exits", "supportxmr", "moneroocean"} <= set(rules.services)
    clf = nkclass.Classifier(rules, asn=False)
    r = clf.classify(flows([(WATCHED, "198.51.100.12", 443, at("2019-05-01 01:00:00")),
                            (WATCHED, "192.0.2.10", 443, at("2019-06-02 00:00:00"))]))
    assert r.names("service") == ["tor-exits", "supportxmr"]
    assert r.names("activity") == ["tor", "mining"]
    again = pickle.loads(pickle.dumps(clf))
    assert again.classify(flows([(WATCHED, "192.0.2.10", 443, at("2019-06-02 00:00:00"))]
                                )).names("service") == ["supportxmr"]


@pytest.mark.parametrize("files, message", [
    ('["../outside.csv"]', "outside the ruleset's folder"),
    ('["missing.csv"]', "no such file"),
])
def test_dated_list_files_must_exist_inside_the_ruleset_folder(tmp_path, files, message):
    path = _ruleset(tmp_path, f"""
[[dated_list]]
service = "x"
files = {files}
format = "csv"
""")
    with pytest.raises(RuleError, match=message):
        nkclass.load_rules(path)


def test_a_text_ruleset_reads_dated_lists_only_from_the_allowed_folders(tmp_path):
    from nkclass.rules import rules_from_text

    (tmp_path / "pools.csv").write_bytes((LISTS / "mining-pools.csv").read_bytes())
    text = (f'[[dated_list]]\nservice = "x"\ncategory = "mining"\nformat = "csv"\n'
            f'files = ["{tmp_path / "pool*.csv"}"]\n')
    with pytest.raises(RuleError, match="outside the allowed folders"):
        rules_from_text(text)
    rules = rules_from_text(text, allowed_dirs=[tmp_path])
    assert "supportxmr" in rules.services


def test_an_error_inside_a_listed_file_names_that_file_and_line(tmp_path):
    path = _ruleset(tmp_path, """
[[dated_list]]
service = "x"
files = ["bad.csv"]
format = "csv"
""")
    (tmp_path / "bad.csv").write_text("prefix,valid_from,valid_until\n192.0.2.1,2019-02-01,2019"
                                      "-01-01\n")
    with pytest.raises(RuleError, match=r"bad.csv:2: empty validity"):
        nkclass.load_rules(path)
