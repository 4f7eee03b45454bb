"""Readers against plain pyarrow reads of the same files, in the same run:
the cost of normalising to the canonical schema (target: under 30%)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from benchmarks.conftest import measure, size
from nkclass import read
from nkclass.demo.synth import generate
from nkclass.flows.write import output_table

N_ROWS = size(2_000_000, 1_000_000)
PARQUET = "parquet read (rows/s)"
CSV = "nfdump csv read (rows/s)"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("readers")
    parquet = folder / "flows.parquet"
    csv = folder / "flows.csv"
    writer = None
    csv_writer = None
    csv_file = open(csv, "wb")
    for batch in generate(flows=N_ROWS, seed=9, batch_size=1 << 19):
        batch = batch.drop_columns(["src_payload", "dst_payload"])
        if writer is None:
            writer = pq.ParquetWriter(parquet, batch.schema)
        writer.write_batch(batch)
        # nfdump's CSV layout: ts,te,td,sa,da,sp,dp,pr,flg,...,ipkt,ibyt,opkt,obyt
        t = output_table(pa.Table.from_batches([batch]), text=True)
        fmt = "%Y-%m-%d %H:%M:%S"
        nf = pa.table({
            "ts": pa.compute.strftime(t["ts_start"], format=fmt),
            "te": pa.compute.strftime(t["ts_end"], format=fmt),
            "td": pa.array([0.0] * t.num_rows), "sa": t["src_ip"], "da": t["dst_ip"],
            "sp": t["src_port"], "dp": t["dst_port"], "pr": t["protocol"],
            "flg": pa.array(["...AP..."] * t.num_rows), "ipkt": t["packets"],
            "ibyt": t["bytes"], "opkt": pa.array([0] * t.num_rows),
            "obyt": pa.array([0] * t.num_rows),
        })
        if csv_writer is None:
            csv_file.write((",".join(nf.column_names) + "\n").encode())  # nfdump's bare header
            csv_writer = pacsv.CSVWriter(csv_file, nf.schema, write_options=pacsv.WriteOptions(
                quoting_style="none", include_header=False))
        csv_writer.write_table(nf)
    writer.close()
    csv_writer.close()
    csv_file.close()
    return parquet, csv


def test_parquet_nkclass(benchmark, files):
    measure(benchmark, PARQUET, "nkclass", N_ROWS,
            lambda: sum(b.num_rows for b in read(files[0], batch_size=1 << 18)))


def test_parquet_pyarrow(benchmark, files):
    measure(benchmark, PARQUET, "pyarrow", N_ROWS,
            lambda: sum(b.num_rows for b in
                        pq.ParquetFile(files[0]).iter_batches(batch_size=1 << 18)))


def test_csv_nkclass(benchmark, files):
    measure(benchmark, CSV, "nkclass", N_ROWS,
            lambda: sum(b.num_rows for b in read(files[1], batch_size=1 << 18)))


def test_csv_pyarrow(benchmark, files):
    """A plain typed pyarrow read (times parsed, addresses left as text)."""
    measure(benchmark, CSV, "pyarrow", N_ROWS, lambda: pacsv.read_csv(files[1]).num_rows)


@pytest.mark.guard
def test_guard_readers(registry):
    registry.guard(PARQUET, "nkclass", "pyarrow", 0.7, "target: under 30% overhead")
    registry.guard(CSV, "nkclass", "pyarrow", None,
                   "nkclass also parses addresses to binary and validates every value")
