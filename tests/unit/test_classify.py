"""Classifier: labels against the reference, input validation, outputs."""

from __future__ import annotations

import ipaddress
import json
import pickle
import threading

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nkclass import Classifier, SchemaTypeError, SchemaValueError, load_rules
from nkclass.rules import rules_from_text
from tests.reference.engine import ReferenceClassifier, evidence_set

TEST_RULES = """
[[watched]]
name = "kp_range"
prefixes = ["175.45.176.0/22"]
server_activity = "nk_hosted_service"

[[watched]]
name = "unicom"
prefixes = ["210.52.109.0/24"]

[[watched]]
name = "lab6"
prefixes = ["2001:db8:ab::/48"]

[[network]]
service = "pool"
category = "mining"
prefixes = ["192.0.2.0/24", "2001:db8:1::/48"]

[[network]]
service = "relays"
category = "tor"
prefixes = ["198.51.100.0/24", "198.51.100.128/25"]

[[network]]
service = "inner-pool"
category = "mining"
prefixes = ["175.45.177.0/24"]

[[port]]
protocol = "tcp"
ports = [443]
app = "tls"
activity = "web_other"

[[port]]
protocol = "tcp/udp"
ports = [53]
app = "dns"
activity = "infrastructure"

[[port]]
protocol = "tcp"
ports = [3333, "10001-10128"]
app = "stratum"
activity = "mining"

[[port]]
protocol = "tcp"
ports = ["10000-10200"]
activity = "vpn"
weak = false

[[port]]
protocol = "esp"
app = "ipsec"
activity = "vpn"
"""


@pytest.fixture(scope="module")
def rules():
    return rules_from_text(TEST_RULES, defaults=False)


@pytest.fixture(scope="module")
def clf(rules):
    return Classifier(rules)


def batch(rows):
    src, dst, sport, dport, proto = zip(*rows, strict=True)
    return {
        "src_ip": list(src),
        "dst_ip": list(dst),
        "src_port": np.array(sport),
        "dst_port": np.array(dport),
        "protocol": np.array(proto),
    }


def labels(result, i):
    return {
        c: result.names(c)[i]
        for c in ("path", "side", "service", "app", "activity", "confidence", "evidence")
    }


def test_client_in_kp_range_to_mining_pool(clf):
    r = clf.classify(batch([("175.45.176.9", "192.0.2.10", 50000, 3333, 6)]))
    assert labels(r, 0) == {
        "path": "kp_range",
        "side": "src",
        "service": "pool",
        "app": "stratum",
        "activity": "mining",
        "confidence": "medium",
        "evidence": "ip_list|port",
    }


def test_outside_client_to_nk_hosted_server(clf):
    r = clf.classify(batch([("8.8.8.8", "175.45.176.71", 50000, 80, 6)]))
    got = labels(r, 0)
    assert (got["path"], got["side"], got["activity"], got["confidence"]) == (
        "kp_range",
        "dst",
        "nk_hosted_service",
        "low",
    )


def test_named_list_beats_port_guess(clf):
    r = clf.classify(batch([("175.45.176.9", "198.51.100.200", 40000, 443, 6)]))
    got = labels(r, 0)
    assert (got["app"], got["activity"], got["service"]) == ("tls", "tor", "relays")
    assert got["evidence"] == "ip_list|port"


def test_narrower_port_range_wins_and_strong_port_is_medium(clf):
    r = clf.classify(
        batch(
            [
                ("175.45.176.9", "9.9.9.9", 40000, 10050, 6),
                ("175.45.176.9", "9.9.9.9", 40000, 10150, 6),
            ]
        )
    )
    assert labels(r, 0)["activity"] == "mining" and labels(r, 0)["confidence"] == "low"
    assert labels(r, 1)["activity"] == "vpn" and labels(r, 1)["confidence"] == "medium"


def test_source_port_used_when_destination_has_no_rule(clf):
    r = clf.classify(batch([("9.9.9.9", "175.45.176.9", 53, 40000, 17)]))
    assert labels(r, 0)["app"] == "dns"


def test_protocol_rule_without_ports(clf):
    r = clf.classify(batch([("175.45.176.9", "9.9.9.9", 0, 0, 50)]))
    assert (labels(r, 0)["app"], labels(r, 0)["activity"]) == ("ipsec", "vpn")


def test_both_sides_watched_and_ipv6(clf):
    r = clf.classify(
        batch(
            [
                ("175.45.176.9", "210.52.109.1", 1, 2, 6),
                ("2001:db8:ab::5", "2001:db8:1::9", 40000, 3333, 6),
                ("::ffff:210.52.109.7", "2001:db8:2::1", 1, 2, 17),
            ]
        )
    )
    assert labels(r, 0)["side"] == "both" and labels(r, 0)["path"] == "kp_range"
    assert labels(r, 1)["path"] == "lab6" and labels(r, 1)["service"] == "pool"
    assert labels(r, 2)["path"] == "unicom" and labels(r, 2)["side"] == "src"


def test_unwatched_flow_is_none_and_unknown(clf):
    r = clf.classify(batch([("1.1.1.1", "2.2.2.2", 1234, 5678, 6)]))
    assert labels(r, 0) == {
        "path": "none",
        "side": "none",
        "service": "none",
        "app": "unknown",
        "activity": "unknown",
        "confidence": "none",
        "evidence": "",
    }


# ------------------------------------------------------------- against reference


def address():
    watched = st.sampled_from(
        [
            "175.45.176.0",
            "175.45.177.0",
            "175.45.179.255",
            "210.52.109.0",
            "192.0.2.0",
            "198.51.100.0",
            "198.51.100.128",
        ]
    )
    near = watched.flatmap(
        lambda base: st.integers(-2, 300).map(
            lambda d: str(ipaddress.IPv4Address((int(ipaddress.IPv4Address(base)) + d) % 2**32))
        )
    )
    v6 = st.sampled_from(["2001:db8:ab::", "2001:db8:1::", "2001:db8:2::"]).flatmap(
        lambda base: st.integers(0, 2**80).map(
            lambda d: str(ipaddress.IPv6Address(int(ipaddress.IPv6Address(base)) + d))
        )
    )
    anywhere = st.integers(0, 2**32 - 1).map(lambda v: str(ipaddress.IPv4Address(v)))
    mapped = near.map(lambda a: "::ffff:" + a)
    return st.one_of(near, anywhere, v6, mapped)


flows = st.lists(
    st.tuples(
        address(),
        address(),
        st.sampled_from([0, 53, 443, 3333, 10001, 10150, 40000]),
        st.sampled_from([0, 53, 443, 3333, 10128, 10200, 50000]),
        st.sampled_from([6, 17, 50, 1]),
    ),
    min_size=1,
    max_size=40,
)


@given(flows)
def test_classifier_matches_reference(rules, clf, rows):
    ref = ReferenceClassifier(rules)
    result = clf.classify(batch(rows))
    for i, row in enumerate(rows):
        expected = ref.classify(*row)
        got = labels(result, i)
        assert (
            got["path"],
            got["side"],
            got["service"],
            got["app"],
            got["activity"],
            got["confidence"],
        ) == (
            expected.path,
            expected.side,
            expected.service,
            expected.app,
            expected.activity,
            expected.confidence,
        ), row
        assert evidence_set(got["evidence"]) == expected.evidence, row


@given(flows)
def test_default_rules_match_reference(default_clf, rows):
    ref = ReferenceClassifier(default_clf.rules)
    result = default_clf.classify(batch(rows))
    for i, row in enumerate(rows):
        expected = ref.classify(*row)
        assert (
            labels(result, i)["app"],
            labels(result, i)["activity"],
            labels(result, i)["path"],
        ) == (expected.app, expected.activity, expected.path), row


def prefix_sets():
    """Watched paths and named networks with random IPv4 prefixes, many of
    them nested in or overlapping the other kind, and long ones (/25-/32)
    that the tables keep in chunks below their first level."""
    def prefix(base: int | None, lengths):
        return st.tuples(st.integers(0, 2**32 - 1), lengths).map(
            lambda t: ipaddress.IPv4Network(((base or t[0]), t[1]), strict=False))

    anywhere = prefix(None, st.integers(8, 32))
    near_kp = prefix(0xAF2DB000, st.integers(16, 32))  # inside or around 175.45.176.0/22
    nested = st.integers(0, 1023).flatmap(
        lambda d: prefix(0xAF2DB000 + d, st.integers(23, 32)))
    one = st.one_of(anywhere, near_kp, nested)
    return st.tuples(st.lists(one, min_size=1, max_size=4, unique=True),
                     st.lists(st.lists(one, min_size=1, max_size=8, unique=True),
                              min_size=1, max_size=4))


def edge_addresses(nets):
    """Each network's first and last address and their outside neighbours."""
    out = []
    for net in nets:
        first, last = int(net.network_address), int(net.broadcast_address)
        out += [first, last, (first - 1) % 2**32, (last + 1) % 2**32]
    return out


@settings(max_examples=40, deadline=None)
@given(prefix_sets(), st.data())
def test_ipv4_ends_get_the_paths_and_services_of_the_reference(nets, data):
    """uint32 address columns take one lookup per end for the path and the
    service together (a table built from both): both labels must be those
    of two separate longest-prefix matches, with the AS stage off and on."""
    watched, networks = nets
    # A prefix may be listed once in a ruleset.
    seen = set(watched)
    networks = [[n for n in ns if n not in seen and not seen.add(n)] for ns in networks]
    networks = [ns for ns in networks if ns]
    text = "".join(f'[[watched]]\nname = "w{i}"\nprefixes = ["{n}"]\n'
                   for i, n in enumerate(watched))
    text += "".join(f'[[network]]\nservice = "s{i}"\ncategory = "tor"\nprefixes = '
                    + json.dumps([str(n) for n in ns]) + "\n" for i, ns in enumerate(networks))
    rules = rules_from_text(text, defaults=False)
    ref = ReferenceClassifier(rules)
    edges = edge_addresses([*watched, *(n for ns in networks for n in ns)])
    address = st.one_of(st.sampled_from(edges), st.integers(0, 2**32 - 1))
    n = data.draw(st.integers(1, 60))
    src = np.array(data.draw(st.lists(address, min_size=n, max_size=n)), np.uint32)
    dst = np.array(data.draw(st.lists(address, min_size=n, max_size=n)), np.uint32)
    flows = {"src_ip": src, "dst_ip": dst, "src_port": np.full(n, 40000, np.uint16),
             "dst_port": np.full(n, 40000, np.uint16), "protocol": np.full(n, 6, np.uint8)}
    for asn in (False, None):
        got = Classifier(rules, asn=asn).classify(flows)
        for i in range(n):
            expected = ref.classify(str(ipaddress.IPv4Address(int(src[i]))),
                                    str(ipaddress.IPv4Address(int(dst[i]))), 40000, 40000, 6)
            assert (got.names("path")[i], got.names("side")[i]) == (expected.path, expected.side)
            if asn is False or expected.service != "none":
                assert got.names("service")[i] == expected.service, (i, asn)


@pytest.fixture(scope="module")
def default_clf():
    # The reference models the rules' own stages; the AS stage, on by default
    # with the extra, has its own tests (test_asn_classify.py).
    return Classifier(load_rules(), asn=False)


# ------------------------------------------------------------------ input forms


def sample(n=5):
    return {
        "src_ip": np.array(
            [0xAF2DB009, 0x01010101, 0xD2346D01, 0x08080808, 0xC0000201][:n], np.uint32
        ),
        "dst_ip": np.array(
            [0xC000020A, 0xAF2DB047, 0x09090909, 0xC6336414, 0x01020304][:n], np.uint32
        ),
        "src_port": np.array([50000, 40000, 53, 1, 2][:n], np.uint16),
        "dst_port": np.array([3333, 443, 40000, 10150, 3][:n], np.uint16),
        "protocol": np.array([6, 6, 17, 6, 50][:n], np.uint8),
    }


def codes(result):
    return [
        getattr(result, c).tolist()
        for c in ("path", "side", "service", "app", "activity", "evidence", "confidence")
    ]


def test_numpy_pandas_arrow_and_text_inputs_agree(clf):
    base = codes(clf.classify(sample()))
    df = pd.DataFrame(sample())
    assert codes(clf.classify(df)) == base
    table = pa.table(sample())
    assert codes(clf.classify(table)) == base
    assert codes(clf.classify(table.to_batches()[0])) == base
    text = dict(sample())
    text["src_ip"] = [str(ipaddress.IPv4Address(int(a))) for a in text["src_ip"]]
    text["dst_ip"] = pa.array([str(ipaddress.IPv4Address(int(a))) for a in text["dst_ip"]])
    assert codes(clf.classify(text)) == base
    wide = dict(sample())
    wide["src_port"] = wide["src_port"].astype(np.int64)
    wide["src_ip"] = wide["src_ip"].astype(np.int64)
    assert codes(clf.classify(wide)) == base


def test_sixteen_byte_address_forms_agree(clf):
    base = codes(clf.classify(sample()))
    for form in ("rows", "S16", "arrow"):
        b = dict(sample())
        for col in ("src_ip", "dst_ip"):
            rows = np.zeros((5, 16), np.uint8)
            rows[:, 10:12] = 0xFF
            rows[:, 12:] = b[col].astype(">u4").view(np.uint8).reshape(-1, 4)
            if form == "S16":
                rows = rows.view("S16").ravel()
            elif form == "arrow":
                rows = pa.array([bytes(r) for r in rows], pa.binary(16))
            b[col] = rows
        assert codes(clf.classify(b)) == base, form


def test_chunked_arrow_columns(clf):
    table = pa.concat_tables([pa.table(sample(3)), pa.table(sample(2))])
    assert len(clf.classify(table)) == 5


def test_empty_batch_returns_empty_result(clf):
    empty = {k: v[:0] for k, v in sample().items()}
    result = clf.classify(empty)
    assert len(result) == 0 and result.activity.dtype == np.uint8
    assert result.to_arrow().num_rows == 0


@pytest.mark.parametrize(
    ("column", "value", "error", "message"),
    [
        (
            "src_port",
            np.array([1, 2, 70000, 4, 5], np.int64),
            SchemaValueError,
            r"'src_port': row 2 is 70000, outside 0\.\.65535",
        ),
        ("dst_port", np.array([1, 2, -1, 4, 5]), SchemaValueError, "row 2 is -1"),
        ("protocol", np.array([6, 6, 256, 6, 6], np.int32), SchemaValueError, "outside 0..255"),
        (
            "protocol",
            np.array([6.0, 6, 6, 6, 6]),
            SchemaTypeError,
            "expected integers, got float64",
        ),
        ("src_ip", np.array([1.0, 2, 3, 4, 5]), SchemaTypeError, "'src_ip': expected uint32 IPv4"),
        ("src_ip", np.array([-1, 2, 3, 4, 5]), SchemaValueError, "row 0 is -1"),
        (
            "dst_ip",
            ["1.2.3.4", "x", "1.1.1.1", "1.1.1.1", "1.1.1.1"],
            SchemaValueError,
            "'dst_ip': row 1 is 'x'",
        ),
        (
            "dst_ip",
            ["1.2.3.4", None, "1.1.1.1", "1.1.1.1", "1.1.1.1"],
            SchemaValueError,
            "row 1 is null",
        ),
        (
            "dst_port",
            np.array([1, 2, 3]),
            SchemaValueError,
            "'dst_port' has 3 rows, but src_ip has 5",
        ),
        ("src_payload", [1, 2, 3, 4, 5], SchemaTypeError, "'src_payload': expected bytes"),
    ],
)
def test_bad_columns_are_refused_with_clear_errors(clf, column, value, error, message):
    b = dict(sample())
    b[column] = value
    with pytest.raises(error, match=message):
        clf.classify(b)


def test_missing_column_lists_what_is_needed(clf):
    b = dict(sample())
    del b["protocol"]
    with pytest.raises(ValueError, match=r"missing column 'protocol'.*needs src_ip, dst_ip"):
        clf.classify(b)


def test_not_a_batch_is_a_type_error(clf):
    with pytest.raises(TypeError, match="expected a flow batch"):
        clf.classify([1, 2, 3])


def test_nullable_pandas_column_with_missing_value_is_refused(clf):
    df = pd.DataFrame(sample())
    df["dst_port"] = pd.array([1, None, 3, 4, 5], dtype="Int64")
    with pytest.raises(ValueError, match="'dst_port': row 1 is null"):
        clf.classify(df)


def test_payload_columns_are_accepted_with_nulls(clf):
    b = dict(sample())
    b["src_payload"] = [b"GET / HTTP/1.1\r\n", None, b"", b"\x16\x03\x01", b"x"]
    b["dst_payload"] = pa.array([b"", b"", None, b"", b""], pa.binary())
    assert len(clf.classify(b)) == 5


# ------------------------------------------------------------------- outputs


def test_to_arrow_and_to_pandas_have_readable_labels(clf):
    result = clf.classify(sample())
    table = result.to_arrow()
    for column in ("path", "side", "service", "app", "activity", "confidence", "evidence"):
        assert column in table.column_names
    assert table.column("path").to_pylist() == result.names("path")
    df = result.to_pandas()
    assert list(df["activity"].astype(str)) == result.names("activity")


def test_classifier_pickles_as_its_rules(clf):
    clone = pickle.loads(pickle.dumps(clf))
    assert clone.rules == clf.rules
    assert codes(clone.classify(sample())) == codes(clf.classify(sample()))


def test_threads_share_one_classifier(clf):
    rng = np.random.default_rng(0)
    n = 100_000
    b = {
        "src_ip": rng.integers(0, 2**32, n, dtype=np.uint32),
        "dst_ip": rng.integers(0, 2**32, n, dtype=np.uint32),
        "src_port": rng.integers(0, 65536, n, dtype=np.uint16),
        "dst_port": rng.choice(np.array([443, 3333, 53], np.uint16), n),
        "protocol": np.full(n, 6, np.uint8),
    }
    expected = codes(clf.classify(b))
    out = []
    threads = [
        threading.Thread(target=lambda: out.append(codes(clf.classify(b)))) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert out == [expected] * 3
