"""Which flows a report or a top list counts: a time window and the paths
and activities to keep, applied to each classified batch before grouping."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from nkclass.labels import ACTIVITIES
from nkclass.report.model import parse_time


def did_you_mean(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'mining'?)`` for the closest choice, else ``""``."""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_names(kind: str, values: Iterable[str], known: Sequence[str]) -> str | None:
    """The error text for the first of ``values`` not in ``known``, or None."""
    for value in values:
        if value not in known:
            return (
                f"unknown {kind} {value!r}{did_you_mean(value, known)}; "
                f"expected one of {', '.join(known)}"
            )
    return None


def _names(value: str | Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset([value] if isinstance(value, str) else value)


@dataclass(frozen=True)
class FlowFilter:
    """Keep flows starting in [start, end) (ms since epoch, UTC) on the given
    paths and activities; None keeps everything on that count."""

    start: int | None = None
    end: int | None = None
    paths: frozenset[str] | None = None
    activities: frozenset[str] | None = None

    @classmethod
    def of(
        cls,
        start: object = None,
        end: object = None,
        path: str | Iterable[str] | None = None,
        activity: str | Iterable[str] | None = None,
    ) -> FlowFilter | None:
        """A filter from user values (dates as text, datetimes or ms; a name
        or a list of names), or None when nothing is filtered. Raises
        ValueError for an unknown activity or an empty window."""
        lo = None if start is None else parse_time(start)
        hi = None if end is None else parse_time(end)
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"the end ({end}) must come after the start ({start})")
        activities = _names(activity)
        if activities is not None:
            problem = unknown_names("activity", sorted(activities), ACTIVITIES)
            if problem:
                raise ValueError(problem)
        chosen = cls(lo, hi, _names(path), activities)
        return None if chosen == cls() else chosen

    def mask(
        self,
        ts: np.ndarray,
        path: np.ndarray,
        path_names: Sequence[str],
        activity: np.ndarray,
        activity_names: Sequence[str],
    ) -> np.ndarray:
        """Boolean mask of the flows to keep (codes index the name lists)."""
        keep = np.ones(len(ts), bool)
        if self.start is not None:
            keep &= ts >= self.start
        if self.end is not None:
            keep &= ts < self.end
        for wanted, codes, names in (
            (self.paths, path, path_names),
            (self.activities, activity, activity_names),
        ):
            if wanted is not None:
                allowed = np.array([name in wanted for name in names] or [False])
                keep &= allowed[codes]
        return keep
