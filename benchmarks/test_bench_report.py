"""Aggregation and the end-to-end report against pandas, in the same run."""

from __future__ import annotations

import ipaddress
import time

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from benchmarks.conftest import measure, size
from nkclass import Classifier, read
from nkclass.cli.classify import BATCH_SIZE
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
    """Read, classify and aggregate streaming, as `nkclass report` does (in
    its batches of --batch-size flows); the stage shares come from timing
    the read and classify steps (the rest is aggregation; "read" is the wait
    for the next batch, which is read ahead on a background thread)."""

    spent = {"read": 0.0, "classify": 0.0}

    def classified():
        t = time.perf_counter()
        for batch in read(path, batch_size=BATCH_SIZE):
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


class CpuTime:
    """Process CPU seconds over the calls of a function: the report reads
    the next batch on a background thread and pyarrow decodes on its pool,
    so wall time alone does not say how many cores the rate took."""

    def __init__(self, fn):
        self.fn, self.seconds, self.calls = fn, 0.0, 0

    def __call__(self):
        start = time.process_time()
        try:
            return self.fn()
        finally:
            self.seconds += time.process_time() - start
            self.calls += 1

    def report(self, benchmark, label: str) -> None:
        per_cpu_second = N_FLOWS * self.calls / self.seconds
        benchmark.extra_info["flows_per_cpu_second"] = per_cpu_second
        print(f"\n{label}: {per_cpu_second / 1e6:.2f}M flows per CPU second")


def test_report_end_to_end(benchmark, synthetic):
    path, clf, _ = synthetic
    stages = {"read": 0.0, "classify": 0.0, "aggregate": 0.0}
    cpu = CpuTime(lambda: report_end_to_end(path, clf, stages))
    measure(benchmark, E2E, "nkclass", N_FLOWS, cpu, rounds=3)
    cpu.report(benchmark, "report end to end")
    total = sum(stages.values())
    benchmark.extra_info["stage_share"] = {k: round(v / total, 3) for k, v in stages.items()}
    print("\nreport stages: " + ", ".join(f"{k} {v / total:.0%}" for k, v in stages.items()))


def port_activity_table(rules) -> pa.Table:
    """The port rules as the lookup table a SQL user would build: one row per
    (protocol, port), the narrowest rule winning and the later one on ties;
    rules for protocols without ports keyed by port 0."""
    best: dict[tuple[int, int], tuple[int, str]] = {}
    for rule in rules.ports:
        width = rule.last_port - rule.first_port
        protocols = (6, 17) if rule.protocol == 0 else (rule.protocol,)
        for protocol in protocols:
            ports = range(rule.first_port, rule.last_port + 1) if protocol in (6, 17) else (0,)
            for port in ports:
                if (protocol, port) not in best or width <= best[protocol, port][0]:
                    best[protocol, port] = (width, rule.activity)
    keys = list(best)
    return pa.table({"protocol": pa.array([k[0] for k in keys], pa.uint8()),
                     "port": pa.array([k[1] for k in keys], pa.uint16()),
                     "activity": [best[k][1] for k in keys]})


def duckdb_report_sql(rules) -> tuple[str, list]:
    """The report as SQL: watched path by address range on either side, the
    month, the activity by server port (else client port) from the port
    table, then flows, sums and distinct watched hosts and outside peers per
    group. Addresses are the file's 16-byte IPv4-mapped rows, so a prefix is
    a range of blobs."""
    cases, params = [], []
    for watched in rules.watched:
        for prefix in watched.prefixes:
            net = ipaddress.ip_network(prefix)
            if net.version == 4:
                net = ipaddress.ip_network(f"::ffff:{net.network_address}/{96 + net.prefixlen}")
            cases.append(f"WHEN {{ip}} BETWEEN ?::BLOB AND ?::BLOB THEN '{watched.name}'")
            params += [net.network_address.packed, net.broadcast_address.packed]

    def path_of(column: str) -> str:
        return "CASE " + " ".join(c.format(ip=column) for c in cases) + " END"

    sql = f"""
    SELECT date_trunc('month', f.ts_start) AS month, coalesce(sp, dp) AS path,
           coalesce(d.activity, s.activity, 'unknown') AS activity, count(*) AS flows,
           sum(f.bytes) AS bytes, sum(f.packets) AS packets,
           count(DISTINCT CASE WHEN sp IS NOT NULL THEN src_ip ELSE dst_ip END) AS hosts,
           count(DISTINCT CASE WHEN sp IS NOT NULL THEN dst_ip ELSE src_ip END) AS peers
    FROM (SELECT *, {path_of("src_ip")} AS sp, {path_of("dst_ip")} AS dp
          FROM read_parquet($file)) f
    LEFT JOIN ports d ON d.protocol = f.protocol
        AND d.port = CASE WHEN f.protocol IN (6, 17) THEN f.dst_port ELSE 0 END
    LEFT JOIN ports s ON s.protocol = f.protocol AND f.protocol IN (6, 17)
        AND s.port = f.src_port
    WHERE sp IS NOT NULL OR dp IS NOT NULL
    GROUP BY ALL"""
    return sql, params + params


def test_report_duckdb_baseline(benchmark, synthetic):
    """DuckDB on one thread (the targets are per core) running the report's
    SQL on the same file."""
    duckdb = pytest.importorskip("duckdb")
    path, clf, _ = synthetic
    sql, params = duckdb_report_sql(clf.rules)
    con = duckdb.connect(config={"threads": 1})
    con.register("ports", port_activity_table(clf.rules))
    sql = sql.replace("$file", "'" + str(path).replace("'", "''") + "'")

    def run():
        rows = con.execute(sql, params).fetchall()
        assert rows
        return rows

    cpu = CpuTime(run)
    measure(benchmark, E2E, "duckdb", N_FLOWS, cpu, rounds=2)
    cpu.report(benchmark, "DuckDB, one thread")


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
    registry.guard(E2E, "nkclass", "duckdb", None,
                   "target 3x; DuckDB on one thread, path by range, activity by port table")
