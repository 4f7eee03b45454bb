"""Domain suffix matcher against a dict-based reference, build errors, and
the classifier's service choice (a domain name beats an IP-list service)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nkclass import _core

SOCIAL = _core.ACTIVITY_NAMES.index("social")
MINING = _core.ACTIVITY_NAMES.index("mining")


def table(rows):
    suffixes = [s for s, _, _ in rows]
    return _core.DomainTable(
        suffixes,
        np.array([v for _, v, _ in rows], dtype=np.uint32),
        np.array([a for _, _, a in rows], dtype=np.uint8),
    )


def reference_lookup(rows, name):
    """Longest suffix at a label boundary, by brute force."""
    name = name.lower().removesuffix(".")
    best = None
    for suffix, service, activity in rows:
        s = suffix.lower().removesuffix(".")
        if (name == s or name.endswith("." + s)) and (best is None or len(s) > len(best[0])):
            best = (s, service, activity)
    return (best[1], best[2]) if best else (0, 0)


ROWS = [
    ("facebook.com", 1, SOCIAL),
    ("fbcdn.net", 2, SOCIAL),
    ("pool.minexmr.com", 3, MINING),
    ("minexmr.com", 4, MINING),
    ("com", 5, 0),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("facebook.com", 1),
        ("www.facebook.com", 1),
        ("notfacebook.com", 5),
        ("a.fbcdn.net", 2),
        ("FBCDN.NET.", 2),
        ("xfbcdn.net", 0),
        ("pool.minexmr.com", 3),
        ("eu.pool.minexmr.com", 3),
        ("minexmr.com", 4),
        ("xpool.minexmr.com", 4),
        ("net", 0),
        ("", 0),
        (".", 0),
        ("facebook.com..", 0),
    ],
)
def test_label_boundary_longest_suffix(name, expected):
    services, _ = table(ROWS).lookup([name])
    assert services[0] == expected


def test_duplicate_suffix_names_the_row():
    with pytest.raises(_core.BuildError) as err:
        table([("a.com", 1, 0), ("b.com", 2, 0), ("A.COM.", 3, 0)])
    assert err.value.args == (2, "duplicate domain suffix")


@pytest.mark.parametrize("bad", ["", ".", "a..b", ".a.com", "sp ace.com", "x" * 254])
def test_malformed_suffix_is_refused(bad):
    with pytest.raises(_core.BuildError):
        table([("ok.com", 1, 0), (bad, 2, 0)])


def test_service_zero_and_unknown_activity_are_refused():
    with pytest.raises(_core.BuildError):
        table([("a.com", 0, 0)])
    with pytest.raises(_core.BuildError):
        table([("a.com", 1, 250)])


def test_wrong_dtype_is_a_type_error_not_a_cast():
    with pytest.raises(TypeError):
        _core.DomainTable(["a.com"], np.array([1], dtype=np.int64), np.array([0], dtype=np.uint8))


# Labels of 7 to 17 bytes too: the lookup finds label boundaries eight
# bytes at a time, so labels shorter and longer than a word both count.
labels = st.sampled_from(["a", "b", "ab", "fb", "com", "net", "x-y", "B", "example",
                          "abcdefgh", "Facebook9", "averyverylongone1"])
names = st.lists(labels, min_size=1, max_size=5).map(".".join)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(names, min_size=1, max_size=30, unique_by=str.lower),
    st.lists(names, min_size=1, max_size=30),
)
def test_lookup_matches_reference(suffixes, queries):
    rows = [(s, i + 1, i % 20) for i, s in enumerate(suffixes)]
    services, activities = table(rows).lookup(queries + [q + "." for q in queries])
    for i, q in enumerate(queries + [q + "." for q in queries]):
        assert (services[i], activities[i]) == reference_lookup(rows, q)


def _classifier(payload=None, service_prefix=None):
    u4, u1, u2 = np.uint32, np.uint8, np.uint16
    empty6 = np.zeros((0, 16), dtype=u1)
    paths = _core.PrefixTable(
        np.array([], u4),
        np.array([], u1),
        np.array([], u4),
        empty6,
        np.array([], u1),
        np.array([], u4),
    )
    net, length, label = service_prefix or ([], [], [])
    services = _core.PrefixTable(
        np.array(net, u4),
        np.array(length, u1),
        np.array(label, u4),
        empty6,
        np.array([], u1),
        np.array([], u4),
    )
    ports = _core.PortTable(np.array([], u1), np.array([], u2), np.array([], u2))
    n_act = len(_core.ACTIVITY_NAMES)
    service_codes = np.zeros((10, 3), dtype=u1)
    service_codes[7] = (0, _core.ACTIVITY_NAMES.index("vps_hosting"), _core.RANKS["named"])
    return _core.Classifier(
        paths,
        services,
        ports,
        np.zeros((1, 3), u1),
        np.zeros(1, u2),
        service_codes,
        np.full(10, _core.EVIDENCE_BITS["ip_list"], u2),
        np.zeros(1, u1),
        np.arange(n_act, dtype=u2),
        payload=payload,
    )


def _classify(clf, src_payload, dst_ip=0x05060708):
    n = 1
    data = np.frombuffer(src_payload, dtype=np.uint8).copy()
    return clf.classify(
        n,
        np.array([0x0A000001], np.uint32),
        None,
        np.array([dst_ip], np.uint32),
        None,
        np.array([50000], np.uint16),
        np.array([443], np.uint16),
        np.array([6], np.uint8),
        src_payload=data,
        src_payload_offsets=np.array([0, len(data)], np.int64),
    )


def test_classifier_uses_payload_and_domain_name_beats_ip_service():
    from tests.reference.sni_ref import build_client_hello

    inspector = _core.PayloadInspector(
        ["facebook.com"], np.array([3], np.uint32), np.array([SOCIAL], np.uint8)
    )
    clf = _classifier(inspector, service_prefix=([0x05060700], [24], [7]))
    hello = build_client_hello([(0, b"www.facebook.com")])
    _, _, service, app, activity, evidence, _, _, _ = _classify(clf, hello)
    assert _core.APP_NAMES[app[0]] == "tls"
    assert service[0] == 3  # the SNI's service, not the IP list's 7
    assert _core.ACTIVITY_NAMES[activity[0]] == "social"
    assert evidence[0] & _core.EVIDENCE_BITS["sni"]
    # No name match: the IP-list service stays.
    other = build_client_hello([(0, b"example.org")])
    _, _, service, *_ = _classify(clf, other)
    assert service[0] == 7


def test_classifier_without_payload_stage_ignores_payload():
    clf = _classifier()
    _, _, _, app, *_ = _classify(clf, b'{"id":1,"method":"mining.subscribe","params":[]}\n')
    assert app[0] == 0
