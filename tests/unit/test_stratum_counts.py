"""The meter's stratum share counters: the native streaming scanner against a
slow JSON reference, and through the pcap reader on real and built captures."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nkclass import _core
from nkclass.flows.pcap import read_pcap
from tests.unit.test_pcap_meter import eth, ipv4, meter_bytes, tcp, write_pcap

DATA = Path(__file__).resolve().parents[1] / "data" / "pcap"


# --------------------------------------------------------------------------- reference


def _targets(value: object):
    """Every "target" value anywhere in a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "target":
                yield v
            yield from _targets(v)
    elif isinstance(value, list):
        for v in value:
            yield from _targets(v)


def _target_difficulty(text: object) -> float | None:
    if not isinstance(text, str) or len(text) not in (8, 16):
        return None
    try:
        value = int.from_bytes(bytes.fromhex(text), "little")
    except ValueError:
        return None
    return 2.0 ** (8 * len(text) // 2) / value if value else None


def reference_counts(pieces) -> tuple[int, float, str]:
    """Whole lines per side, parsed with json: (submits, latest difficulty
    or NaN, dialect name)."""
    buffers = {0: b"", 1: b""}
    broken = {0: False, 1: False}
    submits, difficulty, algo = 0, math.nan, "none"
    for piece in pieces:
        side, data = piece[0], piece[1]
        if len(piece) > 2 and piece[2]:
            broken[side] = True
        buffers[side] += data
        *lines, buffers[side] = buffers[side].split(b"\n")
        for line in lines:
            if broken[side]:
                broken[side] = False
                continue
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            method = msg.get("method")
            if method in ("mining.submit", "submit"):
                submits += 1
                if math.isnan(difficulty):
                    algo = "stratum_v1" if method == "mining.submit" else "cryptonote"
            elif method == "mining.set_difficulty":
                params = msg.get("params")
                if (isinstance(params, list) and params and type(params[0]) in (int, float)
                        and params[0] > 0):
                    difficulty, algo = float(params[0]), "stratum_v1"
                continue
            found = [d for d in map(_target_difficulty, _targets(msg)) if d]
            if found:
                difficulty, algo = found[-1], "cryptonote"
    return submits, difficulty, algo


# --------------------------------------------------------------------------- lines

hexdigits = st.text("0123456789abcdef", min_size=1, max_size=20)
numbers = st.one_of(st.integers(0, 2**40), st.floats(1e-6, 1e12, allow_nan=False))


def _obj(draw, fields: dict) -> bytes:
    items = list(fields.items())
    order = draw(st.permutations(items))
    sep = draw(st.sampled_from([(",", ":"), (", ", ": "), (",", " : ")]))
    return json.dumps(dict(order), separators=sep).encode()


@st.composite
def stratum_lines(draw) -> tuple[int, bytes]:
    """(side, one newline-terminated line): what miners and pools send,
    plus near misses."""
    kind = draw(st.sampled_from(["submit_v1", "submit_cn", "set_difficulty", "job", "login",
                                 "notify", "suggest", "other", "junk"]))
    ident = draw(st.one_of(st.none(), st.integers(0, 10**6)))
    if kind == "submit_v1":
        line = _obj(draw, {"id": ident, "method": "mining.submit",
                           "params": ["worker", "job", draw(hexdigits), draw(hexdigits)]})
        side = 0
    elif kind == "submit_cn":
        line = _obj(draw, {"id": ident, "jsonrpc": "2.0", "method": "submit",
                           "params": {"id": "x", "job_id": "j", "nonce": draw(hexdigits),
                                      "result": draw(hexdigits)}})
        side = 0
    elif kind == "set_difficulty":
        line = _obj(draw, {"id": None, "method": "mining.set_difficulty",
                           "params": [draw(numbers)]})
        side = 1
    elif kind == "job":
        line = _obj(draw, {"jsonrpc": "2.0", "method": "job",
                           "params": {"blob": draw(hexdigits), "job_id": "j",
                                      "target": draw(hexdigits)}})
        side = 1
    elif kind == "login":
        line = _obj(draw, {"id": 1, "jsonrpc": "2.0", "error": None,
                           "result": {"id": "m", "status": "OK",
                                      "job": {"blob": "00", "target": draw(hexdigits)}}})
        side = 1
    elif kind == "notify":
        line = _obj(draw, {"id": None, "method": "mining.notify",
                           "params": ["j", draw(hexdigits), [], True]})
        side = 1
    elif kind == "suggest":
        line = _obj(draw, {"id": 3, "method": "mining.suggest_difficulty",
                           "params": [draw(numbers)]})
        side = 0
    elif kind == "other":
        line = _obj(draw, {"id": ident, "method": draw(st.sampled_from(
            ["mining.subscribe", "mining.authorize", "keepalived", "submitx", "login"])),
            "params": [draw(st.text(max_size=8))]})
        side = draw(st.integers(0, 1))
    else:
        line = draw(st.binary(max_size=40)).replace(b"\n", b"")
        side = draw(st.integers(0, 1))
    return side, line + draw(st.sampled_from([b"\n", b"\r\n"]))


@st.composite
def conversations(draw):
    """Lines of both sides cut into pieces at random points; each side's
    order kept, the sides interleaved."""
    lines = draw(st.lists(stratum_lines(), max_size=25))
    streams = {s: b"".join(line for side, line in lines if side == s) for s in (0, 1)}
    pieces = {0: [], 1: []}
    for s, data in streams.items():
        cuts = sorted(draw(st.sets(st.integers(1, max(1, len(data) - 1)), max_size=12)))
        bounds = [0, *[c for c in cuts if c < len(data)], len(data)]
        pieces[s] = [(s, data[a:b]) for a, b in itertools.pairwise(bounds) if b > a]
    order = draw(st.lists(st.integers(0, 1), min_size=len(pieces[0]) + len(pieces[1]),
                          max_size=len(pieces[0]) + len(pieces[1])))
    merged, at = [], {0: 0, 1: 0}
    for pick in order:
        s = pick if at[pick] < len(pieces[pick]) else 1 - pick
        merged.append(pieces[s][at[s]])
        at[s] += 1
    return merged


def _same(native, reference) -> None:
    assert native[0] == reference[0]
    assert native[2] == reference[2]
    if math.isnan(reference[1]):
        assert math.isnan(native[1])
    else:
        assert native[1] == pytest.approx(reference[1], rel=1e-12)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversations())
def test_native_stratum_counts_equal_the_json_reference(pieces):
    _same(_core.stratum_counts(pieces), reference_counts(pieces))


@settings(max_examples=200, deadline=None)
@given(conversations(), st.data())
def test_a_gap_drops_exactly_the_line_it_falls_in(pieces, data):
    if not pieces:
        return
    k = data.draw(st.integers(0, len(pieces) - 1))
    pieces = [(*p, True) if i == k else p for i, p in enumerate(pieces)]
    _same(_core.stratum_counts(pieces), reference_counts(pieces))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.binary(max_size=200)), max_size=20))
def test_arbitrary_bytes_never_crash_the_scanner(pieces):
    submits, difficulty, algo = _core.stratum_counts(pieces)
    assert submits <= sum(p[1].count(b"\n") for p in pieces)
    assert math.isnan(difficulty) or difficulty > 0
    assert algo in _core.STRATUM_ALGO_NAMES


def test_known_lines_give_known_counts():
    lines = [
        (1, b'{"params": [2048], "id": null, "method": "mining.set_difficulty"}\n'),
        (0, b'{"params": ["w", "1", "00", "5", "6"], "id": 4, "method": "mining.submit"}\n'),
        (0, b'{"id":5,"method":"mining.submit","params":["w","1","00","5","7"]}\n'),
    ]
    assert _core.stratum_counts(lines) == (2, 2048.0, "stratum_v1")
    monero = [(1, b'{"jsonrpc":"2.0","method":"job",'
                  b'"params":{"blob":"0707","target":"711b0d00"}}\n'),
              (0, b'{"id":2,"jsonrpc":"2.0","method":"submit","params":{"nonce":"a"}}\n')]
    submits, difficulty, algo = _core.stratum_counts(monero)
    assert (submits, algo) == (1, "cryptonote")
    assert difficulty == pytest.approx(2**32 / 0x000D1B71)


# --------------------------------------------------------------------------- through the meter


def _read(path) -> pa.Table:
    return pa.Table.from_batches(list(read_pcap(path)))


def test_real_captures_give_the_pools_difficulty():
    table = _read(DATA / "mining-bitcoin-stratum-getwork.pcap")
    v1 = table.filter(table.column("stratum_algo").is_valid()).to_pylist()
    assert {r["stratum_algo"] for r in v1} == {"stratum_v1"}
    # the capture's pool sets difficulty 4096 (and 64 on one connection)
    assert {r["stratum_difficulty"] for r in v1} <= {4096.0, 64.0}
    assert 4096.0 in {r["stratum_difficulty"] for r in v1}
    monero = _read(DATA / "mining-monero-stratum.pcap")
    rows = monero.filter(monero.column("stratum_algo").is_valid()).to_pylist()
    assert rows and {r["stratum_algo"] for r in rows} == {"cryptonote"}
    expected = {2**32 / int.from_bytes(bytes.fromhex(t), "little")
                for t in ("70a50700", "711b0d00", "91fd0600")}
    for r in rows:
        assert any(r["stratum_difficulty"] == pytest.approx(e) for e in expected)


def test_flows_without_stratum_have_zero_submits_and_null_difficulty():
    table = _read(DATA / "http-get.pcap")
    assert table.column("stratum_submits").to_pylist() == [0] * table.num_rows
    assert table.column("stratum_difficulty").null_count == table.num_rows
    assert table.column("stratum_algo").null_count == table.num_rows


def _miner_capture(n_submits: int, payload_split: int = 0, lose: int | None = None,
                   start: float = 1_600_000_000.0, step: float = 10.0) -> bytes:
    """One stratum v1 connection: SYN, handshake lines, difficulty 512, then
    `n_submits` submissions `step` seconds apart (each cut in two segments
    at `payload_split` when nonzero; submission `lose` is never sent whole)."""
    c, s = ("175.45.176.9", 50000), ("198.51.100.7", 3333)
    seq = {0: 1001, 1: 5001}
    records = []

    def send(side, t, data, flags=0x18, skip=False):
        a, b = (c, s) if side == 0 else (s, c)
        if not skip:
            records.append((t, eth(ipv4(a[0], b[0], 6, tcp(a[1], b[1], seq[side], flags, data)))))
        seq[side] = (seq[side] + len(data)) & 0xFFFFFFFF

    records.append((start, eth(ipv4(c[0], s[0], 6, tcp(c[1], s[1], 1000, 0x02)))))
    records.append((start + 0.01, eth(ipv4(s[0], c[0], 6, tcp(s[1], c[1], 5000, 0x12)))))
    send(0, start + 0.02, b'{"id":1,"method":"mining.subscribe","params":[]}\n')
    send(1, start + 0.03, b'{"id":null,"method":"mining.set_difficulty","params":[512]}\n')
    for i in range(n_submits):
        line = b'{"params":["w","j%d","00","5","6"],"id":%d,"method":"mining.submit"}\n' % (i, i)
        t = start + 1 + i * step
        if payload_split:
            send(0, t, line[:payload_split], skip=i == lose)
            send(0, t + 0.001, line[payload_split:])
        else:
            send(0, t, line, skip=i == lose)
        send(1, t + 0.05, b'{"id":%d,"result":true,"error":null}\n' % i)
    return write_pcap(records)


@pytest.mark.parametrize("payload_bytes", [0, 16, 512])
def test_submissions_are_counted_past_the_payload_prefix(payload_bytes):
    cols, status, _ = meter_bytes(_miner_capture(40), payload_bytes=payload_bytes)
    assert status["status"] == "ok"
    assert list(cols["stratum_submits"]) == [40]
    assert list(cols["stratum_difficulty"]) == [512.0]
    assert list(cols["stratum_algo"]) == [1]


def test_split_lines_count_once_and_a_lost_segment_loses_one_share():
    cols, _, _ = meter_bytes(_miner_capture(30, payload_split=7))
    assert list(cols["stratum_submits"]) == [30]
    cols, _, _ = meter_bytes(_miner_capture(30, payload_split=7, lose=12))
    assert list(cols["stratum_submits"]) == [29]


def test_retransmitted_segments_are_not_counted_twice():
    data = _miner_capture(5)
    # replay every record once more, in order: all of it is retransmission
    header, body = data[:24], data[24:]
    cols, _, _ = meter_bytes(header + body + body)
    assert list(cols["stratum_submits"]) == [5]


def test_an_active_timeout_cut_splits_the_counts_and_keeps_the_difficulty():
    # 60 submissions 10 s apart, records cut every 300 s of capture time
    cols, _, _ = meter_bytes(_miner_capture(60), active_timeout_ms=300_000)
    assert len(cols["stratum_submits"]) > 1
    assert int(cols["stratum_submits"].sum()) == 60
    assert set(cols["stratum_difficulty"].tolist()) == {512.0}


def test_stratum_state_is_charged_against_the_memory_bound():
    one = _core.meter_peak_flow_bytes(512)
    _, status, counters = meter_bytes(_miner_capture(10), max_memory_bytes=one)
    assert status["status"] == "ok"
    assert counters["peak_memory_bytes"] <= one
