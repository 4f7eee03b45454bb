"""Pivot: hosts outside the watched paths that behave like the watched hosts.

Operators of a watched network often work from abroad; they show up as hosts
outside the watched prefixes that talk to the same rare peers, use the same
services and keep the same hours. :class:`HostEvidence` gathers, over any
number of classified batches, what the pivot needs per host; it merges
exactly (``a + b``), like reports, so files, partitions and workers can each
build one. :func:`pivot` ranks the candidates.

Who is a host and who its peer: on a flow that touches a watched path, the
watched address is the host and the other end its peer; on any other flow
the initiator (``src_ip``) is the host and the responder its peer. Only
IPv4 hosts and peers are counted; flows with an IPv6 end are counted in
``ipv6_flows`` and otherwise left out.

The score of a candidate (every host outside the watched paths that shares
at least one peer of non-zero rarity with a watched host) is::

    score = 0.6 * peers + 0.2 * mix + 0.2 * hours

* ``peers``: rarity-weighted overlap. A peer's rarity is its IDF over its
  largest possible value, ``ln(N / df) / ln N`` with ``N`` the hosts seen
  and ``df`` those that talk to it: 1 for a peer only one host talks to, 0
  for one every host talks to; a peer weighs its rarity squared, so a CDN
  that a sixth of the hosts use weighs 1/25 of a peer only a few do.
  ``peers = shared / (own + 3)``: the weight of the peers the candidate
  shares with watched hosts over that of all its peers plus a prior of three
  unique peers, so a host with only common peers in common, or one lone
  shared peer, cannot score high.
* ``mix``: cosine similarity of the candidate's flows per activity with the
  watched hosts' together.
* ``hours``: cosine similarity of flows per hour of the week, in the watched
  network's local time (``utc_offset_hours``, +9 for Pyongyang by default),
  with the watched hosts' together.

Each ranked candidate also says who it is, when known: its AS number (the
flows' exporter field, else the IP-to-AS table's), the AS organisation (the
table's name for the address, unless the table numbers another AS than the
flows; else the ruleset's organisation for the number; else the table's
name for it) and a country: the operator's country the ruleset gives for
that organisation's service (``country_source`` "operator"; a
headquarters, not where the host is), else the country a geolocation table
places the address in ("geolocation"). These are looked up for the ranked
few only, so the evidence stays the same mergeable counts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np
from pyroaring import BitMap

from nkclass.addresses import format_addresses
from nkclass.asn.database import AsDatabase, CountryTable
from nkclass.labels import ACTIVITIES
from nkclass.report import _kernel
from nkclass.report.aggregate import _Labelled
from nkclass.rules.model import AsRule, Ruleset

HOURS_OF_WEEK = 168
#: 1970-01-01 (day 0) was a Thursday; hour-of-week 0 is Monday 00:00.
EPOCH_WEEKDAY = 3
WEIGHTS = {"peers": 0.6, "mix": 0.2, "hours": 0.2}
#: The prior of the peer part, in peers no other host talks to.
PRIOR_PEERS = 3
SHARED_SHOWN = 5  # the rarest shared peers listed per candidate


PEER_BITS = 32  # a pair is host << 32 | peer
BIN_BITS = np.uint64(8)  # a sparse key is host << 8 | bin (activity or hour of week)


def _sum_by_key(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique keys and the exact (uint64) sum of counts of each."""
    order = np.argsort(keys, kind="stable")
    keys, counts = keys[order], counts[order]
    first = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]]) if len(keys) else np.zeros(0, int)
    return keys[first], np.add.reduceat(counts, first) if len(keys) else counts


class _Counts:
    """Per-host counters as sparse sorted columns: flows per (host,
    activity) and per (host, hour of the week), keyed ``host << 8 | bin``,
    and the smallest non-zero AS number seen per host (hosts with one)."""

    def __init__(self, mix_keys, mix, hour_keys, hours, as_hosts, asn) -> None:
        self.mix_keys, self.mix = mix_keys, mix
        self.hour_keys, self.hours = hour_keys, hours
        self.as_hosts, self.asn = as_hosts, asn

    @classmethod
    def concat(cls, parts: list[_Counts]) -> _Counts:
        """One table with the counts of ``parts`` added up per key."""
        if len(parts) == 1:
            return parts[0]
        mix_keys, mix = _sum_by_key(
            np.concatenate([p.mix_keys for p in parts]), np.concatenate([p.mix for p in parts])
        )
        hour_keys, hours = _sum_by_key(
            np.concatenate([p.hour_keys for p in parts]), np.concatenate([p.hours for p in parts])
        )
        as_hosts, asn = _smallest(
            np.concatenate([p.as_hosts for p in parts]), np.concatenate([p.asn for p in parts])
        )
        return cls(mix_keys, mix, hour_keys, hours, as_hosts, asn)


def _smallest(hosts: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per host, the smallest of its values (hosts sorted, unique)."""
    order = np.lexsort((values, hosts))
    hosts, values = hosts[order], values[order]
    first = np.r_[True, hosts[1:] != hosts[:-1]] if len(hosts) else np.zeros(0, bool)
    return hosts[first], values[first]


def _sorted_unique(values: np.ndarray, runs: bool = False) -> np.ndarray:
    """np.unique by sorting (numpy's hashing unique is several times slower
    on millions of 64-bit keys); ``runs``: ``values`` are sorted runs laid
    end to end, which the stable sort (timsort) merges in linear time."""
    values = np.sort(values, kind="stable" if runs else "quicksort")
    return values[np.r_[True, values[1:] != values[:-1]]] if len(values) else values


def _unique_inverse(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """np.unique(values, return_inverse=True) for uint32 values, by sorting
    each value with its position packed in one 64-bit key: a plain sort
    instead of numpy's stable argsort, several times faster on millions."""
    keys = np.sort(
        (values.astype(np.uint64) << np.uint64(32)) | np.arange(len(values), dtype=np.uint64)
    )
    ordered = (keys >> np.uint64(32)).astype(np.uint32)
    new = np.r_[True, ordered[1:] != ordered[:-1]] if len(ordered) else np.zeros(0, bool)
    inverse = np.empty(len(values), np.int64)
    inverse[(keys & np.uint64(0xFFFFFFFF)).astype(np.int64)] = np.cumsum(new) - 1
    return ordered[new], inverse


def _keyed_counts(host: np.ndarray, bins: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keys = (host.astype(np.uint64) << BIN_BITS) | bins.astype(np.uint64)
    keys, counts = np.unique(keys, return_counts=True)
    return keys, counts.astype(np.uint64)


class HostEvidence:
    """What the pivot needs per host, over any number of classified batches
    (``add``), mergeable exactly (``+``, ``merge_in``): the watched hosts (a
    roaring bitmap), every (host, peer) pair (a sorted array of ``host << 32
    | peer``), and per host its flows per activity, per hour of the week
    (local time) and its AS number when the flows carry one.

    The pairs are not a 64-bit roaring bitmap: their keys spread over the
    whole 64-bit space, about one per 2^16-value container, so roaring
    neither compresses nor inserts them fast. Measured in one process on the
    shared 2-core machine (pyroaring 1.2, a million random pairs, twice):
    2.1-2.3 s to add them to a BitMap64 and 3.4-4.4 s to unite two such
    sets, against 0.4-0.7 s to sort and deduplicate them as numpy keys and
    0.1-0.6 s to merge two sorted arrays.
    """

    def __init__(self, utc_offset_hours: int = 9) -> None:
        if not -12 <= utc_offset_hours <= 14:
            raise ValueError(f"utc_offset_hours must be in -12..14, got {utc_offset_hours}")
        self.utc_offset_hours = utc_offset_hours
        self.watched = BitMap()
        self.ipv6_flows = 0
        self._pair_parts: list[np.ndarray] = []
        self._parts: list[_Counts] = []

    def add(self, item: object) -> HostEvidence:
        """Add one classified batch (a ``Classifier.classify`` result or a
        classified table)."""
        flows = _Labelled(item, None)
        if flows.n == 0:
            return self
        src, src4 = _ipv4(flows.src)
        dst, dst4 = _ipv4(flows.dst)
        both4 = src4 & dst4
        self.ipv6_flows += int(flows.n - both4.sum())
        path_none = np.array([name == "none" for name in flows.path_names], bool)
        watched = ~path_none[flows.path]
        dst_side = watched & (flows.side == 2)  # SIDES: the watched end is dst
        host = np.where(dst_side, dst, src)[both4]
        peer = np.where(dst_side, src, dst)[both4]
        watched = watched[both4]
        self.watched.update(_sorted_unique(host[watched]))
        self._pair_parts.append(
            _sorted_unique((host.astype(np.uint64) << np.uint64(PEER_BITS)) | peer)
        )
        hour = (flows.ts[both4] // 3_600_000 + self.utc_offset_hours + 24 * EPOCH_WEEKDAY) % (
            HOURS_OF_WEEK
        )
        activity = np.array([ACTIVITIES.index(a) for a in flows.activity_names] or [0], np.int64)[
            flows.activity[both4]
        ]
        mix_keys, mix = _keyed_counts(host, activity)
        hour_keys, hours = _keyed_counts(host, hour)
        as_hosts, asn = np.zeros(0, np.uint32), np.zeros(0, np.uint32)
        if flows.src_as is not None:
            own_as = np.where(dst_side, flows.dst_as, flows.src_as)[both4]
            known = own_as > 0
            as_hosts, asn = _smallest(host[known], own_as[known])
        self._parts.append(_Counts(mix_keys, mix, hour_keys, hours, as_hosts, asn))
        if len(self._parts) >= 16:
            self._parts = [_Counts.concat(self._parts)]
            self._pair_parts = [self.pairs]
        return self

    @property
    def pairs(self) -> np.ndarray:
        """Every (host, peer) seen, as sorted unique ``host << 32 | peer``."""
        if len(self._pair_parts) != 1:
            joined = np.concatenate(self._pair_parts) if self._pair_parts else np.zeros(0)
            self._pair_parts = [_sorted_unique(joined.astype(np.uint64), runs=True)]
        return self._pair_parts[0]

    @property
    def counts(self) -> _Counts:
        if not self._parts:
            empty = (np.zeros(0, np.uint64), np.zeros(0, np.uint64))
            self._parts = [_Counts(*empty, *empty, np.zeros(0, np.uint32), np.zeros(0, np.uint32))]
        self._parts = [_Counts.concat(self._parts)]
        return self._parts[0]

    def merge_in(self, other: HostEvidence) -> HostEvidence:
        if other.utc_offset_hours != self.utc_offset_hours:
            raise ValueError(
                f"cannot merge evidence in UTC{other.utc_offset_hours:+d} into evidence in "
                f"UTC{self.utc_offset_hours:+d}"
            )
        self.watched |= other.watched
        self._pair_parts.extend(other._pair_parts)
        self.ipv6_flows += other.ipv6_flows
        self._parts.extend(other._parts)
        return self

    def __add__(self, other: HostEvidence) -> HostEvidence:
        return HostEvidence(self.utc_offset_hours).merge_in(self).merge_in(other)

    def __getstate__(self) -> dict:
        counts = self.counts
        return {
            "utc_offset_hours": self.utc_offset_hours,
            "watched": self.watched.serialize(),
            "pairs": self.pairs,
            "ipv6_flows": self.ipv6_flows,
            "counts": (
                counts.mix_keys,
                counts.mix,
                counts.hour_keys,
                counts.hours,
                counts.as_hosts,
                counts.asn,
            ),
        }

    def __setstate__(self, state: dict) -> None:
        self.utc_offset_hours = state["utc_offset_hours"]
        self.watched = BitMap.deserialize(state["watched"])
        self._pair_parts = [state["pairs"]]
        self.ipv6_flows = state["ipv6_flows"]
        self._parts = [_Counts(*state["counts"])]


def _ipv4(addrs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """IPv4 values of an address column and which rows are IPv4."""
    if addrs.dtype == np.uint32:
        return addrs, np.ones(len(addrs), bool)
    v4 = np.empty(len(addrs), np.uint32)
    is_v4 = np.empty(len(addrs), np.uint8)
    _kernel.ipv4_of_rows(addrs, v4, is_v4)
    return v4, is_v4.astype(bool)


@dataclass(frozen=True)
class Candidate:
    """One ranked host: its score and the parts it is made of (each in
    0..1, see the module), the peers it shares with watched hosts (how
    many, their summed weight, the rarest few with how many hosts talk to
    each and their rarity), its flows, top activities, busiest local hours,
    AS number, AS organisation and country with where the country comes
    from ("operator" or "geolocation"; each None when unknown)."""

    host: str
    score: float
    peers: float
    mix: float
    hours: float
    shared_peers: int
    shared_weight: float
    rare_shared: list[dict] = field(default_factory=list)
    flows: int = 0
    activities: dict[str, int] = field(default_factory=dict)
    busiest_hours: list[str] = field(default_factory=list)
    asn: int | None = None
    org: str | None = None
    country: str | None = None
    country_source: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _hour_text(hour_of_week: int) -> str:
    day, hour = divmod(int(hour_of_week), 24)
    return f"{('Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun')[day]} {hour:02d}:00"


def _per_host(keys: np.ndarray, counts: np.ndarray, hosts: np.ndarray, watched: np.ndarray):
    """Row (into ``hosts``) and bin of each sparse key, and the watched
    hosts' total per bin."""
    row = np.searchsorted(hosts, (keys >> BIN_BITS).astype(np.uint32))
    bins = (keys & np.uint64(0xFF)).astype(np.int64)
    target = np.bincount(bins[watched[row]], counts[watched[row]].astype(np.float64), 256)
    return row, bins, target


def _cosine(row, bins, counts, target, rows: int) -> np.ndarray:
    """Cosine similarity of every host's sparse vector with ``target``."""
    values = counts.astype(np.float64)
    dot = np.bincount(row, values * target[bins], rows)
    norm = np.sqrt(np.bincount(row, values * values, rows)) * np.linalg.norm(target)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norm > 0, dot / norm, 0.0)


def _largest(keys, counts, host: int, k: int) -> list[tuple[int, int]]:
    """(bin, count) of a host's ``k`` largest counts, largest first."""
    lo, hi = np.searchsorted(keys, [np.uint64(host) << BIN_BITS, np.uint64(host + 1) << BIN_BITS])
    order = np.argsort(-counts[lo:hi].astype(np.int64), kind="stable")[:k]
    return [(int(keys[lo + i] & np.uint64(0xFF)), int(counts[lo + i])) for i in order]


class _Identity:
    """AS organisation and country of candidate hosts, from an IP-to-AS
    table, a ruleset's [[asn]] and [[service]] entries and a geolocation
    table (each optional)."""

    def __init__(self, rules: Ruleset | None, asn_database: AsDatabase | None,
                 countries: CountryTable | None) -> None:
        self.database, self.countries = asn_database, countries
        self.by_number: dict[int, AsRule] = {}
        self.by_name: dict[str, AsRule] = {}
        for rule in rules.asns if rules is not None else ():
            for number in rule.asns:
                self.by_number.setdefault(number, rule)
            for name in rule.as_names:
                self.by_name.setdefault(name, rule)
        self.operator_country = rules.countries() if rules is not None else {}

    def _table_name(self, number: int) -> str:
        """The IP-to-AS table's name for an AS number ("" = none)."""
        entries = np.flatnonzero(self.database.asns == number)
        return next((self.database.orgs[e] for e in entries.tolist() if self.database.orgs[e]), "")

    def describe(self, hosts: np.ndarray, asns: list[int | None]) -> list[dict]:
        """Per host (uint32 IPv4) and its AS number from the flows: asn (the
        flows', else the table's), org, country and country_source (None
        when unknown)."""
        n = len(hosts)
        if self.database is not None and n:
            ids = self.database.lookup_ids(hosts)
            table_asn = self.database.asns[ids].tolist()
            table_org = [self.database.orgs[i] for i in ids.tolist()]
        else:
            table_asn, table_org = [0] * n, [""] * n
        geo = self.countries.codes(hosts) if self.countries is not None and n else [""] * n
        out = []
        for number, t_asn, t_org, code in zip(asns, table_asn, table_org, geo, strict=True):
            number = number if number is not None else (t_asn or None)
            # The table's name describes the flows' AS unless it numbers another one.
            org = t_org if t_org and (number is None or t_asn in (0, number)) else ""
            rule = self.by_number.get(number) if number is not None else None
            rule = rule or self.by_name.get(org)
            if not org and rule is not None:
                org = rule.org
            if not org and number is not None and self.database is not None:
                org = self._table_name(number)
            operator = self.operator_country.get(rule.service) if rule is not None else None
            country, source = (operator, "operator") if operator else (
                (code, "geolocation") if code else (None, None))
            out.append({"asn": number, "org": org or None, "country": country,
                        "country_source": source})
        return out


def pivot(evidence: HostEvidence, n: int = 50, *, rules: Ruleset | None = None,
          asn_database: AsDatabase | None = None,
          countries: CountryTable | None = None) -> list[Candidate]:
    """The ``n`` best candidates, by score (ties: more shared weight, then
    the address). ``rules`` (the organisations and operator countries of
    its [[asn]] and [[service]] entries), ``asn_database`` (AS organisation
    names by address) and ``countries`` (a geolocation table, such as
    :func:`nkclass.asn.default_countries`) name each candidate's
    organisation and country; without them those stay None."""
    pairs = evidence.pairs
    if not len(pairs) or not evidence.watched:
        return []
    host = (pairs >> np.uint64(PEER_BITS)).astype(np.uint32)
    peer = (pairs & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    new_host = np.r_[True, host[1:] != host[:-1]]  # pairs are sorted by host
    hosts, host_row = host[new_host], np.cumsum(new_host) - 1
    peers, peer_index = _unique_inverse(peer)
    df = np.bincount(peer_index, minlength=len(peers))
    rarity = np.log(len(hosts) / df) / math.log(max(len(hosts), 2))
    weight = rarity * rarity
    watched_hosts = np.array(evidence.watched.to_array(), np.uint32)
    is_watched_host = np.isin(hosts, watched_hosts, assume_unique=True)
    pair_watched = is_watched_host[host_row]
    watched_peer = np.zeros(len(peers), bool)
    watched_peer[peer_index[pair_watched]] = True
    pair_weight = weight[peer_index]
    pair_shared = watched_peer[peer_index] & ~pair_watched & (pair_weight > 0)
    rows = len(hosts)
    shared = np.bincount(host_row, np.where(pair_shared, pair_weight, 0.0), rows)
    total = np.bincount(host_row, np.where(pair_watched, 0.0, pair_weight), rows)
    shared_count = np.bincount(host_row[pair_shared], minlength=rows)
    peer_part = shared / (total + PRIOR_PEERS)
    candidate = (~is_watched_host) & (shared_count > 0)
    if not candidate.any():
        return []
    counts = evidence.counts
    mix_row, mix_bins, mix_target = _per_host(counts.mix_keys, counts.mix, hosts, is_watched_host)
    mix_part = _cosine(mix_row, mix_bins, counts.mix, mix_target, rows)
    hour_row, hour_bins, hour_target = _per_host(
        counts.hour_keys, counts.hours, hosts, is_watched_host
    )
    hours_part = _cosine(hour_row, hour_bins, counts.hours, hour_target, rows)
    score = WEIGHTS["peers"] * peer_part + WEIGHTS["mix"] * mix_part + WEIGHTS["hours"] * hours_part
    rows_c = np.flatnonzero(candidate)
    order = rows_c[np.lexsort((hosts[rows_c], -shared[rows_c], -score[rows_c]))[:n]]
    labels = format_addresses(hosts[order]).to_pylist()
    as_of = dict(zip(counts.as_hosts.tolist(), counts.asn.tolist(), strict=True))
    asns = [as_of.get(int(h)) for h in hosts[order].tolist()]
    identities = _Identity(rules, asn_database, countries).describe(hosts[order], asns)
    out = []
    for label, row, identity in zip(labels, order.tolist(), identities, strict=True):
        lo, hi = np.searchsorted(host_row, [row, row + 1])
        mine = lo + np.flatnonzero(pair_shared[lo:hi])
        rarest = mine[np.argsort(-pair_weight[mine], kind="stable")[:SHARED_SHOWN]]
        rare = [
            {
                "peer": peer_label,
                "hosts": int(df[peer_index[k]]),
                "rarity": round(float(rarity[peer_index[k]]), 3),
            }
            for k, peer_label in zip(
                rarest.tolist(), format_addresses(peer[rarest]).to_pylist(), strict=True
            )
        ]
        address = int(hosts[row])
        mix = _largest(counts.mix_keys, counts.mix, address, len(ACTIVITIES))
        out.append(
            Candidate(
                host=label,
                score=round(float(score[row]), 4),
                peers=round(float(peer_part[row]), 4),
                mix=round(float(mix_part[row]), 4),
                hours=round(float(hours_part[row]), 4),
                shared_peers=int(shared_count[row]),
                shared_weight=round(float(shared[row]), 3),
                rare_shared=rare,
                flows=sum(c for _, c in mix),
                activities={ACTIVITIES[a]: c for a, c in mix[:3]},
                busiest_hours=[
                    _hour_text(h) for h, _ in _largest(counts.hour_keys, counts.hours, address, 3)
                ],
                **identity,
            )
        )
    return out
