"""A small partitioned flow dataset, its single-process reports, and an
exact comparison of reports (groups with their address sets, profiles,
upstreams and period), for the Dask and Spark adapters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import nkclass
from nkclass.addresses import format_addresses
from nkclass.classify import label_batch
from nkclass.demo.synth import generate
from nkclass.report import Report, aggregate

FLOWS = 12_000
SPEC = {"bucket": "week", "by": "service"}


def synthetic_flows() -> pa.Table:
    """Seeded synthetic flows of the watched paths (payloads, TCP flags, AS
    numbers; every 7th src_as missing, as exporters leave them), and a
    miner's session across the turn of a year (:func:`straddling_session`)."""
    table = pa.Table.from_batches(list(generate(flows=FLOWS, seed=11)))
    missing = np.arange(table.num_rows) % 7 == 0
    src_as = pc.if_else(pa.array(missing), pa.scalar(None, pa.uint32()), table["src_as"])
    table = table.set_column(table.schema.get_field_index("src_as"), "src_as", src_as)
    return pa.concat_tables([table, straddling_session(table.schema)])


def straddling_session(schema: pa.Schema) -> pa.Table:
    """Eight one-minute pieces of one TCP session from a watched host, four
    each side of 2018-01-01 00:00 UTC. Together they meet 7 of the 9
    flow-shape conditions (bytes per packet, ACK+PSH, no SYN, RST or FIN,
    src_port > dst_port, and a span over 5 minutes), the threshold for
    mining_suspect; each half spans 4 minutes and meets 6."""
    minute = 60_000
    starts = np.datetime64("2017-12-31T23:56", "ms").astype(np.int64) + np.arange(8) * minute
    n = len(starts)
    columns = {
        "ts_start": pa.array(starts).cast(schema.field("ts_start").type),
        "ts_end": pa.array(starts + minute).cast(schema.field("ts_end").type),
        "src_ip": [bytes(10) + b"\xff\xff" + bytes([175, 45, 176, 20])] * n,
        "dst_ip": [bytes(10) + b"\xff\xff" + bytes([198, 51, 100, 23])] * n,
        "src_port": [50123] * n,
        "dst_port": [10343] * n,
        "protocol": [6] * n,
        "packets": [20] * n,  # 20 packets per flow, 20 per minute: neither condition met
        "bytes": [1200] * n,  # 60 bytes per packet
        "tcp_flags": [0x18] * n,  # ACK and PSH only
        "src_as": [None] * n,
        "dst_as": [None] * n,
        "src_payload": [None] * n,
        "dst_payload": [None] * n,
    }
    return pa.table({name: pa.array(values, schema.field(name).type)
                     for name, values in columns.items()}, schema=schema)


@pytest.fixture(scope="session")
def flow_table() -> pa.Table:
    return synthetic_flows()


@pytest.fixture(scope="session")
def dataset(flow_table, tmp_path_factory) -> Path:
    """The flows as a hive-partitioned Parquet dataset, one file per year
    (year=2017/part-0.parquet, ...)."""
    root = tmp_path_factory.mktemp("flows")
    ts = flow_table["ts_start"].cast(pa.int64()).to_numpy().astype("datetime64[ms]")
    years = ts.astype("datetime64[Y]").astype(np.int64) + 1970
    for year in np.unique(years):
        folder = root / f"year={year}"
        folder.mkdir()
        pq.write_table(flow_table.filter(pa.array(years == year)), folder / "part-0.parquet")
    return root


@pytest.fixture(scope="session")
def classifier() -> nkclass.Classifier:
    return nkclass.Classifier()


@pytest.fixture(scope="session")
def dataset_report(dataset, classifier) -> Report:
    """The single-process report: nkclass.read's batches (one per file here),
    classified and aggregated in this process."""
    with nkclass.read(dataset) as reader:
        return aggregate((label_batch(classifier, b) for b in reader), **SPEC)


def without_shape_columns(table: pa.Table) -> pa.Table:
    """The flows without TCP flags: the flow-shape stage (the one stage that
    looks across flows) is off, so any partitioning gives the same labels."""
    return table.drop_columns(["tcp_flags"])


def with_address_text(table: pa.Table) -> pa.Table:
    """Addresses as text, as DataFrames usually hold them."""
    for name in ("src_ip", "dst_ip"):
        rows = table[name].combine_chunks().buffers()[1]
        text = format_addresses(np.frombuffer(rows, np.uint8).reshape(-1, 16))
        table = table.set_column(table.schema.get_field_index(name), name, text)
    return table


def whole_table_report(table: pa.Table, classifier: nkclass.Classifier) -> Report:
    return aggregate(classifier.classify(table), **SPEC)


def assert_same_report(got: Report, want: Report) -> None:
    assert (got.bucket, got.by) == (want.bucket, want.by)
    assert got.table().equals(want.table())
    assert got.groups == want.groups  # every counter and address set, exactly
    assert (got.first_ms, got.last_ms) == (want.first_ms, want.last_ms)
    assert got.upstreams == want.upstreams
    for kind in want.profiles:
        assert got.profiles[kind].keys() == want.profiles[kind].keys()
        for key, values in want.profiles[kind].items():
            np.testing.assert_array_equal(got.profiles[kind][key], values)
