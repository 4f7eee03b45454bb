"""Aggregation and the end-to-end report against pandas, in the same run."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.conftest import measure, size
from nkclass import Classifier, read
from nkclass.demo.synth import generate
from nkclass.report import Report, aggregate

AGG = "aggregate 10M classified flows"
E2E = "report end to end (parquet)"
N_FLOWS = size(10_000_000, 2_000_000)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The demo generator's flows (time-ordered, realistic label mix) as a
    Parquet file of flow records (no payload columns: the bulk NetFlow/IPFIX
    telemetry analysts buy) and as classified batches."""
    path = tmp_path_factory.mktemp("bench") / "flows.parquet"
    writer = None
    for batch in generate(flows=N_FLOWS, seed=5, batch_size=1 << 20):
        batch = batch.drop_columns(["src_payload", "dst_payload"])
        if writer is None:
            writer = pq.ParquetWriter(path, batch.schema)
        writer.write_batch(batch)
    writer.close()
    clf = Classifier()
    results = [clf.classify(b) for b in read(path, batch_size=1 << 20)]
    return path, clf, results


def test_aggregate_nkclass(benchmark, synthetic):
    _, _, results = synthetic
    # The same table the pandas baseline ends with (the report keeps more).
    measure(benchmark, AGG, "nkclass", N_FLOWS,
            lambda: aggregate(results, bucket="day").table(), rounds=3)


def ipv4_values(column: np.ndarray) -> np.ndarray:
    """IPv4 addresses as integers, from uint32 or IPv4-mapped 16-byte rows."""
    return column if column.ndim == 1 else column[:, 12:].copy().view(">u4").ravel()


def pandas_aggregate(results) -> pd.DataFrame:
    """What a user would write for the same table: one DataFrame, groupby
    with sums and nunique for distinct watched hosts and outside peers."""
    frames = []
    for r in results:
        table = r.flows.source
        src, dst = ipv4_values(r.flows.src_ip), ipv4_values(r.flows.dst_ip)
        frames.append(pd.DataFrame({
            "day": table.column("ts_start").cast(pa.int64()).to_numpy() // 86_400_000,
            "path": r.path, "activity": r.activity,
            "bytes": table.column("bytes").to_numpy(),
            "packets": table.column("packets").to_numpy(),
            # like nkclass: flows touching no watched path add no addresses
            "host": pd.Series(np.where(r.side == 2, dst, src)).mask(r.side == 0),
            "peer": pd.Series(np.where(r.side == 2, src, dst)).mask(r.side == 0),
        }))
    df = pd.concat(frames, ignore_index=True)
    return df.groupby(["day", "path", "activity"]).agg(
        flows=("bytes", "size"), bytes=("bytes", "sum"), packets=("packets", "sum"),
        hosts=("host", "nunique"), peers=("peer", "nunique"))


def test_aggregate_pandas(benchmark, synthetic):
    _, _, results = synthetic
    measure(benchmark, AGG, "pandas", N_FLOWS, lambda: pandas_aggregate(results), rounds=2)


def report_end_to_end(path, clf, stages: dict) -> Report:
    """Read, classify and aggregate streaming, as `nkclass report` does; the
    stage shares come from timing the read and classify steps (the rest is
    aggregation)."""

    spent = {"read": 0.0, "classify": 0.0}

    def classified():
        t = time.perf_counter()
        for batch in read(path, batch_size=1 << 20):
            t1 = time.perf_counter()
            result = clf.classify(batch)
            t2 = time.perf_counter()
            spent["read"] += t1 - t
            spent["classify"] += t2 - t1
            yield result
            t = time.perf_counter()

    start = time.perf_counter()
    report = aggregate(classified(), bucket="day")
    table = report.table()
    spent["aggregate"] = time.perf_counter() - start - spent["read"] - spent["classify"]
    for stage, seconds in spent.items():
        stages[stage] += seconds
    assert table.num_rows > 0
    return report


def test_report_end_to_end(benchmark, synthetic):
    path, clf, _ = synthetic
    stages = {"read": 0.0, "classify": 0.0, "aggregate": 0.0}
    measure(benchmark, E2E, "nkclass", N_FLOWS, lambda: report_end_to_end(path, clf, stages),
            rounds=3)
    total = sum(stages.values())
    benchmark.extra_info["stage_share"] = {k: round(v / total, 3) for k, v in stages.items()}
    print("\nreport stages: " + ", ".join(f"{k} {v / total:.0%}" for k, v in stages.items()))


def test_report_pandas_baseline(benchmark, synthetic):
    """Reading the same Parquet with pandas and grouping (no classification)."""
    path, _, _ = synthetic

    def run():
        df = pd.read_parquet(path, columns=["ts_start", "dst_port", "bytes", "packets"])
        df["day"] = df["ts_start"].astype("int64") // 86_400_000_000_000 if \
            df["ts_start"].dtype.unit == "ns" else df["ts_start"].dt.floor("D")
        return df.groupby(["day", "dst_port"]).agg(flows=("bytes", "size"), bytes=("bytes", "sum"))

    measure(benchmark, E2E, "pandas", N_FLOWS, run, rounds=2)


@pytest.mark.guard
def test_guard_aggregate(registry):
    registry.guard(AGG, "nkclass", "pandas", 1.0,
                   "same table; nkclass also keeps mergeable sets, profiles, upstreams")


@pytest.mark.guard
def test_guard_report(registry):
    registry.guard(E2E, "nkclass", "pandas", None,
                   "target 5M flows/s; pandas only reads and groups, no classification")
