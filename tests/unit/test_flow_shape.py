"""The flow-shape stage: the nine-condition score per (src, dst, dst_port)
group, checked against a pure-Python reference and on synthetic sessions
(DOMAIN.md 3.5 and 6.4)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nkclass import Classifier, RuleError, SchemaTypeError, SchemaValueError, load_rules
from nkclass.classify.stages.flow_shape import SHAPE_CONDITIONS, SHAPE_MEMBER, shape_conditions
from nkclass.rules import rules_from_text
from tests.reference.flow_shape import ACK, FIN, PSH, SYN, shape_masks

MINER = "175.45.176.20"
POOL = "192.0.2.50"
T0 = 1_700_000_000_000  # ms
ACTIVE_TIMEOUT_MS = 30 * 60 * 1000


def export(packets, active_timeout_ms=ACTIVE_TIMEOUT_MS):
    """Packets (t_ms, size, flags) of one TCP session -> flow records cut by
    an active timeout, each with the OR of its packets' flags."""
    flows, current = [], None
    for t, size, flags in packets:
        if current is None or t - current["ts_start"] >= active_timeout_ms:
            current = {"ts_start": t, "ts_end": t, "packets": 0, "bytes": 0, "tcp_flags": 0}
            flows.append(current)
        current["ts_end"] = t
        current["packets"] += 1
        current["bytes"] += size
        current["tcp_flags"] |= flags
    return flows


def session(seed, *, hours, gap_s, size, first_sport=50123):
    """A long keepalive-style session: every gap_s seconds one side sends a
    small PSH+ACK message and the other a pure ACK. Opens with a handshake,
    ends with a FIN exchange."""
    rng = np.random.default_rng(seed)
    t = T0
    pkts = [(t, 60, SYN), (t + 20, 60, SYN | ACK), (t + 40, 54, ACK)]
    end = T0 + int(hours * 3600_000)
    while t < end:
        t += int(rng.uniform(*gap_s) * 1000)
        pkts.append((t, int(rng.integers(*size)), PSH | ACK))
        pkts.append((t + 30, 54 + int(rng.integers(0, 8)), ACK))
    pkts += [(t + 100, 54, FIN | ACK), (t + 120, 54, FIN | ACK), (t + 140, 54, ACK)]
    return export(pkts), first_sport


def batch_of(flows, src, dst, sport, dport):
    n = len(flows)
    return {
        "src_ip": [src] * n,
        "dst_ip": [dst] * n,
        "src_port": np.full(n, sport, np.uint16),
        "dst_port": np.full(n, dport, np.uint16),
        "protocol": np.full(n, 6, np.uint8),
        "ts_start": np.array([f["ts_start"] for f in flows], np.int64),
        "ts_end": np.array([f["ts_end"] for f in flows], np.int64),
        "packets": np.array([f["packets"] for f in flows], np.uint64),
        "bytes": np.array([f["bytes"] for f in flows], np.uint64),
        "tcp_flags": np.array([f["tcp_flags"] for f in flows], np.uint8),
    }


def met(mask):
    return {name for bit, name in enumerate(SHAPE_CONDITIONS) if int(mask) >> bit & 1}


@pytest.fixture(scope="module")
def clf():
    return Classifier(load_rules())


def test_two_hour_miner_session_to_3333_scores_as_mining_suspect_by_shape(clf):
    flows, sport = session(1, hours=2, gap_s=(30, 60), size=(60, 101))
    assert len(flows) >= 4  # exported in pieces by the active timeout
    b = batch_of(flows, MINER, POOL, sport, 3333)
    masks = shape_conditions(b)
    # SYN and FIN sit in the first and last pieces only: 7 of 9.
    assert met(masks[0]) == set(SHAPE_CONDITIONS) - {"syn_share", "fin_share"}
    r = clf.classify(b)
    assert set(r.names("activity")) == {"mining_suspect"}
    assert set(r.names("confidence")) == {"low"}
    assert all("flow_shape" in e.split("|") for e in r.names("evidence"))


def test_miner_session_on_an_unlisted_port_gets_flow_shape_alone(clf):
    flows, sport = session(2, hours=2, gap_s=(30, 60), size=(60, 101))
    r = clf.classify(batch_of(flows, MINER, POOL, sport, 7000))
    assert set(r.names("activity")) == {"mining_suspect"}
    assert set(r.names("evidence")) == {"flow_shape"}


def test_short_bulk_download_to_3333_gets_no_flow_shape_evidence(clf):
    flow = {"ts_start": T0, "ts_end": T0 + 4_000, "packets": 3_500, "bytes": 4_900_000,
            "tcp_flags": SYN | ACK | PSH | FIN}
    r = clf.classify(batch_of([flow], MINER, POOL, 50200, 3333))
    assert "flow_shape" not in r.names("evidence")[0]
    assert r.names("activity") == ["mining_suspect"]  # from the pool port alone
    assert r.names("evidence") == ["port"]


def test_ssh_keepalive_session_is_never_mining(clf):
    """A long SSH session with keepalives (port 22) has the miner's shape:
    the score cannot tell them apart, so it may be mining_suspect (low
    confidence, weak evidence, which wins the tie with the weak ssh port rule
    by activity precedence), but never mining."""
    flows, sport = session(3, hours=2, gap_s=(30, 60), size=(90, 131))
    r = clf.classify(batch_of(flows, MINER, "198.51.100.22", sport, 22))
    assert "mining" not in r.names("activity")
    assert set(r.names("activity")) <= {"mining_suspect", "remote_admin"}
    assert set(r.names("confidence")) == {"low"}
    assert set(r.names("app")) == {"ssh"}


def test_stage_is_skipped_when_a_measurement_column_is_missing(clf):
    flows, sport = session(4, hours=2, gap_s=(30, 60), size=(60, 101))
    b = batch_of(flows, MINER, POOL, sport, 7000)
    for name in ("ts_start", "ts_end", "packets", "bytes", "tcp_flags"):
        partial = {k: v for k, v in b.items() if k != name}
        r = clf.classify(partial)
        assert set(r.names("activity")) == {"unknown"}, name
        with pytest.raises(SchemaValueError, match=name):
            shape_conditions(partial)


def test_threshold_from_the_ruleset_option():
    flows, sport = session(5, hours=2, gap_s=(30, 60), size=(60, 101))
    b = batch_of(flows, MINER, POOL, sport, 7000)
    strict = Classifier(rules_from_text("[flow_shape]\nthreshold = 0.8\n"))
    assert set(strict.classify(b).names("activity")) == {"unknown"}  # 7/9 < 0.8
    loose = Classifier(rules_from_text("[flow_shape]\nthreshold = 0.7\nmin_flows = 2\n"))
    assert set(loose.classify(b).names("activity")) == {"mining_suspect"}
    few = Classifier(rules_from_text(f"[flow_shape]\nmin_flows = {len(flows) + 1}\n"))
    assert set(few.classify(b).names("activity")) == {"unknown"}
    off = Classifier(rules_from_text("[flow_shape]\nenabled = false\n"))
    assert set(off.classify(b).names("activity")) == {"unknown"}


@pytest.mark.parametrize(
    "text, message",
    [
        ("[flow_shape]\nthreshold = 0\n", "threshold must be a number in"),
        ("[flow_shape]\nthreshold = 1.5\n", "threshold must be a number in"),
        ('[flow_shape]\nthreshold = "high"\n', "expected float or int"),
        ("[flow_shape]\nmin_flows = 0\n", "min_flows must be at least 1"),
        ("[flow_shape]\nwindow = 60\n", "unknown key 'window'"),
    ],
)
def test_flow_shape_option_errors_name_the_line(text, message):
    with pytest.raises(RuleError, match=message) as info:
        rules_from_text(text, defaults=False)
    assert ":2" in str(info.value) or "line 2" in str(info.value)


def test_ipv4_as_uint32_and_as_mapped_ipv6_fall_in_one_group():
    b = {
        "src_ip": np.array([0x0A000001, 0x0A000001], np.uint32),
        "dst_ip": ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
        "src_port": np.array([50000, 50001], np.uint16),
        "dst_port": np.array([3333, 3333], np.uint16),
        "protocol": np.array([6, 6], np.uint8),
        "ts_start": np.array([0, 0], np.int64),
        "ts_end": np.array([1000, 1000], np.int64),
        "packets": np.array([1, 1], np.uint64),
        "bytes": np.array([60, 60], np.uint64),
        "tcp_flags": np.array([0x18, 0x02], np.uint8),
    }
    masks = shape_conditions(b, min_flows=2)
    assert masks[0] == masks[1] and masks[0] & SHAPE_MEMBER


def test_arrow_timestamps_nulls_and_wrong_types():
    flows, sport = session(6, hours=1, gap_s=(30, 60), size=(60, 101))
    b = batch_of(flows, MINER, POOL, sport, 7000)
    table = pa.table({
        **{k: v for k, v in b.items() if k not in ("ts_start", "ts_end", "tcp_flags")},
        "ts_start": pa.array(b["ts_start"] * 1000, pa.timestamp("us", tz="UTC")),
        "ts_end": pa.array(b["ts_end"], pa.timestamp("ms", tz="UTC")),
        "tcp_flags": pa.array([None, *b["tcp_flags"][1:].tolist()], pa.uint8()),
    })
    masks = shape_conditions(table)
    assert masks[0] == 0  # a row without flags takes no part
    expected = shape_conditions({**b, "packets": np.r_[np.uint64(0), b["packets"][1:]]})
    assert masks.tolist() == expected.tolist()
    with pytest.raises(SchemaTypeError, match="'ts_end'"):
        shape_conditions({**b, "ts_end": b["ts_end"].astype(float)})
    with pytest.raises(SchemaValueError, match=r"'tcp_flags'.*outside 0\.\.255"):
        shape_conditions({**b, "tcp_flags": np.full(len(flows), 300)})
    with pytest.raises(SchemaValueError, match="'packets'"):
        shape_conditions({**b, "packets": np.full(len(flows), -1)})


def test_extreme_values_do_not_crash():
    big = np.iinfo(np.int64)
    b = {
        "src_ip": ["10.0.0.1"] * 4,
        "dst_ip": ["10.0.0.2"] * 4,
        "src_port": np.array([1, 2, 3, 4], np.uint16),
        "dst_port": np.array([5, 5, 5, 5], np.uint16),
        "protocol": np.array([6, 6, 6, 6], np.uint8),
        "ts_start": np.array([big.max, big.min, 0, 5], np.int64),
        "ts_end": np.array([big.min, big.max, -5, 0], np.int64),
        "packets": np.array([2**64 - 1] * 4, np.uint64),
        "bytes": np.array([2**64 - 1] * 4, np.uint64),
        "tcp_flags": np.array([255, 0, 1, 2], np.uint8),
    }
    masks = shape_conditions(b)
    rows = [
        {k: (v[i] if isinstance(v, list) else int(v[i])) for k, v in b.items()} for i in range(4)
    ]
    assert masks.tolist() == shape_masks(rows)
    Classifier(load_rules()).classify(b)
    empty = {k: (np.zeros(0, np.uint32) if isinstance(v, list) else v[:0]) for k, v in b.items()}
    assert shape_conditions(empty).tolist() == []


ADDRS = ["10.0.0.1", "10.0.0.2", "192.0.2.1", "2001:db8::1"]


@st.composite
def flow_groups(draw, big: bool = False):
    """Flows in a few groups; with ``big``, packets, bytes and durations
    about 2^40 (where the native score moves from 64-bit to 128-bit
    products) or far past it."""
    n = draw(st.integers(1, 40))
    top = draw(st.sampled_from([2**40, 2**48, 2**56]))
    huge = st.integers(0, top) | st.integers(top // 2 - 2**20, top // 2 + 2**20)
    rows = []
    for _ in range(n):
        start = draw(st.integers(0, 20_000_000))
        rows.append({
            "src_ip": draw(st.sampled_from(ADDRS[:2])),
            "dst_ip": draw(st.sampled_from(ADDRS[2:])),
            "src_port": draw(st.sampled_from([22, 3333, 40000, 65535])),
            "dst_port": draw(st.sampled_from([22, 3333, 40000])),
            "protocol": draw(st.sampled_from([6, 6, 6, 17])),
            "ts_start": start,
            "ts_end": start + draw(huge if big else st.integers(-1000, 8_000_000)),
            "packets": draw(huge if big else st.integers(0, 6000)),
            "bytes": draw(huge if big else st.integers(0, 700_000)),
            "tcp_flags": draw(st.sampled_from([0x18, 0x18, 0x10, 0x1A, 0x19, 0x1B, 0x04, 0x00])),
        })
    return rows, draw(st.integers(1, 4))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flow_groups() | flow_groups(big=True))
def test_native_score_matches_the_reference(case):
    rows, min_flows = case
    b = {k: [r[k] for r in rows] for k in rows[0]}
    for k in ("src_port", "dst_port", "protocol", "ts_start", "ts_end", "packets", "bytes",
              "tcp_flags"):
        dtype = {"ts_start": np.int64, "ts_end": np.int64, "packets": np.uint64,
                 "bytes": np.uint64}.get(k, np.int64)
        b[k] = np.array(b[k], dtype)
    assert shape_conditions(b, min_flows).tolist() == shape_masks(rows, min_flows)


def random_rows(rng, n, addresses):
    """n flows among a few hosts and ports, so that groups repeat."""
    rows = []
    for _ in range(n):
        start = int(rng.integers(0, 20_000_000))
        rows.append({
            "src_ip": addresses[int(rng.integers(len(addresses)))],
            "dst_ip": addresses[int(rng.integers(len(addresses)))],
            "src_port": int(rng.choice([22, 3333, 40000, 65535])),
            "dst_port": int(rng.choice([22, 443, 3333])),
            "protocol": int(rng.choice([6, 6, 6, 17])),
            "ts_start": start,
            "ts_end": start + int(rng.integers(-1000, 8_000_000)),
            "packets": int(rng.integers(0, 6000)),
            "bytes": int(rng.integers(0, 700_000)),
            "tcp_flags": int(rng.choice([0x18, 0x10, 0x1A, 0x19, 0x04, 0x00])),
        })
    return rows


def columns_of(rows):
    b = {k: [r[k] for r in rows] for k in rows[0]}
    for k in ("src_port", "dst_port", "protocol", "ts_start", "ts_end", "packets", "bytes",
              "tcp_flags"):
        b[k] = np.array(b[k], np.uint64 if k in ("packets", "bytes") else np.int64)
    return b


def test_large_and_small_batches_in_turn_match_the_reference():
    # Thousands of groups (the table grows past its first size), then smaller
    # and IPv6 batches: the grouping memory one call leaves is reused by the
    # next, and no group of an earlier batch leaks into a later one.
    rng = np.random.default_rng(7)
    v4 = [f"10.0.{i // 250}.{i % 250}" for i in range(60)]
    v6 = [f"2001:db8::{i:x}" for i in range(20)] + v4[:5]
    for n, addresses in ((6000, v4), (300, v4), (2000, v6), (40, v4), (3000, v4)):
        rows = random_rows(rng, n, addresses)
        for min_flows in (1, 3):
            assert shape_conditions(columns_of(rows), min_flows).tolist() == \
                shape_masks(rows, min_flows)
