"""Adding partial reports, as a node of the Dask or Spark reduction tree
does: the native merge of groups in column form against the group-object
path (a Group per group, pyroaring unions), in the same run."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from benchmarks.conftest import measure, size
from nkclass import Classifier
from nkclass.classify import label_batch
from nkclass.demo.synth import generate
from nkclass.report import Report, aggregate

PARTS = 16
# How the flows are spread over the 16 partial reports: consecutive slices
# of the time-ordered flows (files written in time order: neighbours share
# only the days at their edges, so most sets are copied), or dealt round
# robin (files per exporter or router: every part holds every day, so most
# sets are united).
LAYOUTS = {"consecutive": size(4_000_000, 1_000_000), "interleaved": size(500_000, 200_000)}


def family(layout: str) -> str:
    return f"add 16 partial reports, {layout}"


@pytest.fixture(scope="module", params=list(LAYOUTS))
def partials(request) -> tuple[str, list[Report]]:
    """The layout and the day reports of its 16 parts of the demo generator's flows, as
    workers hand them to the reduction: each in column form."""
    layout = request.param
    table = pa.Table.from_batches(list(generate(flows=LAYOUTS[layout], seed=7)))
    clf = Classifier()
    if layout == "consecutive":
        step = -(-table.num_rows // PARTS)
        pieces = [table.slice(k * step, step) for k in range(PARTS)]
    else:
        rows = np.arange(table.num_rows)
        pieces = [table.take(rows[k::PARTS]) for k in range(PARTS)]
    reports = [aggregate([label_batch(clf, piece)], "day") for piece in pieces]
    return layout, reports


def as_arrived(report: Report) -> Report:
    """A fresh report with ``report``'s groups in column form (the arrays
    are shared, never changed), as unpickling on the reducing worker gives
    it."""
    copy = Report(report.bucket, report.by)
    copy.set_columns(report._columns)
    copy.profiles = report.profiles
    copy.upstreams = report.upstreams
    copy.first_ms, copy.last_ms = report.first_ms, report.last_ms
    return copy


def group_object_sum(partials: list[Report]) -> Report:
    """The same sum through group objects: each report's groups made
    objects as they arrive, then Group.merge per shared key."""
    total = Report(partials[0].bucket, partials[0].by)
    for part in partials:
        arrived = as_arrived(part)
        arrived.groups  # noqa: B018 - the group objects the object path merges
        total.merge_in(arrived)
    return total


def test_merge_native(benchmark, partials):
    layout, reports = partials
    groups = sum(len(p) for p in reports)
    total = measure(benchmark, family(layout), "native", groups,
                    lambda: Report.combined([as_arrived(p) for p in reports]))
    assert total._columns is not None
    benchmark.extra_info.update(groups_in=groups, groups_out=len(total))


def test_merge_group_objects(benchmark, partials):
    layout, reports = partials
    groups = sum(len(p) for p in reports)
    total = measure(benchmark, family(layout), "group objects", groups,
                    lambda: group_object_sum(reports), rounds=3)
    assert total._columns is None
    assert total.table().equals(Report.combined(reports).table())


@pytest.mark.guard
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_guard_merge(registry, layout):
    registry.guard(family(layout), "native", "group objects", 4.0,
                   f"{PARTS} day reports of {LAYOUTS[layout]:,} flows in all; a reduction "
                   "node's work")
