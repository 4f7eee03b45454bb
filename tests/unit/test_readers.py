"""nkclass.read / nkclass.write over every text and columnar format."""

from __future__ import annotations

import gzip
import ipaddress
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nkclass
from nkclass import InputError
from nkclass.cli import main
from nkclass.flows.formats import detect_format
from nkclass.flows.read import FlowReader
from nkclass.flows.schema import FLOW_SCHEMA
from nkclass.flows.source import Source

DATA = Path(__file__).parent.parent / "data"
FLOWS = DATA / "flows"


def read_all(path, **kwargs) -> tuple[pa.Table, FlowReader]:
    reader = nkclass.read(path, **kwargs)
    batches = list(reader)
    return pa.Table.from_batches(batches) if batches else None, reader


def addresses(table: pa.Table, column: str) -> list[str]:
    out = []
    for raw in table.column(column).to_pylist():
        addr = ipaddress.IPv6Address(raw)
        out.append(str(addr.ipv4_mapped or addr))
    return out


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("nfdump-monero.csv", "nfdump-csv"),
        ("nfdump-mdns-q.csv", "nfdump-csv"),
        ("pmacct-monero.jsonl", "pmacct-json"),
        ("zeek-conn.log", "zeek-tsv"),
        ("zeek-conn.json", "zeek-json"),
        ("goflow2.jsonl", "goflow2-json"),
        ("../pcap/http-get.pcap", "pcap"),
    ],
)
def test_format_is_detected_and_schema_is_canonical(name, fmt):
    with Source(str(FLOWS / name)) as source:
        assert detect_format(source) == fmt
    table, _ = read_all(FLOWS / name)
    for field in FLOW_SCHEMA:
        assert table.schema.field(field.name).type == field.type, field.name


def test_nfdump_totals_match_its_own_summary():
    table, reader = read_all(FLOWS / "nfdump-monero.csv")
    # the file's Summary block: flows,bytes,packets = 54,97227,320
    assert table.num_rows == 54 == reader.stats.records
    assert pa.compute.sum(table.column("bytes")).as_py() == 97227
    assert pa.compute.sum(table.column("packets")).as_py() == 320
    first = table.slice(0, 1).to_pylist()[0]
    assert addresses(table, "src_ip")[0] == "10.0.2.15" and first["dst_port"] == 53
    assert first["protocol"] == 17 and first["bytes"] == 58


def test_nfdump_quiet_output_without_header_reads_ipv6():
    table, _ = read_all(FLOWS / "nfdump-mdns-q.csv")
    assert table.num_rows == 4
    assert "fd52:429e:c03c:8235:883c:d6ff:fee1:4dc4" in addresses(table, "src_ip")
    assert table.column("protocol").to_pylist() == [2, 17, 0, 17]


def test_nfdump_flag_strings_become_tcp_flags():
    table, _ = read_all(FLOWS / "nfdump-monero.csv")
    # "...APR.." is ACK|PSH|RST
    assert 0x10 | 0x08 | 0x04 in table.column("tcp_flags").to_pylist()


def test_zeek_tsv_and_json_agree_and_keep_service():
    tsv, _ = read_all(FLOWS / "zeek-conn.log")
    js, _ = read_all(FLOWS / "zeek-conn.json")
    assert tsv.equals(js)
    assert tsv.column("app_hint").to_pylist() == ["http", "dns", None, "dns", None]
    row = tsv.slice(0, 1).to_pylist()[0]
    assert row["packets"] == 14 and row["bytes"] == 512 + 5379
    assert (row["ts_end"] - row["ts_start"]).total_seconds() == pytest.approx(0.211, abs=0.001)


def test_pmacct_unknown_end_time_falls_back_to_start():
    table, _ = read_all(FLOWS / "pmacct-monero.jsonl")
    assert table.num_rows == 12
    assert table.column("ts_end").equals(table.column("ts_start"))
    assert table.column("tcp_flags").to_pylist()[0] == 24


def test_goflow2_counts_are_scaled_by_sampling_rate():
    table, _ = read_all(FLOWS / "goflow2.jsonl")
    assert table.column("packets").to_pylist() == [20, 1000, 512]
    assert table.column("bytes").to_pylist() == [1400, 143_000, 768_000]
    assert table.column("src_as").to_pylist()[0] == 131279


def test_gzip_input_reads_the_same(tmp_path):
    packed = tmp_path / "conn.log.gz"
    with open(FLOWS / "zeek-conn.log", "rb") as src, gzip.open(packed, "wb") as dst:
        shutil.copyfileobj(src, dst)
    assert read_all(packed)[0].equals(read_all(FLOWS / "zeek-conn.log")[0])


def test_batches_are_bounded():
    reader = nkclass.read(FLOWS / "nfdump-monero.csv", batch_size=10)
    sizes = [b.num_rows for b in reader]
    assert max(sizes) <= 10 and sum(sizes) == 54


def broken_copy(tmp_path: Path, name: str, line: int, text: str) -> Path:
    lines = (FLOWS / name).read_text().splitlines(keepends=True)
    lines[line - 1] = text
    out = tmp_path / name
    out.write_text("".join(lines))
    return out


@pytest.mark.parametrize(
    ("name", "line", "text", "message"),
    [
        ("nfdump-monero.csv", 7, "2018-09-11 16:41:54,2018-09-11\n", "expected 48 columns"),
        (
            "nfdump-monero.csv",
            9,
            (FLOWS / "nfdump-monero.csv").read_text().splitlines()[8].replace(",53,", ",5x3,", 1)
            + "\n",
            "non-negative integer",
        ),
        (
            "zeek-conn.json",
            3,
            '{"ts": 1536684120.9, "id.orig_h": "10.0.2.15", oops\n',
            "invalid zeek-json record",
        ),
        (
            "zeek-conn.json",
            2,
            '{"ts":1,"id.orig_h":"10.0.2.999","id.orig_p":1,"id.resp_h":'
            '"1.1.1.1","id.resp_p":2,"proto":"tcp"}\n',
            "expected an IPv4 or IPv6 address",
        ),
        (
            "goflow2.jsonl",
            2,
            '{"time_flow_start_ns":1,"time_flow_end_ns":2,"src_addr":"1.1.1.1",'
            '"dst_addr":"2.2.2.2","src_port":70000,"dst_port":1,"proto":"TCP","bytes":1,'
            '"packets":1}\n',
            "outside 0..65535",
        ),
        (
            "zeek-conn.log",
            11,
            "1536684114.3\tCx\t10.0.2.15\tabc\t192.168.1.1\t53\tudp\tdns\t0.1\t1"
            "\t1\tSF\t-\t-\t0\tDd\t1\t65\t1\t97\t-\n",
            "non-negative integer",
        ),
    ],
)
def test_malformed_record_names_file_and_line_or_is_skipped(tmp_path, name, line, text, message):
    path = broken_copy(tmp_path, name, line, text)
    with pytest.raises(InputError) as info:
        read_all(path)
    assert info.value.path == str(path) and info.value.line == line, str(info.value)
    assert message in str(info.value)
    table, reader = read_all(path, errors="skip")
    clean, _ = read_all(FLOWS / name)
    assert reader.stats.skipped == 1
    assert table.num_rows == clean.num_rows - 1


def test_unknown_format_lists_the_formats(tmp_path):
    path = tmp_path / "mystery.bin"
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError, match=r"cannot tell the format.*nfdump-csv"):
        read_all(path)
    with pytest.raises(ValueError, match="unknown format 'netflow-v11'"):
        nkclass.read(path, format="netflow-v11")


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_all(tmp_path / "absent.csv")


@pytest.mark.parametrize("suffix", [".parquet", ".arrow"])
def test_columnar_round_trip(tmp_path, suffix):
    original, _ = read_all(DATA / "pcap" / "mining-monero-stratum.pcap")
    out = tmp_path / f"flows{suffix}"
    assert nkclass.write(original, out) == original.num_rows
    again, _ = read_all(out)
    assert again.equals(original)


def test_classified_output_reads_back_as_input(tmp_path):
    clf = nkclass.Classifier()
    flows, _ = read_all(DATA / "pcap" / "mining-monero-stratum.pcap")
    out = tmp_path / "labelled.parquet"
    nkclass.write(clf.classify(flows), out)
    again, _ = read_all(out)
    assert again.column("activity").to_pylist() == clf.classify(flows).names("activity")


def test_text_outputs_carry_addresses_as_text(tmp_path):
    clf = nkclass.Classifier()
    flows, _ = read_all(FLOWS / "goflow2.jsonl")
    result = clf.classify(flows)
    nkclass.write(result, tmp_path / "out.jsonl")
    nkclass.write(result, tmp_path / "out.csv")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["src_ip"] for r in rows] == ["175.45.177.12", "10.1.2.3", "2001:db8::5"]
    assert rows[0]["path"] == "kp_range" and rows[0]["activity"] == "mining_suspect"
    assert rows[0]["ts_start"] == "2019-05-01T08:40:00.000Z"
    csv = pa.csv.read_csv(tmp_path / "out.csv")
    assert csv.column("dst_ip").to_pylist() == ["192.110.160.114", "77.94.35.20", "2001:db8:1::7"]
    assert "src_payload" not in csv.column_names


def test_cli_classify_writes_the_documented_columns(tmp_path, capsys):
    out = tmp_path / "out.csv"
    code = main(
        [
            "classify",
            str(DATA / "pcap" / "http-get.pcap"),
            str(FLOWS / "zeek-conn.log"),
            "-o",
            str(out),
        ]
    )
    assert code == 0
    table = pa.csv.read_csv(out)
    assert table.column_names == [
        "ts_start",
        "ts_end",
        "src_ip",
        "dst_ip",
        "src_port",
        "dst_port",
        "protocol",
        "packets",
        "bytes",
        "path",
        "side",
        "service",
        "app",
        "activity",
        "confidence",
        "evidence",
        "src_as",
        "dst_as",
        "peer_as",
        "peer_org",
        "stratum_submits",  # the capture's stratum counters (null for the Zeek rows)
        "stratum_difficulty",
        "stratum_algo",
    ]
    assert table.num_rows == 6
    assert "6 rows in, 6 rows out" in capsys.readouterr().err


def test_cli_classify_fails_with_file_and_line_then_skips(tmp_path, capsys):
    bad = broken_copy(tmp_path, "zeek-conn.json", 2, "{not json\n")
    assert main(["classify", str(bad), "-o", str(tmp_path / "o.parquet")]) == 1
    assert f"{bad}:2:" in capsys.readouterr().err
    assert main(["classify", str(bad), "--skip-bad", "-o", str(tmp_path / "o.parquet")]) == 0
    assert "1 skipped" in capsys.readouterr().err
    assert pq.read_table(tmp_path / "o.parquet").num_rows == 4


def test_parquet_reading_holds_about_one_row_group_not_the_file(tmp_path):
    """Memory while streaming a Parquet file stays near one batch: reading
    must not keep every row group read so far."""
    import numpy as np

    def address_rows(rows: np.ndarray) -> pa.Array:
        return pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(rows),
                                                    [None, pa.py_buffer(rows)])

    rows, groups = 40_000, 16
    rng = np.random.default_rng(3)
    table = pa.table({
        "ts_start": pa.array(np.arange(rows * groups, dtype=np.int64), pa.timestamp("ms", "UTC")),
        "src_ip": address_rows(rng.integers(0, 256, (rows * groups, 16), dtype=np.uint8)),
        "dst_ip": address_rows(np.zeros((rows * groups, 16), np.uint8)),
        "src_port": pa.array(rng.integers(0, 2**16, rows * groups, dtype=np.uint16)),
        "dst_port": pa.array(rng.integers(0, 2**16, rows * groups, dtype=np.uint16)),
        "protocol": pa.array(np.full(rows * groups, 6, np.uint8)),
        "bytes": pa.array(rng.integers(0, 2**40, rows * groups, dtype=np.uint64)),
    })
    path = tmp_path / "flows.parquet"
    pq.write_table(table, path, row_group_size=rows, compression="snappy")
    one_group = table.slice(0, rows).nbytes
    before = pa.total_allocated_bytes()
    peak = 0
    for batch in nkclass.read(path, batch_size=rows):
        peak = max(peak, pa.total_allocated_bytes() - before)
        del batch
    assert peak < 6 * one_group, (peak, one_group)
