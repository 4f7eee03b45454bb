"""Reader counters: what was read, what was skipped and why."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ReadStats:
    """Counters one reader (or a whole :func:`nkclass.read` call) reports.

    ``records`` counts rows yielded; ``skipped`` rows or lines dropped under
    ``errors="skip"`` with ``skip_reasons`` saying why; ``truncated`` tells
    where and why an input ended early; ``native`` holds a reader's own
    counters (the pcap meter's packets, fragments, evictions, ...).
    """

    records: int = 0
    skipped: int = 0
    skip_reasons: Counter = field(default_factory=Counter)
    truncated: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    native: Counter = field(default_factory=Counter)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped += count
        self.skip_reasons[reason] += count

    def merge(self, other: ReadStats) -> None:
        self.records += other.records
        self.skipped += other.skipped
        self.skip_reasons.update(other.skip_reasons)
        self.truncated.extend(other.truncated)
        self.files.extend(other.files)
        self.native.update(other.native)

    def summary(self) -> str:
        """One line for the end of a CLI run."""
        return f"{self.records:,} records read, {self.details()}"

    def details(self) -> str:
        """Skipped records (with the commonest reasons), evicted flows and
        truncated inputs."""
        parts = [f"{self.skipped:,} skipped"]
        if self.skip_reasons:
            top = ", ".join(f"{r}: {n:,}" for r, n in self.skip_reasons.most_common(3))
            parts[-1] += f" ({top})"
        if self.native.get("flows_evicted"):
            parts.append(f"{self.native['flows_evicted']:,} flows evicted")
        if self.truncated:
            parts.append(f"{len(self.truncated)} input(s) truncated")
        return ", ".join(parts)
