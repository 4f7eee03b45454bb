"""Adding partial reports, as a node of the Dask or Spark reduction tree
does: the native merge of groups in column form against the group-object
path (a Group per group, pyroaring unions), in the same run."""

from __future__ import annotations

import pyarrow as pa
import pytest

from benchmarks.conftest import measure, size
from nkclass import Classifier
from nkclass.classify import label_batch
from nkclass.demo.synth import generate
from nkclass.report import Report, aggregate

MERGE = "add 16 partial reports"
PARTS = 16
N_FLOWS = size(4_000_000, 1_000_000)


@pytest.fixture(scope="module")
def partials() -> list[Report]:
    """The day reports of 16 consecutive slices of the demo generator's
    flows (time-ordered), as workers hand them to the reduction: each in
    column form, neighbours sharing the days at their edges."""
    table = pa.Table.from_batches(list(generate(flows=N_FLOWS, seed=7)))
    clf = Classifier()
    step = -(-table.num_rows // PARTS)
    return [aggregate([label_batch(clf, table.slice(k * step, step))], "day")
            for k in range(PARTS)]


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
    groups = sum(len(p) for p in partials)
    total = measure(benchmark, MERGE, "native", groups,
                    lambda: Report.combined([as_arrived(p) for p in partials]))
    assert total._columns is not None
    benchmark.extra_info["groups_in"] = groups
    benchmark.extra_info["groups_out"] = len(total)


def test_merge_group_objects(benchmark, partials):
    groups = sum(len(p) for p in partials)
    total = measure(benchmark, MERGE, "group objects", groups,
                    lambda: group_object_sum(partials), rounds=3)
    assert total._columns is None
    assert total.table().equals(Report.combined(partials).table())


@pytest.mark.guard
def test_guard_merge(registry):
    registry.guard(MERGE, "native", "group objects", 4.0,
                   f"{PARTS} day reports of {N_FLOWS:,} flows in all; the reduction node's work")
