"""nkclass on Dask: a report over a Dask DataFrame or a set of flow files
(a partitioned Parquet dataset, or any inputs :func:`nkclass.read` takes),
one task per partition or file and a tree of ``+`` over the partial reports
(``split_every`` of them added per node).

Runs on the current Dask scheduler: a ``distributed`` cluster when a
:class:`distributed.Client` is active (``Client("tcp://scheduler:8786")``),
else Dask's local scheduler. Needs ``nkclass[dask]`` and nkclass installed on
every worker.

>>> from distributed import Client                               # doctest: +SKIP
>>> client = Client("tcp://scheduler:8786")                      # doctest: +SKIP
>>> report = nkclass.scale.dask.report("flows/", bucket="month")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import dask
import dask.bag
import pyarrow as pa

from nkclass.classify import Classifier
from nkclass.errors import InputError
from nkclass.flows.source import expand_inputs
from nkclass.report import Report
from nkclass.scale import (
    ReportSpec,
    add_reports,
    classifier_blob,
    classifier_from,
    file_report,
    partition_report,
)

#: Partial reports added per node of the reduction tree.
SPLIT_EVERY = 8


def report(
    data: object,
    classifier: Classifier | None = None,
    *,
    bucket: str = "day",
    by: str | None = None,
    start: object = None,
    end: object = None,
    path: str | list[str] | None = None,
    activity: str | list[str] | None = None,
    format: str | None = None,
    batch_size: int = 65536,
    split_every: int = SPLIT_EVERY,
    compute: bool = True,
) -> Report | dask.bag.Item:
    """Classify and aggregate ``data`` into a :class:`~nkclass.report.Report`
    on Dask; the arguments after ``classifier`` are those of
    :func:`nkclass.report.aggregate`.

    ``data`` is a Dask DataFrame of flows (canonical column names; each
    partition is classified as one batch), or a path, folder, pattern or
    list of them, as :func:`nkclass.read` takes (each file is one task, read
    in ``batch_size`` batches of ``format``, detected when None).
    ``classifier`` defaults to ``nkclass.Classifier()``; it is sent to each
    worker once. With ``compute=False`` the lazy result (a Dask Item) is
    returned instead.
    """
    spec = ReportSpec(bucket, by, start, end, path, activity)
    spec.check()
    if isinstance(split_every, bool) or not isinstance(split_every, int) or split_every < 2:
        raise ValueError(f"The 'split_every' parameter of report must be an int of at least 2. "
                         f"Got {split_every!r} instead.")
    blob = dask.delayed(classifier_blob(classifier), pure=True)
    if _is_dataframe(data):
        parts = [dask.delayed(_dataframe_part_report)(part, blob, spec)
                 for part in data.to_delayed()]
        bag = dask.bag.from_delayed(parts)
    else:
        paths = _file_paths(data)
        bag = dask.bag.from_sequence(paths, npartitions=len(paths)).map(
            _file_task, blob, spec, format, batch_size)
    total = bag.reduction(_add_all, _add_all, split_every=split_every)
    return total.compute() if compute else total


def _is_dataframe(data: object) -> bool:
    try:
        import dask.dataframe
    except ImportError:  # dask without its dataframe part (no pandas): files only
        return False
    return isinstance(data, dask.dataframe.DataFrame)


def _file_paths(data: object) -> list[str]:
    items = [data] if isinstance(data, str | os.PathLike) else data
    if not isinstance(items, Iterable):
        raise TypeError("The 'data' parameter of report must be a Dask DataFrame, a path or "
                        f"a list of paths. Got {type(data).__name__} instead.")
    paths = []
    for source in expand_inputs(items):
        if source.path is None:
            raise InputError("standard input cannot be spread over workers", source.name)
        paths.append(source.path)
    return paths


def _add_all(reports: Iterable[Report]) -> Report:
    return add_reports(*reports)


def _file_task(path: str, blob: bytes, spec: ReportSpec, format: str | None,
               batch_size: int) -> Report:
    return file_report(path, classifier_from(blob), spec, format, batch_size)


def _dataframe_part_report(part, blob: bytes, spec: ReportSpec) -> list[Report]:
    table = pa.Table.from_pandas(part, preserve_index=False)
    return [partition_report([table], classifier_from(blob), spec)]


__all__ = ["SPLIT_EVERY", "report"]
