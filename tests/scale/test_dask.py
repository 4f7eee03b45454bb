"""nkclass.scale.dask on a distributed LocalCluster of two worker processes:
the reports equal the single-process ones exactly."""

from __future__ import annotations

import pytest

pytest.importorskip("dask.dataframe", reason="the nkclass[dask] extra is not installed")
distributed = pytest.importorskip("distributed", reason="the nkclass[dask] extra is not installed")

import dask.dataframe as dd  # noqa: E402
import pandas as pd  # noqa: E402

from nkclass.errors import InputError  # noqa: E402
from nkclass.scale import dask as nkdask  # noqa: E402
from tests.scale.conftest import (  # noqa: E402
    SPEC,
    assert_same_report,
    whole_table_report,
    with_address_text,
    without_shape_columns,
)


@pytest.fixture(scope="module")
def client():
    # loopback only; the scheduler's HTTP server on a free port (not 8787,
    # which another cluster on the machine may hold)
    with (
        distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=":0", host="127.0.0.1") as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_dataset_report_on_two_workers_equals_single_process(
        client, dataset, dataset_report, classifier, flow_table):
    # the flow-shape score sees each file's flows apart, as nkclass.read's
    # batches do: the dataset is one where that changes labels
    assert whole_table_report(flow_table, classifier) != dataset_report
    got = nkdask.report(dataset, classifier, split_every=3, **SPEC)
    assert_same_report(got, dataset_report)
    assert got.total("flows") == flow_table.num_rows


def test_dataframe_report_on_two_workers_equals_single_process(client, flow_table, classifier):
    table = without_shape_columns(flow_table)
    # Arrow-backed columns: Dask would turn object columns (payload bytes) into text
    pandas = with_address_text(table).to_pandas(types_mapper=pd.ArrowDtype)
    frame = dd.from_pandas(pandas, npartitions=5)
    got = nkdask.report(frame, classifier, **SPEC)
    assert_same_report(got, whole_table_report(table, classifier))


def test_frame_shuffled_by_flow_group_equals_one_whole_batch(
        client, dataset, flow_table, classifier):
    # each (src, dst, dst_port) group in one partition: the flow-shape score
    # sees every group whole, as in one batch of all the flows
    frame = dd.read_parquet(dataset, dtype_backend="pyarrow")
    # the task shuffle: distributed's p2p shuffle cannot rebuild 16-byte binary columns
    grouped = frame.shuffle(on=["src_ip", "dst_ip", "dst_port"], npartitions=3,
                            shuffle_method="tasks")
    got = nkdask.report(grouped, classifier, **SPEC)
    assert_same_report(got, whole_table_report(flow_table, classifier))


def test_filters_apply_on_the_workers(client, dataset, dataset_report, classifier):
    got = nkdask.report(dataset, classifier, bucket="week", by="service", activity="mining",
                        start="2018-01-01")
    want = dataset_report.total("flows", start="2018-01-01", activity="mining")
    assert got.total("flows") == want > 0
    assert {key[2] for key in got.groups} == {"mining"}


def test_bad_arguments_are_refused_before_any_task(dataset):
    with pytest.raises(ValueError, match="bucket must be one of"):
        nkdask.report(dataset, bucket="year")
    with pytest.raises(ValueError, match="'split_every' parameter"):
        nkdask.report(dataset, split_every=1)
    with pytest.raises(TypeError, match="'classifier' parameter"):
        nkdask.report(dataset, classifier="default")
    with pytest.raises(InputError, match="standard input"):
        nkdask.report("-")


def test_a_bad_file_fails_the_report_naming_it(client, tmp_path, classifier):
    bad = tmp_path / "part-1.parquet"
    bad.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(InputError, match=r"part-1\.parquet"):
        nkdask.report(tmp_path, classifier)
