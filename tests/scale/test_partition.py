"""The per-partition step both engines run (no engine needed): engine types
taken back exactly, bad values named by column and row, reports that add
and travel serialized."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pyarrow as pa
import pytest

from nkclass.errors import SchemaValueError
from nkclass.report import Report
from nkclass.scale import (
    ReportSpec,
    add_reports,
    dumps,
    engine_table,
    loads,
    partition_report,
)
from tests.scale.conftest import SPEC, assert_same_report, whole_table_report

U64_MAX = 2**64 - 1


def engine_typed(table: pa.Table) -> pa.Table:
    """The flows as Spark hands them over: variable-length binary addresses,
    counters as decimal(20, 0), signed integers."""
    spark_types = {"src_ip": pa.binary(), "dst_ip": pa.binary(), "src_port": pa.int32(),
                   "dst_port": pa.int32(), "protocol": pa.int16(), "tcp_flags": pa.int16(),
                   "src_as": pa.int64(), "dst_as": pa.int64(),
                   "packets": pa.decimal128(20, 0), "bytes": pa.decimal128(20, 0),
                   "ts_start": pa.timestamp("us", "UTC"), "ts_end": pa.timestamp("us", "UTC")}
    for name, dtype in spark_types.items():
        table = table.set_column(table.schema.get_field_index(name), name,
                                 table[name].cast(dtype))
    return table


def small_batch(**columns) -> pa.Table:
    base = {"src_ip": ["175.45.176.9"], "dst_ip": ["192.0.2.1"], "src_port": [50000],
            "dst_port": [443], "protocol": [6]}
    return pa.table({**base, **columns})


def test_engine_types_give_the_canonical_batch(flow_table):
    got = engine_table(engine_typed(flow_table))
    assert pa.Table.from_batches([got]).equals(flow_table)


def test_engine_typed_partitions_report_as_the_canonical_table(flow_table, classifier):
    parts = engine_typed(flow_table).to_batches(max_chunksize=5000)
    got = partition_report(parts, classifier, ReportSpec(**SPEC))
    assert_same_report(got, whole_table_report(flow_table, classifier))


def test_counters_up_to_two_to_the_64_minus_one_come_back_exactly():
    counters = pa.array([Decimal(U64_MAX), Decimal(0)], pa.decimal128(20, 0))
    batch = engine_table(small_batch(src_ip=["175.45.176.9"] * 2, dst_ip=["192.0.2.1"] * 2,
                                     src_port=[1, 2], dst_port=[443, 443], protocol=[6, 6],
                                     bytes=counters))
    assert batch.column("bytes").to_pylist() == [U64_MAX, 0]
    assert batch.column("bytes").type == pa.uint64()


@pytest.mark.parametrize(
    ("value", "message"),
    [(Decimal(-1), r"column 'packets': row 0 is -1, expected a non-negative integer"),
     (Decimal(2**64), r"column 'packets': a value passes 2\^64 - 1")],
)
def test_counters_outside_uint64_are_refused(value, message):
    with pytest.raises(SchemaValueError, match=message):
        engine_table(small_batch(packets=pa.array([value], pa.decimal128(20, 0))))


def test_binary_address_of_another_length_is_refused_naming_the_row():
    addresses = pa.array([bytes(10) + b"\xff\xff" + bytes(4), bytes([192, 0, 2, 1])])
    table = small_batch(src_ip=pa.array(["175.45.176.9"] * 2), dst_ip=addresses,
                        src_port=[1, 2], dst_port=[443, 443], protocol=[6, 6])
    with pytest.raises(SchemaValueError, match=r"column 'dst_ip': row 1 is 4 bytes"):
        engine_table(table)


def test_empty_partition_gives_an_empty_report_of_the_spec(classifier):
    report = partition_report([], classifier, ReportSpec(bucket="month", by="app"))
    assert len(report) == 0 and (report.bucket, report.by) == ("month", "app")


def test_serialized_reports_add_up_to_the_whole(flow_table, classifier):
    spec = ReportSpec(**SPEC)
    half = flow_table.num_rows // 2
    parts = [partition_report([flow_table.slice(0, half)], classifier, spec),
             partition_report([flow_table.slice(half)], classifier, spec)]
    total = add_reports(*(loads(dumps(p)) for p in parts))
    assert total == add_reports(*parts)
    assert total.total("flows") == flow_table.num_rows


def test_loads_refuses_what_is_not_a_report():
    with pytest.raises(TypeError, match="expected a serialized Report, got dict"):
        loads(pickle.dumps({"groups": {}}))


def test_fresh_report_pickles_in_column_form_and_comes_back_equal(flow_table, classifier):
    report = partition_report([flow_table], classifier, ReportSpec(**SPEC))
    assert "columns" in report.__getstate__()  # no object per group on the wire
    back = loads(dumps(report))
    assert_same_report(back, report)
    assert_same_report(loads(dumps(back + back)), back + back)  # object form too


def test_column_state_whose_bounds_leave_the_buffer_is_refused(flow_table, classifier):
    state = partition_report([flow_table], classifier, ReportSpec(**SPEC)).__getstate__()
    columns = state["columns"]
    columns.offsets[-1, -1] = len(columns.buffer) + 1
    with pytest.raises(ValueError, match="set bounds outside the buffer"):
        Report.__new__(Report).__setstate__(state)
