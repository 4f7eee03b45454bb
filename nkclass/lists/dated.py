"""Dated IP lists: addresses (or prefixes) valid for intervals of time.

A :class:`DatedList` is what one ``[[dated_list]]`` ruleset entry (or one
:func:`read_dated_list` call) holds: for a service and an activity, rows of
(prefix, valid_from, valid_until[, service]) in ms since the epoch (UTC;
``valid_until`` excluded). Rows of one (prefix, service) that overlap or
touch are merged as they are read. The classifier matches a flow's peer
against the rows valid at its ``ts_start`` (see
:mod:`nkclass.rules.compile`), with evidence ``ip_list`` at medium
confidence.

The plain form (``format="csv"``), for any dated list (mining pool or VPN
endpoints, proxies, a threat feed):

* a header line naming the columns ``prefix``, ``valid_from``,
  ``valid_until`` and optionally ``service``, separated by commas or tabs
  (the header says which); lines starting with ``#`` and blank lines are
  skipped;
* ``prefix``: an address or a prefix (``198.51.100.7``, ``2001:db8::/48``);
* ``valid_from`` / ``valid_until``: ISO 8601 dates or datetimes
  (``2019-05-01``, ``2019-05-01 12:00:00``, ``2019-05-01T12:00:00+09:00``;
  UTC unless an offset is given) or Unix seconds (``1556668800``); the
  interval is [valid_from, valid_until) and must not be empty;
* ``service``: the service a row names, when not the list's own (lowercase,
  as ruleset service names);
* rows in order of ``valid_from`` (equal times allowed): a row that starts
  before the row above it is an error, as is an empty interval, each naming
  the file and line.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nkclass.lists.files import DatedListError, documents, ms_text, text_lines, utc_ms

SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,63}$")
#: Formats read_dated_list takes.
LIST_FORMATS = ("csv", "tor-consensus", "onionoo-details", "tor-exit-list")


@dataclass(frozen=True, eq=False)
class DatedList:
    """Rows valid for intervals: ``prefixes[key[i]]`` is valid for
    ``[start[i], end[i])`` (int64 ms, UTC) for service
    ``services[service[i]]``. ``category`` is the activity the list implies
    (None: it names services only); ``source`` says where it comes from;
    ``files`` what was read. Equal lists compare equal; a list pickles."""

    category: str | None
    services: tuple[str, ...]
    prefixes: tuple[str, ...]
    key: np.ndarray  # uint32, into prefixes
    start: np.ndarray  # int64 ms
    end: np.ndarray  # int64 ms
    service: np.ndarray  # uint16, into services
    source: str = ""
    files: tuple[str, ...] = ()
    origin: Any = field(default=None, compare=False)

    def __len__(self) -> int:
        return len(self.key)

    def _digest(self) -> bytes:
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.category, self.services, self.prefixes)).encode())
        for arr in (self.key, self.start, self.end, self.service):
            h.update(np.ascontiguousarray(arr).tobytes())
        return h.digest()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DatedList):
            return NotImplemented
        return self._digest() == other._digest()

    def __hash__(self) -> int:
        return hash(self._digest())

    def __repr__(self) -> str:
        span = ""
        if len(self):
            span = f", {ms_text(int(self.start.min()))} .. {ms_text(int(self.end.max()))}"
        return (f"DatedList({'/'.join(self.services)!r}, category={self.category!r}, "
                f"{len(self.prefixes)} prefixes, {len(self)} intervals{span})")

    def valid_at(self, t_ms: int) -> list[tuple[str, str]]:
        """``(prefix, service)`` of the rows valid at ``t_ms`` (a slow
        reference, for inspection and tests)."""
        hit = (self.start <= t_ms) & (t_ms < self.end)
        return sorted({(self.prefixes[k], self.services[s])
                       for k, s in zip(self.key[hit].tolist(), self.service[hit].tolist(),
                                       strict=True)})


class Accumulator:
    """Rows as a reader finds them, merged per (prefix, service) while they
    overlap or touch (readers give them in about time order, so an open
    interval per pair absorbs most of them)."""

    def __init__(self, service: str) -> None:
        self.services: dict[str, int] = {service: 0}
        self.prefix_keys: dict[str, int] = {}
        self._canonical: dict[str, str | None] = {}
        self._open: dict[tuple[int, int], list[int]] = {}
        self._closed: list[tuple[int, int, int, int]] = []

    def prefix(self, text: str) -> str | None:
        """The canonical form of an address or prefix text, or None when it
        is not one (host bits set included). IPv4-mapped IPv6 addresses
        become IPv4."""
        known = self._canonical.get(text, "")
        if known != "":
            return known
        try:
            net = ipaddress.ip_network(text, strict=True)
        except ValueError:
            canonical = None
        else:
            if net.version == 6 and net.network_address.ipv4_mapped and net.prefixlen >= 96:
                mapped = net.network_address.ipv4_mapped
                canonical = str(ipaddress.ip_network(f"{mapped}/{net.prefixlen - 96}"))
            else:
                canonical = str(net)
        self._canonical[text] = canonical
        return canonical

    def service_code(self, name: str) -> int:
        code = self.services.get(name)
        if code is None:
            if len(self.services) >= 0xFFFF:
                raise ValueError("more than 65535 services in one list")
            code = self.services[name] = len(self.services)
        return code

    def add(self, canonical: str, start: int, end: int, service: int = 0) -> None:
        key = self.prefix_keys.setdefault(canonical, len(self.prefix_keys))
        pair = (key, service)
        current = self._open.get(pair)
        if current is None:
            self._open[pair] = [start, end]
        elif start <= current[1] and end >= current[0]:
            current[0] = min(current[0], start)
            current[1] = max(current[1], end)
        elif start > current[1]:
            self._closed.append((key, current[0], current[1], service))
            current[0], current[1] = start, end
        else:  # wholly before the open interval: kept; the table build merges
            self._closed.append((key, start, end, service))

    def build(self, category: str | None, source: str, files: Iterable[str],
              origin: Any = None) -> DatedList:
        rows = self._closed + [(k, s, e, svc) for (k, svc), (s, e) in self._open.items()]
        arr = np.array(rows, dtype=np.int64).reshape(-1, 4)
        order = np.lexsort((arr[:, 1], arr[:, 0]))
        arr = arr[order]
        return DatedList(
            category=category,
            services=tuple(self.services),
            prefixes=tuple(self.prefix_keys),
            key=arr[:, 0].astype(np.uint32),
            start=arr[:, 1].copy(),
            end=arr[:, 2].copy(),
            service=arr[:, 3].astype(np.uint16),
            source=source,
            files=tuple(files),
            origin=origin,
        )


def parse_time(text: str) -> int:
    """ms since the epoch of an ISO 8601 date/datetime or Unix seconds."""
    value = text.strip()
    if re.fullmatch(r"-?\d+(\.\d+)?", value):
        return round(float(value) * 1000)
    return utc_ms(value)


def read_csv(name: str, data: bytes, acc: Accumulator) -> None:
    """The plain dated-list form (module docstring) into ``acc``."""
    lines = text_lines(name, data)
    header: list[str] | None = None
    columns: dict[str, int] = {}
    delimiter = ","
    previous: tuple[int, int] | None = None  # (valid_from, line)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if header is None:
            delimiter = "\t" if "\t" in line else ","
            header = [c.strip().lower() for c in line.split(delimiter)]
            missing = [c for c in ("prefix", "valid_from", "valid_until") if c not in header]
            if missing:
                raise DatedListError(
                    f"the header must name prefix, valid_from and valid_until "
                    f"(comma or tab separated); it lacks {', '.join(missing)}", name, number)
            unknown = [c for c in header if c not in ("prefix", "valid_from", "valid_until",
                                                      "service")]
            if unknown or len(set(header)) != len(header):
                raise DatedListError(
                    f"unknown or repeated column {(unknown or header)[0]!r}; columns are "
                    "prefix, valid_from, valid_until and optionally service", name, number)
            columns = {c: i for i, c in enumerate(header)}
            continue
        fields = [f.strip() for f in raw.split(delimiter)]
        if len(fields) != len(header):
            raise DatedListError(f"expected {len(header)} fields, got {len(fields)}", name, number)
        canonical = acc.prefix(fields[columns["prefix"]])
        if canonical is None:
            raise DatedListError(
                f"{fields[columns['prefix']]!r} is not an address or a prefix (host bits "
                "must be zero)", name, number)
        try:
            start = parse_time(fields[columns["valid_from"]])
            end = parse_time(fields[columns["valid_until"]])
        except (ValueError, OverflowError):
            raise DatedListError(
                "valid_from and valid_until must be ISO 8601 dates or datetimes "
                "(2019-05-01, 2019-05-01 12:00:00) or Unix seconds", name, number) from None
        if end <= start:
            raise DatedListError(
                f"empty validity: valid_until {fields[columns['valid_until']]} is not after "
                f"valid_from {fields[columns['valid_from']]}", name, number)
        if previous is not None and start < previous[0]:
            raise DatedListError(
                f"out of order: valid_from {fields[columns['valid_from']]} is before the "
                f"valid_from of line {previous[1]} ({ms_text(previous[0])}); rows go in order "
                "of valid_from", name, number)
        previous = (start, number)
        service = 0
        if "service" in columns and fields[columns["service"]]:
            text = fields[columns["service"]]
            if not SERVICE_RE.match(text) or text == "none":
                raise DatedListError(f"service name {text!r} must be lowercase, without spaces",
                                     name, number)
            service = acc.service_code(text)
        acc.add(canonical, start, end, service)
    if header is None:
        raise DatedListError("no header line (prefix, valid_from, valid_until)", name)


def read_dated_list(
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    format: str,
    *,
    service: str,
    category: str | None,
    source: str = "",
    flags: Iterable[str] = (),
    origin: Any = None,
) -> DatedList:
    """Read a dated list from files, folders, patterns or archives.

    ``format``: ``csv`` (the plain form, module docstring),
    ``tor-consensus`` (network-status consensus documents),
    ``onionoo-details`` (Onionoo ``details`` JSON) or ``tor-exit-list``
    (TorDNSEL exit lists); see :mod:`nkclass.lists.tor`. ``service`` names
    the rows (a ``csv`` row may name its own); ``category`` is the activity
    they imply (``"tor"``, ``"mining"``, ``"vpn"``, ``"proxy"``, or None);
    ``flags`` keeps only Tor relays holding all these flags (``["Exit"]``).

    >>> lst = read_dated_list("tests/data/lists/mining-pools.csv", "csv",
    ...                       service="pool-endpoints", category="mining")
    >>> lst.valid_at(1556712000000)[:1]
    [('192.0.2.10/32', 'supportxmr')]
    """
    from nkclass.lists import tor

    if format not in LIST_FORMATS:
        raise ValueError(f"format must be one of {', '.join(LIST_FORMATS)}, got {format!r}")
    if not SERVICE_RE.match(service) or service == "none":
        raise ValueError(f"service name {service!r} must be lowercase, without spaces")
    flags = tuple(flags)
    if flags and format not in ("tor-consensus", "onionoo-details"):
        raise ValueError("flags select Tor relays: formats tor-consensus and onionoo-details")
    acc = Accumulator(service)
    reader = {
        "csv": read_csv,
        "tor-consensus": tor.ConsensusReader(flags).read,
        "onionoo-details": tor.OnionooReader(flags).read,
        "tor-exit-list": tor.ExitListReader().read,
    }[format]
    names = []
    for name, data in documents(paths):
        names.append(name)
        reader(name, data, acc)
    return acc.build(category, source, names, origin)
