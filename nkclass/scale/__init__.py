"""Classify and report on a cluster: Dask (:mod:`nkclass.scale.dask`) and
Spark (:mod:`nkclass.scale.spark`).

Both engines run the same per-partition step (:func:`partition_report`):
the partition's flows are brought to the canonical schema with the same
checks as :func:`nkclass.read`, classified as one batch and aggregated
into a :class:`~nkclass.report.Report`; the partial reports are then added
with ``+`` in a tree. Report merges are exact (counters add, roaring sets
unite), so the result equals the single-process report over the same
batches. Classification is per flow except the flow-shape score, which
sees the flows of one (src_ip, dst_ip, dst_port) group within a batch:
there the batches are the engine's partitions (Dask: each input file, as
:func:`nkclass.read` batches it, or each DataFrame partition; Spark: each
DataFrame partition).

The engines are optional (``nkclass[dask]``, ``nkclass[spark]``) and
imported only by their adapter modules.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from nkclass.classify import Classifier, label_batch
from nkclass.errors import SchemaValueError
from nkclass.flows.convert import conform
from nkclass.flows.read import read
from nkclass.flows.schema import ADDRESS
from nkclass.report import Report, aggregate

ADDRESS_COLUMNS = ("src_ip", "dst_ip")


@dataclass(frozen=True)
class ReportSpec:
    """What each partition's report holds: the arguments of
    :func:`nkclass.report.aggregate` other than the flows."""

    bucket: str = "day"
    by: str | None = None
    start: object = None
    end: object = None
    path: str | list[str] | None = None
    activity: str | list[str] | None = None

    def aggregate(self, results: Iterable[object]) -> Report:
        return aggregate(results, self.bucket, self.by, start=self.start, end=self.end,
                         path=self.path, activity=self.activity)

    def check(self) -> None:
        """Refuse bad arguments on the client, before any task is sent."""
        self.aggregate([])


def engine_table(table: pa.Table | pa.RecordBatch) -> pa.RecordBatch:
    """A partition as a DataFrame engine hands it over, as a canonical batch
    (the checks of :func:`nkclass.flows.convert.conform`). Engines widen
    some types: 16-byte addresses come back as variable-length binary
    (pandas objects, Spark BinaryType) and uint64 counters as decimal(20, 0)
    (Spark has no unsigned types); both are taken back exactly."""
    if isinstance(table, pa.RecordBatch):
        table = pa.Table.from_batches([table])
    for name in table.column_names:
        col = table.column(name)
        if name in ADDRESS_COLUMNS and (pa.types.is_binary(col.type)
                                        or pa.types.is_large_binary(col.type)):
            table = table.set_column(table.schema.get_field_index(name), name,
                                     _fixed_addresses(col, name))
        elif pa.types.is_decimal(col.type) and col.type.scale == 0:
            table = table.set_column(table.schema.get_field_index(name), name,
                                     _whole_decimals(col, name))
    return conform(table)


def _fixed_addresses(col: pa.ChunkedArray, name: str) -> pa.Array:
    arr = col.combine_chunks()
    lengths = pc.binary_length(arr)
    wrong = pc.and_(pc.is_valid(lengths), pc.not_equal(lengths, ADDRESS.byte_width))
    if pc.any(wrong).as_py():
        row = pc.index(wrong, True).as_py()
        raise SchemaValueError(
            f"column {name!r}: row {row} is {lengths[row].as_py()} bytes, expected a 16-byte "
            "address (IPv4 as ::ffff:a.b.c.d) or address text")
    return arr.cast(ADDRESS)


def _whole_decimals(col: pa.ChunkedArray, name: str) -> pa.Array:
    arr = col.combine_chunks()
    negative = pc.less(arr, pa.scalar(0, arr.type))
    if pc.any(negative).as_py():
        row = pc.index(negative, True).as_py()
        raise SchemaValueError(f"column {name!r}: row {row} is {arr[row].as_py()}, "
                               "expected a non-negative integer")
    try:
        return arr.cast(pa.uint64())
    except pa.ArrowInvalid:
        raise SchemaValueError(f"column {name!r}: a value passes 2^64 - 1") from None


def partition_report(tables: Iterable[pa.Table | pa.RecordBatch], classifier: Classifier,
                     spec: ReportSpec) -> Report:
    """The report of one engine partition, given as Arrow pieces (classified
    together, as one batch)."""
    pieces = [t if isinstance(t, pa.Table) else pa.Table.from_batches([t]) for t in tables]
    pieces = [t for t in pieces if t.num_rows]
    if not pieces:
        return spec.aggregate([])
    table = pa.concat_tables(pieces, promote_options="default")
    return spec.aggregate([label_batch(classifier, engine_table(table))])


def file_report(path: str, classifier: Classifier, spec: ReportSpec, format: str | None = None,
                batch_size: int = 65536) -> Report:
    """The report of one input file, read and batched by :func:`nkclass.read`."""
    with read(path, format=format, batch_size=batch_size) as reader:
        return spec.aggregate(label_batch(classifier, batch) for batch in reader)


def add_reports(*reports: Report) -> Report:
    """``reports[0] + reports[1] + ...`` (one node of the tree), merged in
    one pass (native when the groups are in column form, as partition
    reports and unpickled ones are); the reports given are left as they
    are."""
    if len(reports) == 1:
        return reports[0]
    return Report.combined(reports)


def dumps(report: Report) -> bytes:
    return pickle.dumps(report, protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Report:
    """A report serialized by :func:`dumps` (on this job's own workers:
    unpickling runs code, so never load reports from elsewhere)."""
    report = pickle.loads(data)
    if not isinstance(report, Report):
        raise TypeError(f"expected a serialized Report, got {type(report).__name__}")
    return report


@functools.lru_cache(maxsize=4)
def classifier_from(blob: bytes) -> Classifier:
    """The classifier pickled in ``blob``, built once per worker process
    (compiling the ruleset and loading the AS table take a while)."""
    classifier = pickle.loads(blob)
    if not isinstance(classifier, Classifier):
        raise TypeError(f"expected a pickled Classifier, got {type(classifier).__name__}")
    return classifier


def classifier_blob(classifier: Classifier | None) -> bytes:
    if classifier is None:
        classifier = Classifier()
    if not isinstance(classifier, Classifier):
        raise TypeError(f"The 'classifier' parameter must be an nkclass.Classifier or None. "
                        f"Got {type(classifier).__name__} instead.")
    return pickle.dumps(classifier, protocol=pickle.HIGHEST_PROTOCOL)


__all__ = ["ReportSpec", "add_reports", "engine_table", "file_report", "partition_report"]
