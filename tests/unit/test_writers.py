"""nkclass.write / FlowWriter: atomic outputs, addresses as text, and
everything written reads back to the same flows."""

from __future__ import annotations

import json
import os
import resource
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.ipc as ipc
import pyarrow.parquet as pq
import pytest

import nkclass
from nkclass import InputError
from nkclass.cli import main
from nkclass.demo import write_synth
from nkclass.errors import OutputError
from nkclass.flows.schema import ALL_FIELDS
from nkclass.flows.write import FlowWriter, output_format

DATA = Path(__file__).parent.parent / "data"
FLOWS = DATA / "flows"
LABELS = ("path", "side", "service", "app", "activity", "confidence", "evidence")
# Flows with IPv4 and IPv6, payloads, flags, AS numbers and app hints
INPUTS = [DATA / "pcap" / "mining-monero-stratum.pcap", FLOWS / "goflow2.jsonl",
          FLOWS / "zeek-conn.log"]


def read_all(path, **kwargs) -> pa.Table:
    batches = list(nkclass.read(path, **kwargs))
    return pa.Table.from_batches(batches).combine_chunks()


def classified_tables() -> list[pa.Table]:
    clf = nkclass.Classifier()
    return [clf.classify(read_all(p)).to_arrow() for p in INPUTS]


def as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    return column.cast(pa.string()) if pa.types.is_dictionary(column.type) else column


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet", ".arrow"])
def test_classified_output_reads_back_to_the_same_flows(tmp_path, suffix):
    whole = pa.concat_tables(classified_tables(), promote_options="permissive")
    pieces = [whole.slice(0, 5), whole.slice(5, 1), whole.slice(6)]  # written batch by batch
    out = tmp_path / f"labelled{suffix}"
    assert nkclass.write(pieces, out) == whole.num_rows
    back = read_all(out)
    for field in ("ts_start", "ts_end", "src_ip", "dst_ip", "src_port", "dst_port", "protocol",
                  "packets", "bytes", "tcp_flags", "src_as", "dst_as"):
        assert back.schema.field(field).type == ALL_FIELDS[field].type, field
    expected = set(whole.column_names)
    if suffix in (".csv", ".jsonl"):
        expected -= {"src_payload", "dst_payload"}  # text outputs leave payloads out
    assert set(back.column_names) == expected
    for name in back.column_names:
        assert as_text(back.column(name)).equals(as_text(whole.column(name))), name


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet", ".arrow"])
def test_addresses_are_written_as_text(tmp_path, suffix):
    out = tmp_path / f"flows{suffix}"
    nkclass.write(read_all(FLOWS / "goflow2.jsonl"), out)
    if suffix == ".parquet":
        column = pq.read_table(out).column("src_ip")
    elif suffix == ".arrow":
        column = ipc.open_file(out).read_all().column("src_ip")
    elif suffix == ".csv":
        column = pa.csv.read_csv(out).column("src_ip")
    else:
        column = pa.array([json.loads(line)["src_ip"] for line in out.read_text().splitlines()])
    assert column.to_pylist() == ["175.45.177.12", "10.1.2.3", "2001:db8::5"]


def test_arrow_output_keeps_every_batch_when_dictionaries_differ(tmp_path):
    tables = classified_tables()  # each batch has its own evidence dictionary
    assert len({t.column("evidence").combine_chunks().dictionary.to_pylist().__repr__()
                for t in tables}) > 1
    out = tmp_path / "labelled.arrow"
    nkclass.write(tables, out)
    back = ipc.open_file(out).read_all()
    assert back.num_rows == sum(t.num_rows for t in tables)
    assert back.column("evidence").cast(pa.string()).to_pylist() == [
        v for t in tables for v in t.column("evidence").cast(pa.string()).to_pylist()]


def test_arrow_output_of_a_many_batch_capture_through_the_cli(tmp_path):
    out = tmp_path / "flows.arrow"
    pcap = DATA / "pcap" / "mining-bitcoin-stratum-getwork.pcap"
    flows = read_all(pcap)
    assert main(["classify", str(pcap), "--batch-size", "1", "-o", str(out)]) == 0
    assert ipc.open_file(out).read_all().num_rows == flows.num_rows > 1


def test_a_later_table_may_lack_or_add_optional_columns(tmp_path):
    first = read_all(FLOWS / "goflow2.jsonl")  # src_as, no app_hint
    second = read_all(FLOWS / "zeek-conn.log")  # app_hint, no src_as
    out = tmp_path / "mixed.parquet"
    with FlowWriter(out) as writer:
        writer.write(first)
        writer.write(second)
    assert writer.dropped_columns == {"app_hint"}
    back = pq.read_table(out)
    assert back.column("src_as").null_count == second.num_rows
    assert back.num_rows == first.num_rows + second.num_rows
    with FlowWriter(out) as writer:  # even a required column may be missing later
        writer.write(first)
        writer.write(second.drop_columns(["ts_end"]))
    assert pq.read_table(out).column("ts_end").null_count == second.num_rows


def test_a_later_table_whose_column_type_cannot_follow_is_an_error(tmp_path):
    first = read_all(FLOWS / "goflow2.jsonl")
    second = first.set_column(first.column_names.index("src_as"), "src_as",
                              pa.array(["AS1", "AS2", "AS3"]))
    out = old_file(tmp_path, "out.parquet")
    with pytest.raises(nkclass.SchemaValueError, match="column 'src_as' is string in a later"):
        nkclass.write([first, second], out)
    assert out.read_bytes() == b"the previous output\n"


def test_json_lines_escape_control_characters(tmp_path):
    table = read_all(FLOWS / "zeek-conn.log")
    hints = ['a "quoted"\nline\\', "tab\there", "nul\x00", "ok", None]
    table = table.set_column(table.column_names.index("app_hint"), "app_hint",
                             pa.array(hints, pa.string()))
    out = tmp_path / "odd.jsonl"
    nkclass.write(table, out)
    lines = out.read_bytes().splitlines()
    assert len(lines) == 5
    assert [json.loads(line)["app_hint"] for line in lines] == hints
    assert read_all(out).column("app_hint").to_pylist() == hints


def test_unknown_output_format_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match=r"cannot tell the output format of .*out\.txt.*format="):
        output_format(tmp_path / "out.txt")
    assert output_format("-") == "jsonl"
    assert output_format(tmp_path / "out.txt", "csv") == "csv"
    with pytest.raises(ValueError, match="unknown output format 'xml'"):
        FlowWriter(tmp_path / "out.csv", "xml")
    assert list(tmp_path.iterdir()) == []


def old_file(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(b"the previous output\n")
    return path


def failing(tables, exc: BaseException):
    yield tables[0]
    raise exc


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet", ".arrow"])
@pytest.mark.parametrize("exc", [InputError("bad line", "in.csv", 7), KeyboardInterrupt()],
                         ids=["input error", "ctrl-c"])
def test_a_failed_write_leaves_the_old_file_and_no_partial_file(tmp_path, suffix, exc):
    path = old_file(tmp_path, f"out{suffix}")
    with pytest.raises(type(exc)):
        nkclass.write(failing(classified_tables(), exc), path)
    assert path.read_bytes() == b"the previous output\n"
    assert os.listdir(tmp_path) == [path.name]


def test_a_missing_output_folder_is_an_output_error(tmp_path):
    with pytest.raises(OutputError, match=r"folder .*nope does not exist") as info:
        nkclass.write(read_all(FLOWS / "goflow2.jsonl"), tmp_path / "nope" / "out.csv")
    assert isinstance(info.value, OSError) and info.value.path.endswith("out.csv")
    with pytest.raises(OutputError, match="is a folder"):
        FlowWriter(tmp_path, "csv")


def test_new_outputs_get_the_usual_permissions_and_old_ones_keep_theirs(tmp_path):
    umask = os.umask(0o022)
    try:
        new = tmp_path / "new.csv"
        nkclass.write(read_all(FLOWS / "goflow2.jsonl"), new)
        assert stat.S_IMODE(new.stat().st_mode) == 0o644
        old = old_file(tmp_path, "old.csv")
        old.chmod(0o600)
        nkclass.write(read_all(FLOWS / "goflow2.jsonl"), old)
        assert stat.S_IMODE(old.stat().st_mode) == 0o600
    finally:
        os.umask(umask)


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))


def test_running_out_of_space_is_a_clear_error_and_keeps_the_old_file(tmp_path):
    """A real write failure (the file size limit, as a full disk would) in
    the middle of an output: exit 1, one line, the old file intact."""
    flows = tmp_path / "flows.parquet"
    write_synth(flows, 20_000, seed=1)
    out = old_file(tmp_path, "out.csv")
    done = subprocess.run([sys.executable, "-m", "nkclass", "classify", str(flows), "-o", str(out)],
                          capture_output=True, text=True, preexec_fn=_limit_file_size,
                          check=False)
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert f"nkclass: error: {out}: cannot write: file too large" in done.stderr
    assert out.read_bytes() == b"the previous output\n"
    assert sorted(os.listdir(tmp_path)) == ["flows.parquet", "out.csv"]


def test_writing_to_standard_output(tmp_path):
    cmd = [sys.executable, "-m", "nkclass", "classify", str(FLOWS / "goflow2.jsonl"), "-o", "-"]
    done = subprocess.run(cmd, capture_output=True, check=True)
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["src_ip"] for r in rows] == ["175.45.177.12", "10.1.2.3", "2001:db8::5"]
    done = subprocess.run([*cmd, "--output-format", "parquet"], capture_output=True, check=True)
    table = pq.read_table(pa.BufferReader(done.stdout))
    assert table.num_rows == 3 and table.column("activity")[0].as_py() == "mining_suspect"
    assert list(tmp_path.iterdir()) == []


def test_empty_input_still_writes_a_readable_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    for suffix in (".parquet", ".csv", ".jsonl", ".arrow"):
        out = tmp_path / f"out{suffix}"
        assert main(["classify", str(empty), "-o", str(out)]) == 0
        assert sum(b.num_rows for b in nkclass.read(out)) == 0
    assert "activity" in pq.read_schema(tmp_path / "out.parquet").names


def test_labels_read_back_are_used_as_they_are(tmp_path):
    tables = classified_tables()
    out = tmp_path / "labelled.csv"
    nkclass.write(tables, out)
    from nkclass.report import aggregate

    want = aggregate(tables, bucket="day")
    got = aggregate(nkclass.read(out), bucket="day")
    assert got == want
    assert pc.sum(got.table().column("flows")).as_py() == sum(t.num_rows for t in tables)
