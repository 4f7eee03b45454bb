"""Mining intensity: estimated hashrate per watched host and month.

A stratum pool gives each miner a share difficulty and the miner submits
the shares it finds; each share takes on average ``difficulty`` times
:data:`HASHES_PER_SHARE` hashes (2^32 per unit of stratum v1
``mining.set_difficulty``, one per unit of CryptoNote difficulty, which the
meter derives from the job target). The capture meter counts the
submissions of every stratum flow and keeps the pool's latest difficulty
(``stratum_submits``, ``stratum_difficulty``, ``stratum_algo``), so a flow
did about ``submits x difficulty x HASHES_PER_SHARE`` hashes over its
duration.

What the estimate assumes, and so what it can get wrong:

* Shares arrive as a Poisson process whose rate is hashrate / (hashes per
  share): the count's relative standard deviation is 1 / sqrt(submits) for
  one difficulty, and sqrt(sum n_i d_i^2) / sum n_i d_i over flows of
  different difficulties (``rel_std``). Fewer than about 10 shares give an
  estimate good to a factor, not a figure.
* The latest difficulty held for every share of the flow. Pools adjust
  difficulty (vardiff) in the first minutes of a connection; shares sent
  before the last change are counted at the last difficulty.
* Every submission is a share the pool accepts: stale and rejected shares
  are counted too (the pool's replies are not matched), which overstates
  the rate by the reject ratio, usually a few per cent.
* The flow's duration is mining time, and a host's flows of one month
  overlap only when it mined on several connections at once: the host's
  rate is the work of all its flows over the union of their time spans (in
  whole seconds).
* Only stratum the meter can read counts: TLS-wrapped stratum and flow
  records without payload give no shares; they are counted as
  ``pool_flows``.

Flow records without payload (NetFlow, IPFIX, ...) to a pool endpoint
(address and port) that also carried share-counted flows are calibrated
against them: the pool's packets per share (both directions, all its
share-counted flows) and hashes per share give ``packet_hashrate`` =
packets / (packets per share) x (hashes per share) over the flows' covered
seconds, with ``packet_rel_spread``, the relative standard deviation of the
per-flow packets-per-share ratio (flows of at least
:data:`MIN_CALIBRATION_SHARES` shares). This further assumes that the pool
sends the same messages per share to every miner (job notifications come at
the pool's pace, not the miner's, so a slow miner has more packets per
share) and gives the host the pool's mean share difficulty, which vardiff
sets per miner: treat it as an order of magnitude. A pool no share-counted
flow calibrated gets only ``uncalibrated_packets_per_hour``, labelled as
such and never turned into a hashrate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pyroaring import BitMap

from nkclass.addresses import format_addresses, to_ipv6_rows
from nkclass.classify import Classified
from nkclass.errors import SchemaValueError
from nkclass.labels import SIDES
from nkclass.report.aggregate import LabelledBatch, _as_table
from nkclass.report.model import bucket_index, bucket_start_ms
from nkclass.report.select import FlowFilter

#: Hashes one unit of share difficulty stands for, per stratum dialect.
HASHES_PER_SHARE = {"stratum_v1": 2.0**32, "cryptonote": 1.0}
MINING_ACTIVITIES = ("mining", "mining_suspect")
#: Columns of :meth:`HashrateReport.table`.
COLUMNS = ("month", "path", "host", "algo", "flows", "submits", "seconds", "hashes",
           "hashrate", "rel_std", "pool_flows")


def flow_hashrate(
    submits: object, difficulty: object, algo: object, duration_s: object
) -> tuple[np.ndarray, np.ndarray]:
    """Per flow: estimated hashes per second and its relative standard
    deviation (1 / sqrt(submits)); NaN where the flow has no submission, no
    difficulty, no known dialect or no duration.

    >>> rate, rel = flow_hashrate([100], [2.0], ["stratum_v1"], [600.0])
    >>> round(float(rate[0]) / 1e6, 3), float(rel[0])
    (1431.656, 0.1)
    """
    n = np.asarray(submits, dtype=np.float64)
    d = np.asarray(difficulty, dtype=np.float64)
    seconds = np.asarray(duration_s, dtype=np.float64)
    scale = np.array([HASHES_PER_SHARE.get(a, math.nan) if a else math.nan for a in algo],
                     dtype=np.float64).reshape(n.shape)
    ok = (n > 0) & (d > 0) & (seconds > 0) & np.isfinite(scale)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(ok, n * d * scale / seconds, math.nan)
        rel = np.where(ok, 1.0 / np.sqrt(n), math.nan)
    return rate, rel


@dataclass
class HostMonth:
    """One watched host's stratum work in one month on one path."""

    flows: int = 0  # flows with shares and a difficulty
    submits: int = 0
    hashes: float = 0.0  # sum of submits x difficulty x hashes per share
    hashes_sq: float = 0.0  # sum of submits x (difficulty x hashes per share)^2
    algos: set[str] = field(default_factory=set)
    seconds: BitMap = field(default_factory=BitMap)  # whole seconds covered by those flows
    pool_flows: int = 0  # mining flows without share counts (no payload, TLS, ...)
    pool_packets: dict[str, int] = field(default_factory=dict)  # theirs, per pool endpoint
    pool_seconds: BitMap = field(default_factory=BitMap)  # whole seconds they cover

    def merge(self, other: HostMonth) -> None:
        self.flows += other.flows
        self.submits += other.submits
        self.hashes += other.hashes
        self.hashes_sq += other.hashes_sq
        self.algos |= other.algos
        self.seconds |= other.seconds
        self.pool_flows += other.pool_flows
        for pool, packets in other.pool_packets.items():
            self.pool_packets[pool] = self.pool_packets.get(pool, 0) + packets
        self.pool_seconds |= other.pool_seconds

    def copy(self) -> HostMonth:
        return HostMonth(self.flows, self.submits, self.hashes, self.hashes_sq,
                         set(self.algos), BitMap(self.seconds), self.pool_flows,
                         dict(self.pool_packets), BitMap(self.pool_seconds))

    @property
    def hashrate(self) -> float:
        """Hashes per second over the covered time; NaN without shares."""
        covered = len(self.seconds)
        return self.hashes / covered if self.hashes > 0 and covered else math.nan

    @property
    def rel_std(self) -> float:
        """The Poisson relative standard deviation of :attr:`hashrate`."""
        return math.sqrt(self.hashes_sq) / self.hashes if self.hashes > 0 else math.nan


@dataclass
class PoolCalibration:
    """What the flows with share counts showed of one pool endpoint: packets
    (both directions) per share and hashes per share, with the spread of the
    per-flow packets-per-share ratio (flows of at least
    :data:`MIN_CALIBRATION_SHARES` shares)."""

    flows: int = 0
    packets: int = 0
    submits: int = 0
    hashes: float = 0.0
    ratios: int = 0  # flows whose ratio entered the spread
    ratio_sum: float = 0.0
    ratio_sq: float = 0.0

    def merge(self, other: PoolCalibration) -> None:
        for name in ("flows", "packets", "submits", "hashes", "ratios", "ratio_sum",
                     "ratio_sq"):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    @property
    def packets_per_share(self) -> float:
        return self.packets / self.submits if self.submits else math.nan

    @property
    def hashes_per_share(self) -> float:
        return self.hashes / self.submits if self.submits else math.nan

    @property
    def ratio_rel_spread(self) -> float:
        """Relative standard deviation of the per-flow packets-per-share
        ratio (NaN with fewer than two flows)."""
        if self.ratios < 2:
            return math.nan
        mean = self.ratio_sum / self.ratios
        var = max(self.ratio_sq / self.ratios - mean * mean, 0.0) * self.ratios / (self.ratios - 1)
        return math.sqrt(var) / mean if mean > 0 else math.nan


#: Fewest shares a flow needs for its packets-per-share ratio to enter a
#: pool's spread (below, the count's own Poisson noise dominates).
MIN_CALIBRATION_SHARES = 10


class HashrateReport:
    """Estimated hashrate per (month, path, watched host), mergeable with
    ``+`` (counts add and covered seconds union exactly; the float sums of
    work agree up to rounding order) and picklable like
    :class:`~nkclass.report.Report`.

    Built by :func:`hashrate` from classified flows of metered captures
    (see :mod:`nkclass.report.hashrate` for what the estimate assumes).
    """

    def __init__(self) -> None:
        self.cells: dict[tuple[int, str, str], HostMonth] = {}
        self.pools: dict[str, PoolCalibration] = {}  # by pool endpoint "address port"

    def merge_in(self, other: HashrateReport) -> HashrateReport:
        for key, cell in other.cells.items():
            mine = self.cells.get(key)
            if mine is None:
                self.cells[key] = cell.copy()
            else:
                mine.merge(cell)
        for key, pool in other.pools.items():
            self.pools.setdefault(key, PoolCalibration()).merge(pool)
        return self

    def __add__(self, other: HashrateReport) -> HashrateReport:
        if not isinstance(other, HashrateReport):
            return NotImplemented
        return HashrateReport().merge_in(self).merge_in(other)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, HashrateReport) and self.cells == other.cells
                and self.pools == other.pools)

    def __len__(self) -> int:
        return len(self.cells)

    def calibrated(self, cell: HostMonth) -> tuple[float, float, int, float]:
        """A host-month's flows without share counts through the pools'
        calibrations: (hashes per second, relative spread, packets of pools
        with a calibration, packets per hour of the pools without one: the
        uncalibrated proxy, not a hashrate). NaN where nothing applies."""
        hashes, spread_sq, calibrated, uncalibrated = 0.0, 0.0, 0, 0
        for pool, packets in cell.pool_packets.items():
            cal = self.pools.get(pool)
            if cal is None or not cal.submits:
                uncalibrated += packets
                continue
            part = packets / cal.packets_per_share * cal.hashes_per_share
            hashes += part
            spread = cal.ratio_rel_spread
            spread_sq += (part * (spread if not math.isnan(spread) else math.inf)) ** 2
            calibrated += packets
        seconds = len(cell.pool_seconds)
        rate = hashes / seconds if hashes > 0 and seconds else math.nan
        rel = math.sqrt(spread_sq) / hashes if hashes > 0 else math.nan
        proxy = uncalibrated * 3600 / seconds if uncalibrated and seconds else math.nan
        return rate, rel, calibrated, proxy

    def table(self) -> pa.Table:
        """One row per (month, path, host) in time, path, host order:
        ``hashrate`` in hashes per second from the shares (null without
        shares) with its Poisson ``rel_std``, ``seconds`` of stratum flows,
        ``hashes`` of work, ``algo`` (``stratum_v1``, ``cryptonote`` or
        both, comma-joined); ``pool_flows``, the mining flows that carried no
        share counts, and from them ``packet_hashrate`` (packets over the
        pool's packets per share times its hashes per share) with
        ``packet_rel_spread`` (the relative spread of the pools' per-flow
        packets-per-share ratios; null while a pool used has fewer than two
        calibrating flows, so its spread is unknown), and
        ``uncalibrated_packets_per_hour``, the packets per hour of pool
        flows to pools no flow calibrated: a proxy, not a hashrate."""
        rows = sorted(self.cells.items())
        cal = [self.calibrated(c) for _, c in rows]

        def floats(values: list[float]) -> pa.Array:
            return pa.array([None if math.isnan(v) or math.isinf(v) else v for v in values],
                            pa.float64())

        return pa.table({
            "month": pa.array([_month(k[0]) for k, _ in rows], pa.string()),
            "path": pa.array([k[1] for k, _ in rows], pa.string()),
            "host": pa.array([k[2] for k, _ in rows], pa.string()),
            "algo": pa.array([",".join(sorted(c.algos)) or None for _, c in rows], pa.string()),
            "flows": pa.array([c.flows for _, c in rows], pa.uint64()),
            "submits": pa.array([c.submits for _, c in rows], pa.uint64()),
            "seconds": pa.array([len(c.seconds) for _, c in rows], pa.uint64()),
            "hashes": pa.array([c.hashes for _, c in rows], pa.float64()),
            "hashrate": floats([c.hashrate for _, c in rows]),
            "rel_std": floats([c.rel_std for _, c in rows]),
            "pool_flows": pa.array([c.pool_flows for _, c in rows], pa.uint64()),
            "packet_hashrate": floats([x[0] for x in cal]),
            "packet_rel_spread": floats([x[1] for x in cal]),
            "uncalibrated_packets_per_hour": floats([x[3] for x in cal]),
        })

    def calibrations(self) -> pa.Table:
        """Per pool endpoint: the flows with shares, packets per share and
        its relative spread, and hashes per share."""
        keys = sorted(self.pools)
        return pa.table({
            "pool": pa.array(keys, pa.string()),
            "flows": pa.array([self.pools[k].flows for k in keys], pa.uint64()),
            "packets_per_share": pa.array([self.pools[k].packets_per_share for k in keys],
                                          pa.float64()),
            "ratio_rel_spread": pa.array(
                [None if math.isnan(v := self.pools[k].ratio_rel_spread) else v for k in keys],
                pa.float64()),
            "hashes_per_share": pa.array([self.pools[k].hashes_per_share for k in keys],
                                         pa.float64()),
        })

    def per_path(self) -> pa.Table:
        """Total estimated hashrate per (month, path): the sum of its hosts'
        share-derived rates, with the Poisson relative standard deviation of
        the sum."""
        sums: dict[tuple[int, str], list[float]] = {}
        for (month, path, _host), cell in self.cells.items():
            rate = cell.hashrate
            if math.isnan(rate):
                continue
            acc = sums.setdefault((month, path), [0.0, 0.0, 0])
            acc[0] += rate
            # Var(rate) = rate^2 rel_std^2 per host; independent hosts add.
            acc[1] += (rate * cell.rel_std) ** 2
            acc[2] += 1
        keys = sorted(sums)
        return pa.table({
            "month": pa.array([_month(k[0]) for k in keys], pa.string()),
            "path": pa.array([k[1] for k in keys], pa.string()),
            "hosts": pa.array([sums[k][2] for k in keys], pa.uint64()),
            "hashrate": pa.array([sums[k][0] for k in keys], pa.float64()),
            "rel_std": pa.array([math.sqrt(sums[k][1]) / sums[k][0] for k in keys],
                                pa.float64()),
        })

    def __getstate__(self) -> dict:
        return {
            "cells": {k: (c.flows, c.submits, c.hashes, c.hashes_sq, sorted(c.algos),
                          c.seconds.serialize(), c.pool_flows, dict(c.pool_packets),
                          c.pool_seconds.serialize())
                      for k, c in self.cells.items()},
            "pools": {k: vars(p).copy() for k, p in self.pools.items()},
        }

    def __setstate__(self, state: dict) -> None:
        self.cells = {}
        for key, (flows, submits, hashes, hashes_sq, algos, seconds, pool_flows, pool_packets,
                  pool_seconds) in state["cells"].items():
            self.cells[tuple(key)] = HostMonth(
                flows, submits, hashes, hashes_sq, set(algos), BitMap.deserialize(seconds),
                pool_flows, dict(pool_packets), BitMap.deserialize(pool_seconds))
        self.pools = {k: PoolCalibration(**v) for k, v in state["pools"].items()}

    def __repr__(self) -> str:
        return f"HashrateReport({len(self.cells)} host-months, {len(self.pools)} pools)"


def _month(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m")


def hashrate(
    results: object,
    *,
    start: object = None,
    end: object = None,
    path: str | list[str] | None = None,
) -> HashrateReport:
    """Estimated hashrate per (month, path, watched host) of classified flows.

    ``results`` is a :class:`~nkclass.Classified` result, a classified
    pyarrow Table / RecordBatch, or an iterable of either. Flows with the
    meter's stratum counters (``stratum_submits``, ``stratum_difficulty``,
    ``stratum_algo``) give the work; other ``mining`` and ``mining_suspect``
    flows are counted as ``pool_flows``. The host is the flow's watched
    endpoint (the source when both are watched, and when neither is).
    ``start``, ``end`` and ``path`` narrow the flows as in
    :func:`~nkclass.report.aggregate`. Reports add up:
    ``hashrate(a) + hashrate(b) == hashrate([a, b])``.
    """
    chosen = FlowFilter.of(start, end, path, None)
    report = HashrateReport()
    items = [results] if isinstance(results, Classified | pa.Table | pa.RecordBatch) else results
    for item in items:
        _add(report, item, chosen)
    return report


def _add(report: HashrateReport, item: object, chosen: FlowFilter | None) -> None:
    view = LabelledBatch(item, None)
    source = _as_table(item.flows.source) if isinstance(item, Classified) else (
        item if isinstance(item, pa.Table) else pa.Table.from_batches([item]))
    n = view.n
    mask = np.ones(n, bool) if chosen is None else chosen.mask(
        view.ts, view.path, view.path_names, view.activity, view.activity_names)
    submits, difficulty, algo = _stratum_columns(source, n)
    mining_codes = [i for i, a in enumerate(view.activity_names) if a in MINING_ACTIVITIES]
    with_work = (submits > 0) & (difficulty > 0) & (algo != "")
    pool = np.isin(view.activity, mining_codes) & ~with_work
    mask &= with_work | pool
    if not mask.any():
        return
    idx = np.flatnonzero(mask)
    ends = _end_times(source, n)
    src, dst = to_ipv6_rows(view.src), to_ipv6_rows(view.dst)
    on_dst = view.side == SIDES.index("dst")
    hosts16 = np.where(on_dst[:, None], dst, src)[idx]
    host_text = format_addresses(hosts16).to_pylist()
    peers16 = np.where(on_dst[:, None], src, dst)[idx]
    peer_ports = np.where(on_dst, _ports(source, "src_port", n), _ports(source, "dst_port", n))
    pool_text = [f"{a} {int(p)}" for a, p in zip(format_addresses(peers16).to_pylist(),
                                                 peer_ports[idx], strict=True)]
    months = bucket_start_ms(bucket_index(view.ts[idx], "month"), "month")
    for j, i in enumerate(idx):
        key = (int(months[j]), view.path_names[view.path[i]], host_text[j])
        cell = report.cells.get(key)
        if cell is None:
            cell = report.cells[key] = HostMonth()
        lo = int(view.ts[i]) // 1000
        hi = max(-(-int(ends[i]) // 1000), lo + 1)
        packets = int(view.packets[i])
        if not with_work[i]:
            cell.pool_flows += 1
            cell.pool_packets[pool_text[j]] = cell.pool_packets.get(pool_text[j], 0) + packets
            cell.pool_seconds.add_range(lo, hi)
            continue
        work = float(submits[i]) * float(difficulty[i]) * HASHES_PER_SHARE[algo[i]]
        cell.flows += 1
        cell.submits += int(submits[i])
        cell.hashes += work
        cell.hashes_sq += work * work / float(submits[i])
        cell.algos.add(str(algo[i]))
        cell.seconds.add_range(lo, hi)
        pool = report.pools.setdefault(pool_text[j], PoolCalibration())
        pool.flows += 1
        pool.packets += packets
        pool.submits += int(submits[i])
        pool.hashes += work
        if submits[i] >= MIN_CALIBRATION_SHARES:
            ratio = packets / float(submits[i])
            pool.ratios += 1
            pool.ratio_sum += ratio
            pool.ratio_sq += ratio * ratio


def _ports(source: pa.Table, name: str, n: int) -> np.ndarray:
    if name not in source.column_names:
        return np.zeros(n, np.int64)
    return pc.fill_null(source.column(name), 0).to_numpy().astype(np.int64)


def _stratum_columns(source: pa.Table, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Submits (0 when absent), difficulty (0 when absent) and dialect names
    ("" when absent) per flow, checked."""
    names = source.column_names
    if "stratum_submits" not in names:
        return np.zeros(n, np.uint64), np.zeros(n), np.full(n, "", object)
    submits = pc.fill_null(source.column("stratum_submits"), 0).to_numpy().astype(np.uint64)
    difficulty = np.zeros(n)
    if "stratum_difficulty" in names:
        difficulty = pc.fill_null(source.column("stratum_difficulty").cast(pa.float64()),
                                  0.0).to_numpy()
        if not np.isfinite(difficulty).all() or (difficulty < 0).any():
            row = int(np.flatnonzero(~np.isfinite(difficulty) | (difficulty < 0))[0])
            raise SchemaValueError(
                f"column 'stratum_difficulty': row {row} is {difficulty[row]!r}, expected a "
                "positive finite share difficulty or null")
    algo = np.full(n, "", object)
    if "stratum_algo" in names:
        algo = np.array(pc.fill_null(source.column("stratum_algo").cast(pa.string()),
                                     "").to_pylist(), dtype=object)
        unknown = sorted({a for a in algo if a and a not in HASHES_PER_SHARE})
        if unknown:
            raise SchemaValueError(
                f"column 'stratum_algo': unknown dialect {unknown[0]!r}, expected one of "
                f"{', '.join(HASHES_PER_SHARE)}")
    return submits, difficulty, algo


def _end_times(source: pa.Table, n: int) -> np.ndarray:
    if "ts_end" not in source.column_names:
        raise SchemaValueError("hashrate needs column 'ts_end' (a flow's duration)")
    col = source.column("ts_end")
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("ms", tz=col.type.tz)).cast(pa.int64())
    return col.to_numpy().astype(np.int64)



def _si(rate: float) -> str:
    """A hashrate with an SI prefix: 1.43 GH/s."""
    if math.isnan(rate):
        return "-"
    for prefix in ("", "k", "M", "G", "T", "P"):
        if abs(rate) < 1000 or prefix == "P":
            return f"{rate:.3g} {prefix}H/s"
        rate /= 1000
    return f"{rate:.3g} PH/s"


def _nan(value: float | None) -> float:
    return math.nan if value is None else value


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def render_hashrate(report: HashrateReport, limit: int | None = 20) -> str:
    """The per-path monthly totals, then the host-months with the highest
    rates (``limit`` of them; None: all) in time order, as aligned tables."""
    from nkclass.report.render import aligned

    paths = report.per_path().to_pylist()
    out = ["estimated hashrate per path and month (sum of hosts; +- one Poisson sigma):",
           aligned(["month", "path", "hosts", "hashrate", "+-"],
                   [[r["month"], r["path"], r["hosts"], _si(r["hashrate"]),
                     f"{100 * r['rel_std']:.0f}%"] for r in paths],
                   [False, False, True, True, True]) if paths else "(no stratum shares seen)"]
    hosts = report.table().to_pylist()
    shown = sorted(hosts, key=lambda r: -(r["hashrate"] or r["packet_hashrate"] or 0))[:limit]
    shown.sort(key=lambda r: (r["month"], r["path"], r["host"]))
    out += ["", f"per host and month ({len(shown)} of {len(hosts)}; pool flows: mining "
            "flows without share counts):",
            aligned(["month", "path", "host", "algo", "flows", "shares", "hashrate", "+-",
                     "pool flows", "from packets", "spread", "uncalibrated pkts/h"],
                    [[r["month"], r["path"], r["host"], r["algo"] or "-", r["flows"],
                      r["submits"], _si(_nan(r["hashrate"])), _percent(r["rel_std"]),
                      r["pool_flows"], _si(_nan(r["packet_hashrate"])),
                      _percent(r["packet_rel_spread"]),
                      "-" if r["uncalibrated_packets_per_hour"] is None
                      else f"{r['uncalibrated_packets_per_hour']:,.0f}"] for r in shown],
                    [False, False, False, False] + [True] * 8)]
    return "\n".join(out)
