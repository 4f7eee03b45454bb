"""nkclass.scale.spark on pyspark local[2] (one session for the module):
the reports equal the single-process ones exactly."""

from __future__ import annotations

import os
import shutil

import pyarrow.parquet as pq
import pytest

pytest.importorskip("pyspark", reason="the nkclass[spark] extra is not installed")
if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
    pytest.skip("pyspark needs a Java runtime (java on PATH or JAVA_HOME)",
                allow_module_level=True)

from pyspark.errors import PythonException
from pyspark.sql import SparkSession

from nkclass.scale import spark as nkspark
from tests.scale.conftest import (
    SPEC,
    assert_same_report,
    whole_table_report,
    with_address_text,
    without_shape_columns,
)

pytestmark = pytest.mark.filterwarnings(
    # pyspark's own notice about pandas 3, which none of this path uses
    "ignore:PySpark does not yet fully support pandas:FutureWarning",
)


@pytest.fixture(scope="module")
def spark():
    saved = os.environ.get("SPARK_LOCAL_IP")
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"  # loopback only, whatever the host name says
    session = (
        SparkSession.builder.master("local[2]")
        .appName("nkclass-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        # each file its own partition: opening a file costs as much as a full partition
        .config("spark.sql.files.openCostInBytes", "128MB")
        .config("spark.sql.files.maxPartitionBytes", "128MB")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
    if saved is None:
        del os.environ["SPARK_LOCAL_IP"]
    else:
        os.environ["SPARK_LOCAL_IP"] = saved


def test_dataset_report_equals_single_process(spark, dataset, dataset_report, classifier):
    frame = spark.read.parquet(str(dataset))
    # one partition per file (the session's file options), the batches
    # nkclass.read gives in one process
    files = len(list(dataset.rglob("*.parquet")))
    assert frame.rdd.getNumPartitions() == files
    got = nkspark.report(frame, classifier, **SPEC)
    assert_same_report(got, dataset_report)


def test_repartitioned_frame_report_equals_single_process(
        spark, flow_table, classifier, tmp_path):
    table = without_shape_columns(flow_table)
    pq.write_table(with_address_text(table), tmp_path / "flows.parquet")
    frame = spark.read.parquet(str(tmp_path)).repartition(3)
    got = nkspark.report(frame, classifier, **SPEC)
    assert_same_report(got, whole_table_report(table, classifier))


def test_frame_partitioned_by_flow_group_equals_one_whole_batch(
        spark, dataset, flow_table, classifier):
    # each (src, dst, dst_port) group in one partition: the flow-shape score
    # sees every group whole, as in one batch of all the flows
    frame = spark.read.parquet(str(dataset)).repartition(3, "src_ip", "dst_ip", "dst_port")
    got = nkspark.report(frame, classifier, **SPEC)
    assert_same_report(got, whole_table_report(flow_table, classifier))


def test_bad_value_fails_naming_column_and_row(spark, classifier):
    frame = spark.createDataFrame(
        [("2019-05-01 10:00:00", "175.45.176.9", "192.0.2.1", 50000, 70000, 6)],
        "ts_start string, src_ip string, dst_ip string, src_port int, dst_port int, protocol int",
    )
    expected = r"column 'dst_port': row 0 is 70000, outside 0\.\.65535"
    with pytest.raises(PythonException, match=expected):
        nkspark.report(frame, classifier)


def test_empty_frame_gives_an_empty_report(spark, dataset, classifier):
    frame = spark.read.parquet(str(dataset)).limit(0)
    report = nkspark.report(frame, classifier, bucket="month")
    assert len(report) == 0 and report.bucket == "month"


def test_bad_arguments_are_refused_before_any_job(spark, dataset):
    frame = spark.read.parquet(str(dataset))
    with pytest.raises(ValueError, match="by must be"):
        nkspark.report(frame, by="peer")
    with pytest.raises(ValueError, match="'depth' parameter"):
        nkspark.report(frame, depth=0)
    with pytest.raises(TypeError, match="'classifier' parameter"):
        nkspark.report(frame, classifier=object())
