"""nkclass on Spark: a report over a Spark DataFrame of flows, each
partition classified and aggregated in ``mapInArrow`` into one serialized
report, and the serialized reports added with ``+`` in a tree
(``treeAggregate``) into the driver's report.

Needs ``nkclass[spark]`` (pyspark, a Java runtime) and nkclass installed on
every executor (``spark-submit --py-files`` cannot carry the native modules:
install the wheel on the nodes, or ship a packed virtualenv with
``--archives``).

>>> df = spark.read.parquet("hdfs:///flows/")                    # doctest: +SKIP
>>> report = nkclass.scale.spark.report(df, bucket="month")      # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from nkclass.classify import Classifier
from nkclass.report import Report
from nkclass.scale import (
    ReportSpec,
    add_reports,
    classifier_blob,
    classifier_from,
    dumps,
    loads,
    partition_report,
)

#: The column of serialized reports that ``mapInArrow`` yields.
REPORT_SCHEMA = "report binary"
#: Levels of the reduction tree (Spark's default for treeAggregate).
DEPTH = 2


def report(
    df,
    classifier: Classifier | None = None,
    *,
    bucket: str = "day",
    by: str | None = None,
    start: object = None,
    end: object = None,
    path: str | list[str] | None = None,
    activity: str | list[str] | None = None,
    depth: int = DEPTH,
) -> Report:
    """Classify and aggregate the flows of the Spark DataFrame ``df``
    (canonical column names) into a :class:`~nkclass.report.Report`; the
    arguments after ``classifier`` are those of
    :func:`nkclass.report.aggregate`. Each partition is classified as one
    batch. ``classifier`` defaults to ``nkclass.Classifier()``; it is
    broadcast, and built once per Python worker."""
    spec = ReportSpec(bucket, by, start, end, path, activity)
    spec.check()
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"The 'depth' parameter of report must be an int of at least 1. "
                         f"Got {depth!r} instead.")
    blob = df.sparkSession.sparkContext.broadcast(classifier_blob(classifier))

    def partition(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        part = partition_report(batches, classifier_from(blob.value), spec)
        yield pa.RecordBatch.from_pydict({"report": [dumps(part)]},
                                         schema=pa.schema([("report", pa.binary())]))

    try:
        serialized = df.mapInArrow(partition, REPORT_SCHEMA).rdd.map(lambda row: row.report)
        empty = dumps(spec.aggregate([]))
        total = serialized.treeAggregate(empty, _add_serialized, _add_serialized, depth)
    finally:
        blob.unpersist()
    return loads(total)


def _add_serialized(a: bytes, b: bytes) -> bytes:
    return dumps(add_reports(loads(a), loads(b)))


__all__ = ["DEPTH", "REPORT_SCHEMA", "report"]
