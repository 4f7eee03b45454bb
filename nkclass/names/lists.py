"""Learned names as dated lists: the addresses a cache saw named by
services of chosen categories (mining pools, VPN endpoints), with the
intervals they held, so that flow records from another exporter, with no DNS
or payload of their own, are labelled by address (evidence ``ip_list``).

>>> import nkclass
>>> names = nkclass.NameCache()
>>> names.learn(["192.0.2.10"], ["pool.supportxmr.com"], at=[1556668800000], ttl=300)
1
>>> pools = learned_dated_list(names, nkclass.load_rules())
>>> pools.valid_at(1556668900000)
[('192.0.2.10/32', 'supportxmr')]
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from nkclass import _core
from nkclass.addresses import format_addresses
from nkclass.labels import ACTIVITY_CODES
from nkclass.lists.dated import Accumulator, DatedList
from nkclass.names.cache import NameCache
from nkclass.rules.model import Ruleset


def learned_dated_list(
    cache: NameCache,
    rules: Ruleset,
    categories: Iterable[str] = ("mining",),
    service: str = "learned-pools",
) -> DatedList:
    """A :class:`~nkclass.lists.dated.DatedList` of the cache's addresses
    whose names the ruleset's domain rules give one of ``categories``: one
    row per address and named service, valid from when the name was first
    learned to when it expires (TTL plus the cache's grace); overlapping
    intervals of an address merge. The list's ``category`` is the single
    category asked for, else None (each row then keeps its service's)."""
    if not isinstance(cache, NameCache):
        raise TypeError(f"cache must be an nkclass.NameCache, not {type(cache).__name__}")
    if not isinstance(rules, Ruleset):
        raise TypeError(f"rules must be an nkclass Ruleset, not {type(rules).__name__}")
    wanted = tuple(categories)
    unknown = [c for c in wanted if c not in ACTIVITY_CODES]
    if not wanted or unknown:
        raise ValueError(f"categories must be activities of nkclass.ACTIVITIES; got {wanted!r}")
    table = cache.entries()
    acc = Accumulator(service)
    domains = [d for d in rules.domains if d.category in wanted]
    if domains and table.num_rows:
        suffixes = [s for d in domains for s in d.suffixes]
        owner = np.array([i for i, d in enumerate(domains) for _ in d.suffixes], np.uint32) + 1
        activity = np.array([ACTIVITY_CODES[domains[i - 1].category] for i in owner], np.uint8)
        matcher = _core.DomainTable(suffixes, owner, activity)
        code, _ = matcher.lookup(table.column("name").to_pylist())
        hit = np.flatnonzero(code)
        rows = table.column("address").combine_chunks()
        raw = np.frombuffer(rows.buffers()[1], np.uint8, offset=rows.offset * 16)
        raw = raw[: 16 * len(rows)].reshape(-1, 16)
        first = table.column("first_seen").cast("int64").to_numpy()
        expires = table.column("expires").cast("int64").to_numpy()
        hit = hit[np.argsort(first[hit], kind="stable")]
        for i, text in zip(hit.tolist(), format_addresses(raw[hit]), strict=True):
            canonical = acc.prefix(text)
            if canonical is None:
                continue
            acc.add(canonical, int(first[i]), int(expires[i]) + 1,
                    acc.service_code(domains[int(code[i]) - 1].service))
    category = wanted[0] if len(wanted) == 1 else None
    return acc.build(category, f"names learned on the wire ({', '.join(wanted)})", ())


def write_dated_csv(lst: DatedList, path: str | os.PathLike) -> int:
    """Write ``lst`` in the plain dated-list form (``format = "csv"`` of
    ``[[dated_list]]``: prefix, valid_from, valid_until, service; rows in
    order of valid_from), to a temporary file renamed into place when
    complete. Returns the rows written."""
    if not isinstance(lst, DatedList):
        raise TypeError(f"expected a DatedList, not {type(lst).__name__}")
    order = np.lexsort((lst.key, lst.start))
    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            about = " ".join((lst.source or "dated list").split())
            f.write(f"# {about}; category {lst.category or '(per service)'}\n")
            f.write("prefix,valid_from,valid_until,service\n")
            for i in order.tolist():
                f.write(f"{lst.prefixes[lst.key[i]]},{_seconds(int(lst.start[i]))},"
                        f"{_seconds(int(lst.end[i]))},{lst.services[lst.service[i]]}\n")
        os.replace(tmp, target)
    except BaseException:
        os.unlink(tmp)
        raise
    return len(order)


def _seconds(ms: int) -> str:
    """Unix seconds, keeping milliseconds exactly."""
    whole, frac = divmod(abs(ms), 1000)
    return ("-" if ms < 0 else "") + (f"{whole}.{frac:03d}" if frac else str(whole))
