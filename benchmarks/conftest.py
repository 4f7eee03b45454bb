"""Benchmark harness: every family times nkclass and the baseline a user
would otherwise pick in the same run, then ratio guards (collected last)
compare them.

A guard does not trust one sample: it runs the two callables the
benchmarks registered alternately (A B, B A, A B, ...) and takes the median
of the per-round ratios, so a burst of load on a shared machine moves one
round, not the verdict. The summary shows the spread of those rounds and
the CPU model and SIMD flags the ratio was measured on.

Quick mode (``NKCLASS_BENCH_QUICK=1``, what CI uses) shrinks the inputs and
rounds; the guards are the same. Ratios are written to the terminal summary
and to ``bench-ratios.json``.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

QUICK = os.environ.get("NKCLASS_BENCH_QUICK") == "1"
# Interleaved rounds per guarded ratio (odd, so the median is one round).
GUARD_ROUNDS = 5 if QUICK else 7
# The flags that decide how fast byte scanning and table lookups can go.
SIMD_FLAGS = ("sse4_2", "avx", "avx2", "bmi2", "avx512f", "avx512bw", "avx512vl",
              "avx512vbmi", "asimd", "sve")


def size(full: int, quick: int) -> int:
    return quick if QUICK else full


def machine() -> dict[str, str]:
    """CPU model, core count and the SIMD flags present (Linux /proc/cpuinfo)."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key = key.strip()
                if key in ("model name", "Model") and model in ("", platform.machine()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": str(os.cpu_count()),
        "simd": ",".join(f for f in SIMD_FLAGS if f in flags) or "none seen",
    }


MACHINE = machine()


@dataclass
class Measured:
    seconds: float  # pytest-benchmark's best round
    items: int
    fn: Callable[[], object] | None  # what a round runs, for interleaved guards


@dataclass
class Registry:
    """What each (family, implementation) measured, and the guarded ratios."""

    measured: dict[tuple[str, str], Measured] = field(default_factory=dict)
    ratios: list[dict] = field(default_factory=list)

    def record(self, family: str, impl: str, benchmark, items: int,
               fn: Callable[[], object] | None = None) -> None:
        """Keeps the benchmark's best time; ``fn`` (one round of the same
        work on ``items`` items) lets a guard re-time it interleaved."""
        if benchmark.enabled and benchmark.stats is not None:
            self.measured[(family, impl)] = Measured(benchmark.stats.stats.min, items, fn)

    def rate(self, family: str, impl: str) -> float:
        m = self.measured[(family, impl)]
        return m.items / m.seconds

    def interleaved_ratios(self, family: str, impl: str, baseline: str,
                           rounds: int = GUARD_ROUNDS) -> list[float]:
        """Per-round rate ratios impl / baseline, the two run alternately."""
        a, b = self.measured[(family, impl)], self.measured[(family, baseline)]
        ratios = []
        for r in range(rounds):
            order = (a, b) if r % 2 == 0 else (b, a)
            secs = {}
            for m in order:
                t0 = time.perf_counter()
                m.fn()
                secs[id(m)] = time.perf_counter() - t0
            ratios.append((a.items / secs[id(a)]) / (b.items / secs[id(b)]))
        return ratios

    def guard(self, family: str, impl: str, baseline: str, at_least: float | None,
              note: str = "", n_rounds: int = GUARD_ROUNDS):
        """Assert impl's rate is at least ``at_least`` times the baseline's
        (``None``: report the ratio only, where the baseline does less).
        The ratio is the median over ``n_rounds`` interleaved rounds when both
        sides registered a callable, else the ratio of the best times."""
        if (family, impl) not in self.measured or (family, baseline) not in self.measured:
            pytest.skip(f"{family}: {impl} or {baseline} was not measured in this run")
        a, b = self.measured[(family, impl)], self.measured[(family, baseline)]
        if a.fn is not None and b.fn is not None:
            rounds = self.interleaved_ratios(family, impl, baseline, n_rounds)
            method = f"median of {len(rounds)} interleaved rounds"
        else:
            rounds = [self.rate(family, impl) / self.rate(family, baseline)]
            method = "best times"
        ratio = statistics.median(rounds)
        self.ratios.append(
            {
                "family": family,
                "impl": impl,
                "baseline": baseline,
                "impl_per_s": round(self.rate(family, impl)),
                "baseline_per_s": round(self.rate(family, baseline)),
                "ratio": round(ratio, 2),
                "spread": [round(min(rounds), 2), round(max(rounds), 2)],
                "method": method,
                "guard": at_least,
                "note": note,
                **MACHINE,
            }
        )
        assert at_least is None or ratio >= at_least, (
            f"{family}: {impl} is {ratio:.2f}x {baseline} ({method}, rounds "
            f"{', '.join(f'{r:.2f}' for r in rounds)}), below the {at_least}x guard "
            f"on {MACHINE['cpu']} [{MACHINE['simd']}]"
        )


REGISTRY = Registry()


def measure(benchmark, family: str, impl: str, items: int, fn: Callable[[], object],
            rounds: int = 5, warmup_rounds: int = 1):
    """Times ``fn`` (one round over ``items`` items) with pytest-benchmark,
    registers it for the family's guards and returns its result."""
    out = benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)
    REGISTRY.record(family, impl, benchmark, items, fn)
    return out


@pytest.fixture(scope="session")
def registry() -> Registry:
    return REGISTRY


def pytest_configure(config):
    config.addinivalue_line("markers", "guard: ratio guard, runs after every benchmark")


def pytest_collection_modifyitems(items):
    # Guards read what the benchmarks measured, so they run last.
    items.sort(key=lambda item: item.get_closest_marker("guard") is not None)


def pytest_terminal_summary(terminalreporter):
    if not REGISTRY.ratios and not REGISTRY.measured:
        return
    tr = terminalreporter
    tr.section("nkclass throughput (same run)")
    tr.write_line(f"machine: {MACHINE['cpu']}, {MACHINE['cores']} cores, "
                  f"SIMD {MACHINE['simd']}")
    for (family, impl), m in sorted(REGISTRY.measured.items()):
        tr.write_line(f"{family:<28} {impl:<14} {m.items / m.seconds / 1e6:10.2f} M/s")
    for r in REGISTRY.ratios:
        guard = f"guard {r['guard']}x" if r["guard"] is not None else "reported, no guard"
        lo, hi = r["spread"]
        tr.write_line(
            f"ratio {r['family']:<22} {r['impl']} / {r['baseline']} = {r['ratio']:.2f}x "
            f"[{lo:.2f}-{hi:.2f}, {r['method']}] ({guard}) {r['note']} "
            f"| {r['cpu']} [{r['simd']}]"
        )
    with open("bench-ratios.json", "w") as fh:
        json.dump(
            {
                "quick": QUICK,
                "machine": MACHINE,
                "ratios": REGISTRY.ratios,
                "rates": {f"{f}/{i}": m.items / m.seconds
                          for (f, i), m in REGISTRY.measured.items()},
            },
            fh,
            indent=2,
        )
