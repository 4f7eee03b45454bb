"""aggregate(): classified flows -> a mergeable Report.

Per time bucket x path x activity (optionally x app or service): flows,
bytes, packets and the distinct watched hosts and outside peers, as roaring
bitmaps so that partial reports merge exactly, with the hour and weekday
profiles and the upstream table. The per-flow work is one native pass
(nkclass._core.Aggregator, CRoaring inside) that batches stream into;
Python maps label names to codes and turns the groups into a Report once.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nkclass import _core
from nkclass.classify import Classified
from nkclass.errors import SchemaValueError
from nkclass.flows.convert import one_array
from nkclass.labels import ACTIVITIES, APPS, SIDES
from nkclass.report.model import BUCKETS, GroupColumns, Report, bucket_start_ms
from nkclass.report.select import FlowFilter

BYS = (None, "app", "service")
INT64_MAX = np.iinfo(np.int64).max


def aggregate(
    results: object,
    bucket: str = "day",
    by: str | None = None,
    *,
    start: object = None,
    end: object = None,
    path: str | list[str] | None = None,
    activity: str | list[str] | None = None,
) -> Report:
    """Aggregate classified flows into a :class:`Report`.

    ``results`` is a :class:`~nkclass.Classified` result, a classified
    pyarrow Table / RecordBatch (as ``nkclass classify`` writes it), or an
    iterable of either. ``bucket`` is ``hour``, ``day``, ``week`` (ISO,
    Monday first) or ``month``; ``by`` adds ``app`` or ``service`` to the
    group key. Reports add up: ``aggregate(a) + aggregate(b)`` equals
    ``aggregate([a, b])``.

    ``start``/``end`` keep the flows that start in [start, end) (dates or
    datetimes, UTC unless they say otherwise); ``path`` and ``activity``
    keep the flows of those paths and activities (a name or a list).

    >>> report = aggregate(clf.classify(batch), bucket="month", activity="mining")  # doctest: +SKIP
    """
    return ReportBuilder(bucket, by, start=start, end=end, path=path,
                         activity=activity).add(results).report()


class ReportBuilder:
    """:func:`aggregate` in steps, for a caller that streams batches and
    does more with each (``nkclass report`` also counts top peers): ``add``
    classified results as they come, then take the :meth:`report` once.
    The report equals ``aggregate`` over all of them, without building and
    merging a report per batch.

    >>> builder = ReportBuilder("month", activity="mining")  # doctest: +SKIP
    >>> for batch in batches:  # doctest: +SKIP
    ...     builder.add(clf.classify(batch))
    >>> report = builder.report()  # doctest: +SKIP
    """

    def __init__(self, bucket: str = "day", by: str | None = None, *, start: object = None,
                 end: object = None, path: str | list[str] | None = None,
                 activity: str | list[str] | None = None) -> None:
        if bucket not in BUCKETS:
            raise ValueError(f"bucket must be one of {', '.join(BUCKETS)}, got {bucket!r}")
        if by not in BYS:
            raise ValueError(f"by must be 'app', 'service' or None, got {by!r}")
        self.by = by
        self._chosen = FlowFilter.of(start, end, path, activity)
        self._accumulator: Accumulator | None = Accumulator(bucket, by)

    def add(self, results: object) -> ReportBuilder:
        """Add a classified result or table, or an iterable of them."""
        accumulator = self._open()
        single = isinstance(results, Classified | pa.Table | pa.RecordBatch)
        for item in [results] if single else results:
            accumulator.add(LabelledBatch(item, self.by).keep(self._chosen))
        return self

    def report(self) -> Report:
        """The report of everything added. Taken once: the native groups
        are freed as soon as the report holds them, so that they and the
        report do not both stay in memory."""
        report = self._open().report()
        self._accumulator = None
        return report

    def _open(self) -> Accumulator:
        if self._accumulator is None:
            raise ValueError("this ReportBuilder's report was taken already; start a new one")
        return self._accumulator


class LabelledBatch:
    """The view of one classified batch that reports read: label codes with
    their names, whichever form the batch came in (a
    :class:`~nkclass.Classified` result, or a classified pyarrow Table /
    RecordBatch as ``nkclass classify`` writes it).

    Per flow, as numpy arrays of length ``n``:

    * ``path`` / ``activity`` (int codes into ``path_names`` /
      ``activity_names``), ``side`` (uint8 codes into :data:`nkclass.SIDES`),
      ``extra`` (uint32 codes into ``extra_names``: the ``by`` column, app or
      service; all 0 with ``extra_names == [None]`` when ``by`` is None);
    * ``src`` / ``dst``: addresses (uint32 IPv4 host order or ``(n, 16)``
      uint8 network order);
    * ``ts`` (int64 ms since the epoch, UTC, of the flow's start), ``bytes``
      and ``packets`` (uint64);
    * ``src_as`` / ``dst_as`` (AS numbers, or None when the batch lacks
      either).

    With ``peers`` (for top lists), also: ``upstream`` and ``peer_as``
    (derived from the AS numbers and the side; None without them);
    ``lookup`` marks DNS flows (app ``dns``), whose service is the name
    looked up rather than the peer's own; ``peer_as`` and ``peer_org``
    (codes into ``peer_org_names``) come from the AS stage when the
    classifier ran it (or the classified table carries them). :meth:`keep`
    narrows the view to the flows a filter keeps.

    >>> import nkclass
    >>> from nkclass.report import LabelledBatch
    >>> clf = nkclass.Classifier(asn=False)
    >>> result = clf.classify({
    ...     "src_ip": ["175.45.176.9"], "dst_ip": ["8.8.8.8"], "src_port": [40000],
    ...     "dst_port": [443], "protocol": [6], "ts_start": [1_500_000_000_000],
    ...     "ts_end": [1_500_000_001_000], "packets": [10], "bytes": [1200]})
    >>> view = LabelledBatch(result, "app")
    >>> view.n, view.path_names[view.path[0]], view.extra_names[view.extra[0]]
    (1, 'kp_range', 'tls')
    """

    def __init__(self, item: object, by: str | None, peers: bool = False) -> None:
        self.lookup = self.peer_org = self.upstream = self.peer_as = None
        self.peer_org_names: list[str] = []
        if isinstance(item, Classified):
            source = _as_table(item.flows.source)
            self.n = len(item)
            self.path, self.path_names = item.path, list(item.classifier.paths)
            self.activity, self.activity_names = item.activity, list(item._vocabulary("activity"))
            self.side = item.side
            if by is not None:
                self.extra = getattr(item, by).astype(np.uint32)
                self.extra_names = list(item._vocabulary(by))
            self.src, self.dst = item.flows.src_ip, item.flows.dst_ip
            if peers:
                self.lookup = item.app == APPS.index("dns")
                if item._attribution is not None:
                    self.peer_org = item.peer_org_codes.astype(np.int64)
                    self.peer_org_names = list(item.peer_org_names)
        elif isinstance(item, pa.Table | pa.RecordBatch):
            source = item if isinstance(item, pa.Table) else pa.Table.from_batches([item])
            self.n = source.num_rows
            self.path, self.path_names = _codes(source, "path")
            self.activity, self.activity_names = _codes(source, "activity")
            side, side_names = _codes(source, "side")
            remap = np.array([SIDES.index(s) for s in side_names] or [0], np.uint8)
            self.side = remap[side]
            if by is not None:
                codes, names = _codes(source, by)
                self.extra, self.extra_names = codes.astype(np.uint32), names
            from nkclass.flows.batch import address_array

            self.src = address_array(_column(source, "src_ip"), "src_ip")
            self.dst = address_array(_column(source, "dst_ip"), "dst_ip")
            if peers and "app" in source.column_names:
                app, app_names = _codes(source, "app")
                self.lookup = np.array([a == "dns" for a in app_names] or [False])[app]
            if peers and "peer_org" in source.column_names:
                self.peer_org, self.peer_org_names = _codes(source, "peer_org", nulls=True)
        else:
            raise TypeError(
                "aggregate() takes classified results (Classifier.classify output) or classified "
                f"pyarrow tables; got {type(item).__name__}"
            )
        if by is None:
            self.extra = np.zeros(self.n, np.uint32)
            self.extra_names = [None]
        self.ts = _times(source)
        self.bytes = _counter(source, "bytes", self.n)
        self.packets = _counter(source, "packets", self.n)
        self.src_as = _as_column(source, "src_as", self.n)
        self.dst_as = _as_column(source, "dst_as", self.n) if self.src_as is not None else None
        if self.dst_as is None:
            self.src_as = None  # the upstream table needs both sides
        if peers:  # only top lists read them: aggregation passes the AS columns as they are
            self.upstream, self.peer_as = _as_numbers(self.src_as, self.dst_as, self.side)
        if peers and isinstance(item, Classified) and item._attribution is not None:
            self.peer_as = item.peer_as.astype(np.int64)  # the exporter's, else the table's
        elif peers and "peer_as" in source.column_names:
            self.peer_as = _counter(source, "peer_as", self.n).astype(np.int64)

    ARRAYS = ("path", "activity", "side", "extra", "src", "dst", "ts", "bytes", "packets",
              "src_as", "dst_as", "upstream", "peer_as", "lookup", "peer_org")

    def keep(self, chosen: FlowFilter | None) -> LabelledBatch:
        """Only the flows ``chosen`` keeps (this view, narrowed in place)."""
        if chosen is None:
            return self
        mask = chosen.mask(
            self.ts, self.path, self.path_names, self.activity, self.activity_names
        )
        if mask.all():
            return self
        for name in self.ARRAYS:
            values = getattr(self, name)
            if values is not None:
                setattr(self, name, values[mask])
        self.n = int(mask.sum())
        return self


#: The former private name, kept for code written against it.
_Labelled = LabelledBatch

NEEDED_FROM_SOURCE = ("ts_start", "ts_end", "bytes", "packets", "src_as", "dst_as",
                      "src_port", "dst_port",
                      "stratum_submits", "stratum_difficulty", "stratum_algo")


def _as_table(source: object) -> pa.Table:
    """The columns aggregation reads from a batch the caller classified."""
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    if hasattr(source, "columns") and not isinstance(source, dict):  # pandas
        keep = [c for c in NEEDED_FROM_SOURCE if c in source.columns]
        return pa.Table.from_pandas(source[keep], preserve_index=False)
    return pa.table(
        {
            name: value
            if isinstance(value, pa.Array | pa.ChunkedArray)
            else pa.array(np.asarray(value))
            for name, value in source.items()
            if name in NEEDED_FROM_SOURCE
        }
    )


def _column(table: pa.Table, name: str) -> pa.Array:
    if name not in table.column_names:
        raise SchemaValueError(f"aggregation needs column {name!r}")
    return one_array(table.column(name))


def _codes(table: pa.Table, name: str, nulls: bool = False) -> tuple[np.ndarray, list[str]]:
    """Dictionary codes and names of a label column (string or dictionary);
    with ``nulls``, missing values read as ""."""
    col = _column(table, name)
    if nulls and col.null_count:
        col = pc.fill_null(col.cast(pa.string()) if pa.types.is_dictionary(col.type) else col, "")
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col)
    if col.null_count:
        raise SchemaValueError(f"column {name!r} has missing labels")
    return (
        col.indices.to_numpy(zero_copy_only=False).astype(np.int64),
        [str(v) for v in col.dictionary.to_pylist()],
    )


def _times(table: pa.Table) -> np.ndarray:
    col = _column(table, "ts_start")
    if pa.types.is_timestamp(col.type):
        col = col.cast(pa.timestamp("ms", tz=col.type.tz)).cast(pa.int64())
    elif not pa.types.is_integer(col.type):
        raise SchemaValueError(
            f"column 'ts_start': expected ms since epoch or a timestamp, got {col.type}"
        )
    if col.null_count:
        raise SchemaValueError("column 'ts_start' has missing times")
    ts = col.to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    if ts.size and ts.min() < 0:
        raise SchemaValueError("column 'ts_start': times before 1970 are not supported")
    return ts


def _counter(table: pa.Table, name: str, n: int) -> np.ndarray:
    if name not in table.column_names:
        return np.zeros(n, np.uint64)
    return _nonnegative(table, name).astype(np.uint64, copy=False)


def _nonnegative(table: pa.Table, name: str) -> np.ndarray:
    """A column of non-negative integers (nulls as 0) in its own dtype."""
    col = _column(table, name)
    if col.null_count:
        col = pc.fill_null(col, 0)
    values = col.to_numpy(zero_copy_only=False)
    if values.dtype.kind != "u" and (
            values.dtype.kind != "i" or (values.size and values.min() < 0)):
        raise SchemaValueError(f"column {name!r}: expected non-negative integers")
    return values


def _as_column(table: pa.Table, name: str, n: int) -> np.ndarray | None:
    """An AS number column as uint32 (nulls as 0), or None when absent."""
    if name not in table.column_names:
        return None
    values = _nonnegative(table, name)
    if values.dtype.itemsize > 4 and values.size and int(values.max()) > 0xFFFFFFFF:
        raise SchemaValueError(f"column {name!r}: AS numbers are 32-bit, got {int(values.max())}")
    return values.astype(np.uint32, copy=False)


def _as_numbers(
    src_as: np.ndarray | None, dst_as: np.ndarray | None, side: np.ndarray
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """The AS next to the watched side (src_as when the watched host sent,
    dst_as when it received: exporters set to peer-AS report the upstream
    there) and the AS on the outside peer's side; (None, None) when the batch
    has no AS columns."""
    if src_as is None or dst_as is None:
        return None, None
    dst_watched = side == SIDES.index("dst")
    return (np.where(dst_watched, dst_as, src_as).astype(np.int64),
            np.where(dst_watched, src_as, dst_as).astype(np.int64))


class _Codes:
    """Names of one label dimension seen so far, each with a stable code."""

    def __init__(self, names: tuple[str | None, ...] = ()) -> None:
        self.names: list[str | None] = list(names)
        self.code = {name: i for i, name in enumerate(self.names)}

    def remap(self, names: list, dtype) -> np.ndarray:
        """Codes of ``names`` (a batch's dictionary), adding new names."""
        for name in names:
            if name not in self.code:
                self.code[name] = len(self.names)
                self.names.append(name)
        return np.array([self.code[name] for name in names] or [0], dtype)

    def recode(self, names: list, codes: np.ndarray, dtype) -> np.ndarray:
        """A batch's ``codes`` into ``names`` as codes of this dimension;
        the codes as they are (no copy when of ``dtype``) when the two
        agree, as they do for every batch of one classifier."""
        table = self.remap(names, dtype)
        if len(table) == len(names) and np.array_equal(table, np.arange(len(table))):
            return codes.astype(dtype, copy=False)
        return table[codes]


class Accumulator:
    """Batches streamed into one native aggregation; :meth:`report` turns
    it into a :class:`Report` (the groups are built once, at the end)."""

    def __init__(self, bucket: str, by: str | None) -> None:
        self.bucket, self.by = bucket, by
        self.native = _core.Aggregator(bucket)
        self.paths = _Codes()
        self.activities = _Codes(ACTIVITIES)
        self.extras = _Codes()

    def add(self, flows: LabelledBatch) -> None:
        if flows.n == 0:
            return
        path = self.paths.recode(flows.path_names, flows.path, np.uint16)
        self.activities.remap(flows.activity_names, np.int64)
        if len(self.activities.names) > 256:
            unknown = sorted(set(self.activities.names) - set(ACTIVITIES))
            raise SchemaValueError(f"unknown activities: {', '.join(map(str, unknown[:5]))}")
        activity = self.activities.recode(flows.activity_names, flows.activity, np.uint8)
        extra = None
        if self.by is not None:
            extra = self.extras.recode(flows.extra_names, flows.extra, np.uint32)
        src, dst = _address_args(flows.src, "src"), _address_args(flows.dst, "dst")
        self.native.add(
            np.ascontiguousarray(flows.ts, np.int64), path, activity,
            np.ascontiguousarray(flows.side, np.uint8), **src, **dst, extra=extra,
            bytes=np.ascontiguousarray(flows.bytes, np.uint64),
            packets=np.ascontiguousarray(flows.packets, np.uint64),
            src_as=flows.src_as, dst_as=flows.dst_as,
        )

    def report(self) -> Report:
        report = Report(self.bucket, self.by)
        native = self.native
        if native.first_ms >= 0:
            report.note_times(native.first_ms, native.last_ms)
        paths, activities = self.paths.names, self.activities.names
        extras = self.extras.names if self.by is not None else [None]
        buckets, path, activity, extra, sums, _ = native.groups()
        buffer, offsets, sizes = native.all_sets()
        report.set_columns(GroupColumns(
            bucket_start_ms(buckets, self.bucket), _names(paths)[path],
            _names(activities)[activity], _names(extras)[extra], sums, sizes, buffer, offsets))
        p_path, p_activity, counters = native.profiles()
        if counters.size and int(counters.max()) > INT64_MAX:
            raise SchemaValueError("a profile's byte count passes 2^63 - 1")
        counters = counters.astype(np.int64)
        for row, (pc_, ac_) in enumerate(zip(p_path.tolist(), p_activity.tolist(), strict=True)):
            key = (paths[pc_], activities[ac_])
            report.add_profile("hour", key, counters[row, 0:24], counters[row, 24:48])
            report.add_profile("weekday", key, counters[row, 48:55], counters[row, 55:62])
        u_bucket, u_path, u_asn, u_sums = native.upstreams()
        # the native keys are distinct, and the report is new: no adding up
        report.upstreams = {
            (start, paths[pc_], asn): [flows, nbytes]
            for start, pc_, asn, flows, nbytes in zip(
                bucket_start_ms(u_bucket, self.bucket).tolist(), u_path.tolist(), u_asn.tolist(),
                u_sums[:, 0].tolist(), u_sums[:, 1].tolist(), strict=True)
        }
        return report


def _names(names: list) -> np.ndarray:
    out = np.empty(len(names), object)
    out[:] = names
    return out


def _address_args(addrs: np.ndarray, side: str) -> dict[str, np.ndarray]:
    """An address column as the native pass takes it: uint32 IPv4 values
    or (n, 16) IPv6 rows."""
    if addrs.dtype == np.uint32:
        return {f"{side}_v4": np.ascontiguousarray(addrs)}
    return {f"{side}_v6": np.ascontiguousarray(addrs, np.uint8)}


