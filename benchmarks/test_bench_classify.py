"""classify() throughput against the best numpy pipeline for the same labels."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pytest

from benchmarks.conftest import measure, size
from benchmarks.generators import ipv4_routing_table, numpy_flat24
from nkclass import Classifier
from nkclass.addresses import parse_prefixes
from nkclass.labels import EVIDENCE
from nkclass.rules import Ruleset, rules_from_text
from nkclass.rules.compile import compile_rules

FAMILY = "classify 10M flows"
ARROW = "classify an Arrow batch as readers give it, vs numpy uint32"
N_FLOWS = size(10_000_000, 3_000_000)


def benchmark_rules() -> Ruleset:
    """The default ruleset plus 3,000 named service prefixes (pool and relay lists)."""
    nets, lens, _ = ipv4_routing_table(3_000, seed=9)
    lines = []
    for i, (net, length) in enumerate(zip(nets.tolist(), lens.tolist(), strict=True)):
        if i % 500 == 0:
            category = ("mining", "tor", "vpn", "social", "streaming", "crypto_exchange")[i // 500]
            lines.append(
                f'\n[[network]]\nservice = "svc{i // 500}"\ncategory = "{category}"\nprefixes = ['
            )
        ip = ".".join(str((net >> s) & 255) for s in (24, 16, 8, 0))
        lines.append(f'  "{ip}/{length}",')
        if i % 500 == 499:
            lines.append("]")
    return rules_from_text("\n".join(lines))


def flows(n: int, seed: int = 21) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 2**32, n, dtype=np.uint32)
    dst = rng.integers(0, 2**32, n, dtype=np.uint32)
    nk = rng.random(n) < 0.2
    src[nk] = 0xAF2DB000 + rng.integers(0, 1024, int(nk.sum()), dtype=np.uint32)
    ports = np.array([443, 80, 53, 22, 3333, 8333, 1194, 9001, 6881, 25, 5555, 123], np.uint16)
    return {
        "src_ip": src,
        "dst_ip": dst,
        "src_port": rng.integers(1024, 65536, n, dtype=np.uint16),
        "dst_port": rng.choice(ports, n),
        "protocol": rng.choice(np.array([6, 17, 50], np.uint8), n, p=[0.75, 0.24, 0.01]),
    }


@dataclass
class NumpyTables:
    """The ruleset as flat numpy lookup tables."""

    path24: np.ndarray
    svc24: np.ndarray
    folded: np.ndarray  # /24s holding a longer prefix (numpy cannot be exact there)
    tcp: np.ndarray
    udp: np.ndarray
    by_proto: np.ndarray
    port_app: np.ndarray
    port_act: np.ndarray
    port_rank: np.ndarray
    svc_act: np.ndarray
    server_act: np.ndarray
    prec: np.ndarray


def numpy_tables(rules: Ruleset) -> NumpyTables:
    compiled = compile_rules(rules)

    def flat(rows):
        parsed = parse_prefixes([r[0] for r in rows])
        labels = np.array([r[1] for r in rows], np.uint32)[parsed.v4_index]
        return numpy_flat24(parsed.v4_network, parsed.v4_length, labels, np.uint16), parsed

    path24, p1 = flat([(p, c) for c, w in enumerate(rules.watched, 1) for p in w.prefixes])
    svc = {name: code for code, name in enumerate(compiled.services)}
    svc24, p2 = flat([(p, svc[n.service]) for n in rules.networks for p in n.prefixes])
    folded = np.zeros(1 << 24, bool)
    for parsed in (p1, p2):
        folded[parsed.v4_network[parsed.v4_length > 24] >> 8] = True
    n_rules = len(rules.ports) + 1
    tcp = np.zeros(65536, np.uint16)
    udp = np.zeros(65536, np.uint16)
    by_proto = np.zeros(256, np.uint16)
    ids = compiled.port_table.rules_for  # reuse nothing but the ruleset's own order below
    del ids
    order = sorted(
        range(len(rules.ports)),
        key=lambda i: -(rules.ports[i].last_port - rules.ports[i].first_port),
    )
    from nkclass.labels import ACTIVITY_CODES, APP_CODES

    port_app = np.zeros(n_rules, np.uint8)
    port_act = np.zeros(n_rules, np.uint8)
    port_rank = np.zeros(n_rules, np.int32)
    for i in order:
        r = rules.ports[i]
        if r.protocol in (0, 6):
            tcp[r.first_port : r.last_port + 1] = i + 1
        if r.protocol in (0, 17):
            udp[r.first_port : r.last_port + 1] = i + 1
        if r.protocol not in (0, 6, 17):
            by_proto[r.protocol] = i + 1
        port_app[i + 1] = APP_CODES[r.app] if r.app else 0
        port_act[i + 1] = ACTIVITY_CODES[r.activity] if r.activity else 0
        port_rank[i + 1] = 1 if r.weak else 2
    svc_act = np.zeros(len(compiled.services), np.uint8)
    for n in rules.networks:
        svc_act[svc[n.service]] = ACTIVITY_CODES[n.category] if n.category else 0
    server_act = np.zeros(len(rules.paths), np.uint8)
    for c, w in enumerate(rules.watched, 1):
        server_act[c] = ACTIVITY_CODES[w.server_activity] if w.server_activity else 0
    from nkclass.rules.compile import _precedence

    return NumpyTables(
        path24,
        svc24,
        folded,
        tcp,
        udp,
        by_proto,
        port_app,
        port_act,
        port_rank,
        svc_act,
        server_act,
        _precedence(rules).astype(np.int32),
    )


def numpy_classify(b: dict[str, np.ndarray], t: NumpyTables) -> tuple[np.ndarray, ...]:
    """The same labels as Classifier.classify, with whole-array numpy steps."""
    src24, dst24 = b["src_ip"] >> 8, b["dst_ip"] >> 8
    ps, pd = t.path24[src24], t.path24[dst24]
    side = (ps > 0).astype(np.uint8) | ((pd > 0).astype(np.uint8) << 1)
    path = np.where(ps > 0, ps, pd)
    ss, sd = t.svc24[src24], t.svc24[dst24]
    service = np.where(side == 1, sd, np.where(side == 2, ss, np.where(sd > 0, sd, ss)))
    proto = b["protocol"]
    tcp, udp = proto == 6, proto == 17
    rd = np.where(tcp, t.tcp[b["dst_port"]], np.where(udp, t.udp[b["dst_port"]], t.by_proto[proto]))
    rs = np.where(tcp, t.tcp[b["src_port"]], np.where(udp, t.udp[b["src_port"]], 0))
    rule = np.where(rd > 0, rd, rs)
    app = t.port_app[rule]
    # Candidates as (activity, rank, evidence bit); score = rank, then precedence.
    cand_act = [t.svc_act[service], np.where(pd > 0, t.server_act[pd], 0), t.port_act[rule]]
    cand_rank = [
        np.where(cand_act[0] > 0, 3, 0),
        np.where(cand_act[1] > 0, 1, 0),
        np.where(cand_act[2] > 0, t.port_rank[rule], 0),
    ]
    bits = [EVIDENCE["ip_list"], EVIDENCE["watched"], EVIDENCE["port"]]
    scores = np.stack(
        [
            r * 65536 - np.where(a > 0, t.prec[a], 0) * (r > 0)
            for a, r in zip(cand_act, cand_rank, strict=True)
        ]
    )
    best = scores.argmax(axis=0)
    activity = np.choose(best, cand_act).astype(np.uint8)
    rank = np.choose(best, cand_rank)
    activity[rank == 0] = 0
    evidence = np.where(app > 0, EVIDENCE["port"], 0)
    for a, r, bit in zip(cand_act, cand_rank, bits, strict=True):
        evidence |= np.where((r == rank) & (a == activity) & (r > 0), bit, 0)
    confidence = np.array([0, 1, 2, 2, 3], np.uint8)[rank]
    return path, side, service, app, activity, evidence.astype(np.uint16), confidence


@pytest.fixture(scope="module")
def setup():
    rules = benchmark_rules()
    # The AS stage has its own family (test_bench_asn.py); the numpy pipeline
    # computes the labels of paths, named networks and ports.
    return rules, Classifier(rules, asn=False), numpy_tables(rules), flows(N_FLOWS)


def test_numpy_pipeline_gives_the_same_labels(setup):
    """The baseline is only fair if it computes the same thing."""
    _, clf, tables, b = setup
    sample = {k: v[:200_000] for k, v in b.items()}
    ours = clf.classify(sample)
    theirs = numpy_classify(sample, tables)
    exact = ~(tables.folded[sample["src_ip"] >> 8] | tables.folded[sample["dst_ip"] >> 8])
    for name, mine, base in zip(
        ("path", "side", "service", "app", "activity", "evidence", "confidence"),
        (
            ours.path,
            ours.side,
            ours.service,
            ours.app,
            ours.activity,
            ours.evidence,
            ours.confidence,
        ),
        theirs,
        strict=True,
    ):
        np.testing.assert_array_equal(mine[exact], base[exact], err_msg=name)


def test_classify_nkclass(benchmark, setup):
    _, clf, _, b = setup
    measure(benchmark, FAMILY, "nkclass", N_FLOWS, lambda: clf.classify(b))


def test_classify_numpy(benchmark, setup):
    _, _, tables, b = setup
    measure(benchmark, FAMILY, "numpy", N_FLOWS, lambda: numpy_classify(b, tables), rounds=3)


@pytest.mark.guard
def test_guard_classify(registry):
    registry.guard(FAMILY, "nkclass", "numpy", 3.0, "target 3x and 30M flows/s")


def reader_batch(b: dict[str, np.ndarray]) -> pa.RecordBatch:
    """The flows as a reader hands them over: addresses as 16-byte
    IPv4-mapped rows in fixed_size_binary(16) columns."""

    def mapped(v: np.ndarray) -> pa.Array:
        rows = np.zeros((len(v), 16), np.uint8)
        rows[:, 10:12] = 0xFF
        rows[:, 12:] = v.astype(">u4").view(np.uint8).reshape(-1, 4)
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(v),
                                                    [None, pa.py_buffer(rows)])

    return pa.record_batch({"src_ip": mapped(b["src_ip"]), "dst_ip": mapped(b["dst_ip"]),
                            **{k: b[k] for k in ("src_port", "dst_port", "protocol")}})


def test_classify_arrow_batch(benchmark, setup):
    _, clf, _, b = setup
    batch = reader_batch(b)
    np.testing.assert_array_equal(clf.classify(batch).activity[:10_000],
                                  clf.classify({k: v[:10_000] for k, v in b.items()}).activity)
    measure(benchmark, ARROW, "arrow", N_FLOWS, lambda: clf.classify(batch))


def test_classify_numpy_uint32(benchmark, setup):
    _, clf, _, b = setup
    measure(benchmark, ARROW, "uint32", N_FLOWS, lambda: clf.classify(b))


@pytest.mark.guard
def test_guard_classify_arrow(registry):
    # The narrowing is one pass over the 16-byte rows: medians 0.88-0.92x
    # over 8-25 interleaved rounds at 3M and 10M flows here. A CI run
    # failed at 0.75x on five rounds (0.94, 1.01, 0.75, 0.64, 0.74): the
    # machine's disturbed phases last longer than a round. Fifteen rounds
    # steady the median, as for the detectors' guard; the threshold stays.
    registry.guard(ARROW, "arrow", "uint32", 0.8,
                   "target 0.8x: IPv4-mapped rows are narrowed to uint32 before the native pass",
                   n_rounds=15)
