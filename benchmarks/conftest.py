"""Benchmark harness: every family times nkclass and the baseline a user
would otherwise pick in the same run, then ratio guards (collected last)
compare them.

Quick mode (``NKCLASS_BENCH_QUICK=1``, what CI uses) shrinks the inputs and
rounds; the guards are the same. Ratios are written to the terminal summary
and to ``bench-ratios.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import pytest

QUICK = os.environ.get("NKCLASS_BENCH_QUICK") == "1"


def size(full: int, quick: int) -> int:
    return quick if QUICK else full


@dataclass
class Registry:
    """Best (minimum) seconds per round, by (family, implementation)."""

    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    items: dict[tuple[str, str], int] = field(default_factory=dict)
    ratios: list[dict] = field(default_factory=list)

    def record(self, family: str, impl: str, benchmark, items: int) -> None:
        if benchmark.enabled and benchmark.stats is not None:
            self.seconds[(family, impl)] = benchmark.stats.stats.min
            self.items[(family, impl)] = items

    def rate(self, family: str, impl: str) -> float:
        return self.items[(family, impl)] / self.seconds[(family, impl)]

    def guard(self, family: str, impl: str, baseline: str, at_least: float | None,
              note: str = ""):
        """Assert impl's rate is at least ``at_least`` times the baseline's
        (``None``: report the ratio only, where the baseline does less)."""
        if (family, impl) not in self.seconds or (family, baseline) not in self.seconds:
            pytest.skip(f"{family}: {impl} or {baseline} was not measured in this run")
        ratio = self.rate(family, impl) / self.rate(family, baseline)
        self.ratios.append(
            {
                "family": family,
                "impl": impl,
                "baseline": baseline,
                "impl_per_s": round(self.rate(family, impl)),
                "baseline_per_s": round(self.rate(family, baseline)),
                "ratio": round(ratio, 2),
                "guard": at_least,
                "note": note,
            }
        )
        assert at_least is None or ratio >= at_least, (
            f"{family}: {impl} is {ratio:.2f}x {baseline}, below the {at_least}x guard"
        )


REGISTRY = Registry()


@pytest.fixture(scope="session")
def registry() -> Registry:
    return REGISTRY


def pytest_configure(config):
    config.addinivalue_line("markers", "guard: ratio guard, runs after every benchmark")


def pytest_collection_modifyitems(items):
    # Guards read what the benchmarks measured, so they run last.
    items.sort(key=lambda item: item.get_closest_marker("guard") is not None)


def pytest_terminal_summary(terminalreporter):
    if not REGISTRY.ratios and not REGISTRY.seconds:
        return
    tr = terminalreporter
    tr.section("nkclass throughput (same run)")
    for (family, impl), secs in sorted(REGISTRY.seconds.items()):
        rate = REGISTRY.items[(family, impl)] / secs
        tr.write_line(f"{family:<28} {impl:<14} {rate / 1e6:10.2f} M/s")
    for r in REGISTRY.ratios:
        guard = f"guard {r['guard']}x" if r["guard"] is not None else "reported, no guard"
        tr.write_line(
            f"ratio {r['family']:<22} {r['impl']} / {r['baseline']} = {r['ratio']:.2f}x "
            f"({guard}) {r['note']}"
        )
    with open("bench-ratios.json", "w") as fh:
        json.dump(
            {
                "quick": QUICK,
                "ratios": REGISTRY.ratios,
                "rates": {
                    f"{f}/{i}": REGISTRY.items[(f, i)] / s for (f, i), s in REGISTRY.seconds.items()
                },
            },
            fh,
            indent=2,
        )
