"""Top talkers: the outside peers, watched hosts or services with the most
flows or bytes, over any number of classified batches.

Each peer or host also gets the named service, the AS number and (for
peers) the organisation seen most often with it: from the flows' ``service``
label, the AS stage's ``peer_as``/``peer_org`` (or the exporter's ``src_as``
/ ``dst_as``), so that lists and charts can say what an address is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from nkclass.addresses import format_addresses, to_ipv6_rows
from nkclass.classify.stages.prefix import PrefixTable
from nkclass.labels import SIDES
from nkclass.report import _kernel
from nkclass.report.aggregate import LabelledBatch
from nkclass.report.select import FlowFilter
from nkclass.rules.model import Ruleset

TOP_BY = ("peer", "host", "service")
PAIR_SHIFT = 32  # (group in batch, service id or AS number) packed into one int64


class TopRow(NamedTuple):
    """One line of a top list. ``service``, ``asn`` and ``org`` are the named
    service, AS number and AS organisation most often seen with a peer or
    host (None when none was; ``org`` only for peers; all None for
    ``by="service"``)."""

    label: str
    flows: int
    bytes: int
    service: str | None = None
    asn: int | None = None
    org: str | None = None

    def describe(self) -> str:
        """``label`` with what is known of it, e.g.
        ``172.217.160.9 youtube AS15169 (Google LLC)``."""
        parts = [self.label]
        if self.service is not None:
            parts.append(self.service)
        if self.asn is not None:
            parts.append(f"AS{self.asn}")
        if self.org is not None:
            parts.append(f"({self.org})")
        return " ".join(parts)


class _AddressKeys:
    """int64 keys for addresses: IPv4 as its value, IPv6 as -(1 + its
    number in this registry) (IPv6 is rare; one dict entry per address)."""

    def __init__(self) -> None:
        self.ids: dict[bytes, int] = {}

    def keys(self, addrs: np.ndarray) -> np.ndarray:
        if addrs.dtype == np.uint32:
            return addrs.astype(np.int64)
        v4 = np.empty(len(addrs), np.uint32)
        is_v4 = np.empty(len(addrs), np.uint8)
        _kernel.ipv4_of_rows(addrs, v4, is_v4)
        keys = v4.astype(np.int64)
        v6 = np.flatnonzero(is_v4 == 0)
        if v6.size:
            uniq, inverse = np.unique(addrs[v6].copy().view("V16").ravel(), return_inverse=True)
            ids = np.array([self.ids.setdefault(bytes(u), len(self.ids)) for u in uniq])
            keys[v6] = -1 - ids[inverse]
        return keys

    def label(self, key: int) -> str:
        if key >= 0:
            return format_addresses(np.array([key], np.uint32)).to_pylist()[0]
        raw = list(self.ids)[-1 - key]
        return format_addresses(np.frombuffer(raw, np.uint8).reshape(1, 16)).to_pylist()[0]


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    group_of = np.empty(len(keys), np.int64)
    group_keys = np.empty(len(keys), np.int64)
    n = _kernel.group_ids(np.ascontiguousarray(keys, np.int64), group_of, group_keys)
    return group_of, group_keys[:n], n


def _sums(group_of: np.ndarray, n: int, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """(rows, sum of a, sum of b) per group, exact in uint64."""
    out = [np.empty(n, np.uint64) for _ in range(3)]
    _kernel.sum_by_group(
        group_of, n, np.ascontiguousarray(a, np.uint64), np.ascontiguousarray(b, np.uint64), *out
    )
    return tuple(out)


class _Most:
    """Counts of (key, value) pairs over batches; the most frequent value
    per key."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(
        self, group_of: np.ndarray, group_keys: np.ndarray, values: np.ndarray, use: np.ndarray
    ) -> None:
        rows = np.flatnonzero(use)
        if rows.size == 0:
            return
        pair = (group_of[rows] << PAIR_SHIFT) | values[rows].astype(np.int64)
        pair_of, pair_keys, n = _groups(pair)
        counts = _sums(pair_of, n, np.zeros(len(rows)), np.zeros(len(rows)))[0]
        self.parts.append(
            (group_keys[pair_keys >> PAIR_SHIFT], pair_keys & ((1 << PAIR_SHIFT) - 1), counts)
        )

    def best(self, wanted: np.ndarray) -> dict[int, int]:
        """key -> its most frequent value, for the keys in ``wanted``."""
        if not self.parts:
            return {}
        keys, values, counts = (np.concatenate(p) for p in zip(*self.parts, strict=True))
        pick = np.isin(keys, wanted)
        keys, values, counts = keys[pick], values[pick], counts[pick]
        totals: dict[tuple[int, int], int] = {}
        for k, v, c in zip(keys.tolist(), values.tolist(), counts.tolist(), strict=True):
            totals[(k, v)] = totals.get((k, v), 0) + c
        best: dict[int, tuple[int, int]] = {}
        for (k, v), c in totals.items():
            if k not in best or (c, -v) > (best[k][1], -best[k][0]):
                best[k] = (v, c)
        return {k: v for k, (v, _) in best.items()}


def _ids(registry: dict[str, int], names: list[str]) -> np.ndarray:
    """Stable ids of ``names`` across batches (whose codes differ)."""
    return np.array([registry.setdefault(name, len(registry)) for name in names] or [0], np.int64)


class TopCounter:
    """A top list built batch by batch (:func:`top` in one call); lets a
    command that already reads the batches for a report count talkers in the
    same pass."""

    def __init__(
        self,
        by: str = "peer",
        metric: str = "flows",
        watched_only: bool = True,
        chosen: FlowFilter | None = None,
        rules: Ruleset | None = None,
    ) -> None:
        if by not in TOP_BY:
            raise ValueError(f"by must be one of {', '.join(TOP_BY)}, got {by!r}")
        if metric not in ("flows", "bytes"):
            raise ValueError(f"metric must be 'flows' or 'bytes', got {metric!r}")
        self.by, self.metric, self.watched_only, self.chosen = by, metric, watched_only, chosen
        self.rules = rules
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.services: dict[str, int] = {}  # service name -> id
        self.addresses = _AddressKeys()
        self.service_of = _Most()
        self.asn_of = _Most()
        self.orgs: dict[str, int] = {}  # AS organisation name -> id
        self.org_of = _Most()

    def add(self, item: object) -> None:
        """Count one classified result or classified table."""
        view = LabelledBatch(item, "service", peers=True).keep(self.chosen)
        keep = view.side != 0 if self.watched_only else np.ones(view.n, bool)
        if not keep.any():
            return
        service = _ids(self.services, view.extra_names)[view.extra[keep].astype(np.int64)]
        if self.by == "service":
            keys = service
        else:
            dst_is_host = view.side[keep] == SIDES.index("dst")
            src, dst = view.src[keep], view.dst[keep]
            if src.dtype != dst.dtype:  # one column IPv4, the other 16-byte rows
                src = to_ipv6_rows(src) if src.dtype == np.uint32 else src
                dst = to_ipv6_rows(dst) if dst.dtype == np.uint32 else dst
            pick_dst = dst_is_host if self.by == "host" else ~dst_is_host
            mask = pick_dst[:, None] if src.ndim == 2 else pick_dst
            keys = self.addresses.keys(np.where(mask, dst, src))
        group_of, group_keys, n = _groups(keys)
        flows, nbytes, _ = _sums(group_of, n, view.bytes[keep], np.zeros(len(keys)))
        self.parts.append((group_keys, flows, nbytes))
        if self.by == "service":
            return
        # a DNS flow's service is the name looked up, not the resolver's own
        named = np.array([name != "none" for name in view.extra_names])[view.extra[keep]]
        if view.lookup is not None:
            named &= ~view.lookup[keep]
        self.service_of.add(group_of, group_keys, service, named)
        side_as = view.upstream if self.by == "host" else view.peer_as
        if side_as is not None:
            self.asn_of.add(group_of, group_keys, side_as[keep], side_as[keep] > 0)
        if self.by == "peer" and view.peer_org is not None:
            codes = view.peer_org[keep]
            known = np.array([bool(name) for name in view.peer_org_names] or [False])[codes]
            org = _ids(self.orgs, view.peer_org_names)[codes]
            self.org_of.add(group_of, group_keys, org, known)

    def rows(self, n: int = 10) -> list[TopRow]:
        """The ``n`` largest by the metric, largest first (ties: first seen)."""
        if not self.parts:
            return []
        keys, flows, nbytes = (np.concatenate(p) for p in zip(*self.parts, strict=True))
        group_of, group_keys, g = _groups(keys)
        _, nbytes, flows = _sums(group_of, g, nbytes, flows)
        score = flows if self.metric == "flows" else nbytes
        order = np.argsort(-score.astype(np.float64), kind="stable")[:n]
        names = list(self.services)
        if self.by == "service":
            return [TopRow(names[int(group_keys[i])], int(flows[i]), int(nbytes[i])) for i in order]
        chosen = group_keys[order]
        service = {k: names[v] for k, v in self.service_of.best(chosen).items()}
        asn = self.asn_of.best(chosen)
        org_names = list(self.orgs)
        org = {k: org_names[v] for k, v in self.org_of.best(chosen).items()}
        labels = [self.addresses.label(int(k)) for k in chosen]
        listed = _listed_services(labels, self.rules) if self.rules is not None else {}
        return [
            TopRow(
                label,
                int(flows[i]),
                int(nbytes[i]),
                listed.get(label, service.get(int(key))),
                asn.get(int(key)),
                org.get(int(key)),
            )
            for i, key, label in zip(order, chosen, labels, strict=True)
        ]


def _listed_services(addresses: list[str], rules: Ruleset) -> dict[str, str]:
    """Address -> the service of the ruleset's [[network]] prefixes it falls
    in (a peer's own label, where the ruleset lists it)."""
    prefixes = [(p, n.service) for n in rules.networks for p in n.prefixes]
    if not prefixes or not addresses:
        return {}
    table = PrefixTable([p for p, _ in prefixes], list(range(1, len(prefixes) + 1)))
    found = table.lookup(addresses)
    return {a: prefixes[int(f) - 1][1] for a, f in zip(addresses, found.tolist(), strict=True) if f}


def top(
    results: Iterable[object],
    by: str = "peer",
    metric: str = "flows",
    n: int = 10,
    watched_only: bool = True,
    *,
    start: object = None,
    end: object = None,
    path: str | list[str] | None = None,
    activity: str | list[str] | None = None,
    rules: Ruleset | None = None,
) -> list[TopRow]:
    """The ``n`` largest (label, flows, bytes, service, asn) by ``metric``
    over classified results or classified tables. ``peer`` is the endpoint
    outside the watched network, ``host`` the watched one; ``start``,
    ``end``, ``path`` and ``activity`` choose flows as in :func:`aggregate`.
    With ``rules``, a peer inside one of its [[network]] prefixes is named by
    that entry (for example a public resolver, whose flows name the domains
    looked up).

    >>> top([clf.classify(batch)], by="peer", n=3)  # doctest: +SKIP
    [TopRow(label='172.217.160.9', flows=1200, bytes=..., service='youtube', asn=15169), ...]
    """
    counter = TopCounter(by, metric, watched_only, FlowFilter.of(start, end, path, activity), rules)
    for item in results:
        counter.add(item)
    return counter.rows(n)
