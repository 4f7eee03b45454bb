"""Longest-prefix match throughput against numpy and pytricia."""

from __future__ import annotations

import ipaddress

import numpy as np
import pytest

from benchmarks.conftest import measure, size
from benchmarks.generators import (
    ipv4_routing_table,
    ipv6_queries,
    ipv6_routing_table,
    numpy_flat24,
)
from nkclass import PrefixTable, load_rules
from nkclass.rules.compile import compile_rules

pytricia = pytest.importorskip("pytricia")

BIG = "ipv4 1M-prefix table"
SMALL = "ipv4 small table"
V6 = "ipv6 200k-prefix table"
N_LOOKUPS = 10_000_000  # the workload in both modes (it takes about a second)
N_PER_CALL = size(200_000, 50_000)  # per-call libraries are timed on a subset


@pytest.fixture(scope="module")
def big_table():
    nets, lens, labels = ipv4_routing_table(1_000_000)
    return nets, lens, labels


@pytest.fixture(scope="module")
def uniform_v4():
    return np.random.default_rng(11).integers(0, 2**32, N_LOOKUPS, dtype=np.uint32)


def test_big_nkclass(benchmark, big_table, uniform_v4):
    table = PrefixTable.from_ipv4_arrays(*big_table)
    out = measure(benchmark, BIG, "nkclass", len(uniform_v4), lambda: table.lookup(uniform_v4))
    assert out.shape == uniform_v4.shape


def test_big_numpy_flat24(benchmark, big_table, uniform_v4):
    flat = numpy_flat24(*big_table)
    measure(benchmark, BIG, "numpy", len(uniform_v4), lambda: np.take(flat, uniform_v4 >> 8))


def test_big_pytricia(benchmark, big_table, uniform_v4):
    nets, lens, labels = big_table
    trie = pytricia.PyTricia(32)
    for net, length, label in zip(nets.tolist(), lens.tolist(), labels.tolist(), strict=True):
        trie[f"{ipaddress.IPv4Address(net)}/{length}"] = label
    queries = [str(ipaddress.IPv4Address(a)) for a in uniform_v4[:N_PER_CALL].tolist()]
    get = trie.get
    measure(benchmark, BIG, "pytricia", len(queries), lambda: [get(q) for q in queries],
            rounds=3)


def small_table_rows():
    """The default ruleset's prefixes plus 5,000 service prefixes."""
    nets, lens, labels = ipv4_routing_table(5_000, seed=5)
    compile_rules(load_rules())  # the default rules must compile alongside
    nk = np.array([0xAF2DB000, 0xD2346D00, 0x4D5E2300], np.uint32)
    return (
        np.concatenate([nets, nk]),
        np.concatenate([lens, np.array([22, 24, 24], np.uint8)]),
        np.concatenate([labels, np.array([1, 2, 3], np.uint32)]),
    )


def test_small_nkclass(benchmark, uniform_v4):
    nets, lens, labels = small_table_rows()
    table = PrefixTable.from_ipv4_arrays(nets, lens, labels, duplicates="last")
    assert table.first_stride == 16
    measure(benchmark, SMALL, "nkclass", len(uniform_v4), lambda: table.lookup(uniform_v4))


def test_small_numpy_flat24(benchmark, uniform_v4):
    flat = numpy_flat24(*small_table_rows(), dtype=np.uint16)
    measure(benchmark, SMALL, "numpy", len(uniform_v4), lambda: np.take(flat, uniform_v4 >> 8))


@pytest.fixture(scope="module")
def v6_table():
    texts, labels = ipv6_routing_table(200_000)
    return texts, labels, ipv6_queries(texts, size(2_000_000, 500_000))


def test_v6_nkclass(benchmark, v6_table):
    texts, labels, queries = v6_table
    table = PrefixTable(texts, labels, duplicates="last")
    measure(benchmark, V6, "nkclass", len(queries), lambda: table.lookup(queries))


def test_v6_pytricia(benchmark, v6_table):
    texts, labels, queries = v6_table
    trie = pytricia.PyTricia(128)
    for text, label in zip(texts, labels.tolist(), strict=True):
        trie[text] = label
    subset = [str(ipaddress.IPv6Address(bytes(r))) for r in queries[: N_PER_CALL // 2]]
    get = trie.get
    measure(benchmark, V6, "pytricia", len(subset), lambda: [get(q) for q in subset], rounds=3)


@pytest.mark.guard
def test_guard_big_table(registry):
    registry.guard(BIG, "nkclass", "numpy", 1.5, "target 2x")
    registry.guard(BIG, "nkclass", "pytricia", 50, "target 100x")


@pytest.mark.guard
def test_guard_small_table(registry):
    registry.guard(SMALL, "nkclass", "numpy", 2.0)


@pytest.mark.guard
def test_guard_ipv6(registry):
    registry.guard(V6, "nkclass", "pytricia", 3.0)
