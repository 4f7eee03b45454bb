"""Unpickling checks the state of every native object before building it:
prefix and port tables are rebuilt through their checked builds from arrays
of exactly their types, and a Classifier's ruleset is checked before it is
compiled. (PairCache states: tests/unit/test_pair_cache.py.)"""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from nkclass import Classifier, PrefixTable, RuleError, _core, load_rules
from nkclass.rules import FlowShapeOptions, Ruleset


def restore(cls, state):
    obj = cls.__new__(cls)
    obj.__setstate__(state)
    return obj


def prefix_state():
    table = PrefixTable(["10.0.0.0/8", "2001:db8::/32"], [1, 2])
    return list(table._native.__getstate__())


def test_tables_round_trip():
    table = PrefixTable(["10.0.0.0/8", "2001:db8::/32"], [1, 2])
    copy = pickle.loads(pickle.dumps(table))
    assert copy.lookup(["10.1.2.3", "2001:db8::1", "8.8.8.8"]).tolist() == [1, 2, 0]
    rules = load_rules()
    clf = pickle.loads(pickle.dumps(Classifier(rules)))
    assert clf.rules == rules


@pytest.mark.parametrize(
    "index, value, message",
    [
        (1, np.zeros((1, 0), np.uint8), "v4_length must be a 1-D uint8 array"),
        (0, np.array([0x0A000000], np.int64), "v4_network must be a 1-D uint32 array"),
        (1, np.array([8.0]), "v4_length must be a 1-D uint8 array"),
        (2, [1], "v4_label must be a 1-D uint32 array"),
        (3, np.zeros(16, np.uint8), "v6_network must be a 2-D uint8 array"),
        (6, 1, "expected \\(v4_network"),
        (7, 2**70, "expected \\(v4_network"),
        (7, -1, "expected \\(v4_network"),
    ],
)
def test_prefix_table_state_of_the_wrong_shape_or_type_is_refused(index, value, message):
    state = prefix_state()
    state[index] = value
    with pytest.raises(ValueError, match=f"invalid PrefixTable state: {message}"):
        restore(_core.PrefixTable, tuple(state))


def test_prefix_table_state_is_rebuilt_through_the_checked_build():
    state = prefix_state()
    state[1] = np.array([33], np.uint8)  # a /33
    with pytest.raises(_core.BuildError, match="length above 32"):
        restore(_core.PrefixTable, tuple(state))
    state = prefix_state()
    state[7] = 20  # a first stride the table does not have
    with pytest.raises(_core.BuildError):
        restore(_core.PrefixTable, tuple(state))
    state = prefix_state()
    state[4] = np.array([32, 32], np.uint8)  # two lengths for one IPv6 row
    with pytest.raises(ValueError, match="v6_length: length 2 differs"):
        restore(_core.PrefixTable, tuple(state))
    with pytest.raises(ValueError, match="invalid PrefixTable state"):
        restore(_core.PrefixTable, tuple(prefix_state()[:7]))


def port_state():
    table = _core.PortTable(np.array([6], np.uint8), np.array([80], np.uint16),
                            np.array([81], np.uint16))
    return list(table.__getstate__())


@pytest.mark.parametrize(
    "index, value, message",
    [
        (0, np.zeros((1, 0), np.uint8), "protocol must be a 1-D uint8 array"),
        (1, np.array([70000], np.int64), "first_port must be a 1-D uint16 array"),
        (3, 0, "expected \\(protocol"),
    ],
)
def test_port_table_state_of_the_wrong_shape_or_type_is_refused(index, value, message):
    state = port_state()
    state[index] = value
    with pytest.raises(ValueError, match=f"invalid PortTable state: {message}"):
        restore(_core.PortTable, tuple(state))


def test_port_table_state_is_rebuilt_through_the_checked_build():
    state = port_state()
    state[1] = np.array([90], np.uint16)  # 90-81
    with pytest.raises(_core.BuildError, match="ends before it starts"):
        restore(_core.PortTable, tuple(state))


def test_native_shims_refuse_2d_columns_that_would_be_read_short():
    # shape (n, 0) passes a check of shape[0] but holds no elements.
    with pytest.raises(ValueError, match="expected a 1-D array"):
        _core.PortTable(np.zeros((3, 0), np.uint8), np.zeros(3, np.uint16),
                        np.zeros(3, np.uint16))
    table = _core.PortTable(np.array([6], np.uint8), np.array([80], np.uint16),
                            np.array([81], np.uint16))
    with pytest.raises(ValueError, match="expected a 1-D array"):
        table.rules_for(np.zeros((3, 0), np.uint8), np.zeros(3, np.uint16),
                        np.zeros(3, np.uint16))
    with pytest.raises(ValueError, match="expected a 1-D array"):
        _core.PairCache(4, 0).confirm(np.zeros((2, 16), np.uint8), np.zeros((2, 16), np.uint8),
                                      np.zeros((2, 1), np.int64))


def tampered(ruleset: Ruleset, **fields) -> Ruleset:
    """A ruleset with fields no parser would give (as a pickle may hold)."""
    bad = dataclasses.replace(ruleset)
    for name, value in fields.items():
        object.__setattr__(bad, name, value)
    return bad


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda r: tampered(r, ports=(dataclasses.replace(r.ports[0], first_port=70000,
                                                          last_port=70000),)),
         "first_port must be an int in \\[0, 65535\\], got 70000"),
        (lambda r: tampered(r, ports=(dataclasses.replace(r.ports[0], protocol=300),)),
         "protocol must be an int in \\[0, 255\\]"),
        (lambda r: tampered(r, ports=(dataclasses.replace(r.ports[0], app="warez"),)),
         "app 'warez' is not one of"),
        (lambda r: tampered(r, watched=(dataclasses.replace(r.watched[0], name="Bad Name"),)),
         "path name 'Bad Name' must be"),
        (lambda r: tampered(r, watched=(dataclasses.replace(r.watched[0], prefixes=("nope",)),)),
         "'nope' is not a prefix"),
        (lambda r: tampered(r, watched=(dataclasses.replace(r.watched[0], prefixes=[1]),)),
         "prefixes must be a tuple of str"),
        (lambda r: tampered(r, domains=(dataclasses.replace(r.domains[0], suffixes=("A.COM",)),)),
         "'A.COM' is not a lowercase domain name suffix"),
        (lambda r: tampered(r, watched=r.watched + r.watched[:1]), "watched path .* appears twice"),
        (lambda r: tampered(r, precedence=("mining", "mining")), "appears twice"),
        (lambda r: tampered(r, flow_shape=FlowShapeOptions(threshold=float("nan"))),
         "threshold must be a number in \\(0, 1\\]"),
        (lambda r: tampered(r, flow_shape=FlowShapeOptions(min_flows=2**40)), "min_flows"),
        (lambda r: tampered(r, networks=("x",)), "expected a PeerNetwork, got str"),
        (lambda r: tampered(r, asns=(dataclasses.replace(r.asns[0], asns=(2**33,)),)),
         "an AS number must be an int in \\[1, 4294967295\\]"),
        (lambda r: tampered(r, asns=(dataclasses.replace(r.asns[0], confidence="high"),)),
         "confidence 'high' is not one of low, medium"),
        (lambda r: tampered(r, asns=r.asns[:1] * 2), "AS number .* appears twice"),
        (lambda r: tampered(r, service_info=(dataclasses.replace(r.service_info[0],
                                                                 country="usa"),)),
         "country must be an ISO 3166-1 alpha-2 code"),
        (lambda r: "not a ruleset", "expected a Ruleset, got str"),
    ],
)
def test_a_classifier_checks_a_ruleset_it_did_not_parse(make, message):
    bad = make(load_rules())
    with pytest.raises(RuleError, match=message):
        Classifier(bad)


def test_unpickling_a_classifier_with_a_tampered_ruleset_raises_rule_error():
    clf = Classifier(load_rules())
    object.__setattr__(clf.rules, "ports", (dataclasses.replace(clf.rules.ports[0],
                                                                weak="yes"),))
    data = pickle.dumps(clf)
    with pytest.raises(RuleError, match="weak must be a bool"):
        pickle.loads(data)
