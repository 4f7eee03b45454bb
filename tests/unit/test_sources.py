"""Inputs: standard input and pipes, compressed captures, folders and
patterns, and messages that name the option the caller uses."""

from __future__ import annotations

import bz2
import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

import nkclass
from nkclass import InputError
from nkclass.flows.source import Source

DATA = Path(__file__).parent.parent / "data"
FLOWS = DATA / "flows"
PCAP = DATA / "pcap" / "mining-monero-stratum.pcap"


def read_all(paths, **kwargs) -> pa.Table:
    batches = list(nkclass.read(paths, **kwargs))
    return pa.Table.from_batches(batches) if batches else pa.table({})


def compressed(data: bytes, codec: str) -> bytes:
    if codec == "gzip":
        return gzip.compress(data)
    if codec == "bz2":
        return bz2.compress(data)
    return pa.compress(data, codec="zstd", asbytes=True)


@pytest.mark.parametrize(("codec", "suffix"), [("gzip", ".gz"), ("bz2", ".bz2"), ("zstd", ".zst")])
def test_compressed_captures_read_like_the_plain_ones(tmp_path, codec, suffix):
    plain = read_all(PCAP)
    packed = tmp_path / f"capture.pcap{suffix}"
    packed.write_bytes(compressed(PCAP.read_bytes(), codec))
    assert read_all(packed).equals(plain)
    misnamed = tmp_path / "capture.bin"  # recognised by the magic bytes, not the name
    misnamed.write_bytes(packed.read_bytes())
    assert read_all(misnamed).equals(plain)


def test_concatenated_gzip_members_are_all_read(tmp_path):
    lines = (FLOWS / "zeek-conn.json").read_bytes().splitlines(keepends=True)
    packed = tmp_path / "conn.json.gz"
    packed.write_bytes(gzip.compress(b"".join(lines[:2])) + gzip.compress(b"".join(lines[2:])))
    assert read_all(packed).num_rows == 5


def test_corrupt_compressed_data_is_an_input_error(tmp_path):
    packed = gzip.compress((FLOWS / "zeek-conn.json").read_bytes() * 50)
    path = tmp_path / "conn.json.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(InputError, match="corrupt or truncated gzip data"):
        read_all(path)


@pytest.mark.parametrize(("arg", "name"), [
    ("-", "zeek-conn.log"), ("/dev/stdin", "goflow2.jsonl"), ("-", "nfdump-mdns-q.csv"),
    ("/dev/stdin", "../pcap/http-get.pcap")])
def test_standard_input_is_an_input(arg, name):
    data = (FLOWS / name).read_bytes()
    done = subprocess.run([sys.executable, "-m", "nkclass", "classify", arg, "-o", "-"],
                          input=data, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == read_all(FLOWS / name).num_rows


def test_standard_input_of_parquet_and_compressed_data(tmp_path):
    parquet = tmp_path / "flows.parquet"
    nkclass.write(read_all(FLOWS / "zeek-conn.log"), parquet)
    for data in (parquet.read_bytes(), gzip.compress(PCAP.read_bytes())):
        done = subprocess.run([sys.executable, "-m", "nkclass", "classify", "-", "-o", "-"],
                              input=data, capture_output=True, check=False)
        assert done.returncode == 0, done.stderr
        assert len(done.stdout.splitlines()) in (5, read_all(PCAP).num_rows)


def test_input_format_overrides_sniffing_and_errors_name_the_cli_option():
    data = (FLOWS / "zeek-conn.json").read_bytes()
    cmd = [sys.executable, "-m", "nkclass", "classify", "-", "-o", "-"]
    done = subprocess.run([*cmd, "--input-format", "zeek-json"], input=data,
                          capture_output=True, check=True)
    assert len(done.stdout.splitlines()) == 5
    done = subprocess.run(cmd, input=b"no flows here\n", capture_output=True, text=False,
                          check=False)
    assert done.returncode == 1
    assert b"<stdin>: cannot tell the format" in done.stderr
    assert b"pass --input-format one of" in done.stderr and b"format=" not in done.stderr
    assert b"Traceback" not in done.stderr


def test_python_api_errors_name_the_keyword(tmp_path):
    path = tmp_path / "mystery"
    path.write_bytes(b"no flows here\n")
    with pytest.raises(InputError, match="pass format= one of"):
        read_all(path)


def test_a_folder_is_its_files_in_sorted_order_without_hidden_ones(tmp_path):
    folder = tmp_path / "flows"
    (folder / "2019" / "b").mkdir(parents=True)
    (folder / ".cache").mkdir()
    shutil.copy(FLOWS / "zeek-conn.log", folder / "2019" / "b" / "conn.log")
    shutil.copy(FLOWS / "goflow2.jsonl", folder / "2019" / "a.jsonl")
    shutil.copy(FLOWS / "pmacct-monero.jsonl", folder / "z.jsonl")
    shutil.copy(FLOWS / "nfdump-monero.csv", folder / ".cache" / "hidden.csv")
    (folder / ".hidden.jsonl").write_text("not read\n")
    (folder / "_SUCCESS").write_text("")
    reader = nkclass.read(folder)
    assert [s.path for s in reader.sources] == [
        str(folder / "2019" / "a.jsonl"), str(folder / "2019" / "b" / "conn.log"),
        str(folder / "z.jsonl")]
    assert sum(b.num_rows for b in reader) == 3 + 5 + 12


def test_patterns_expand_to_the_files_they_match(tmp_path):
    for i in range(3):
        nkclass.write(read_all(FLOWS / "goflow2.jsonl"), tmp_path / f"part-{i}.parquet")
    (tmp_path / "notes.txt").write_text("not flows\n")
    reader = nkclass.read(str(tmp_path / "*.parquet"))
    assert [Path(s.path).name for s in reader.sources] == [
        "part-0.parquet", "part-1.parquet", "part-2.parquet"]
    assert sum(b.num_rows for b in reader) == 9
    assert read_all(str(tmp_path / "**" / "part-1.parquet")).num_rows == 3


def test_patterns_and_folders_that_hold_nothing_are_errors(tmp_path):
    with pytest.raises(InputError, match="no files match"):
        nkclass.read(str(tmp_path / "*.parquet"))
    with pytest.raises(InputError, match="holds no input files"):
        nkclass.read(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        read_all(tmp_path / "absent.parquet")


def test_an_empty_input_holds_no_flows(tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    reader = nkclass.read([empty, FLOWS / "zeek-conn.log"])
    assert sum(b.num_rows for b in reader) == 5
    assert reader.stats.files == [str(empty), str(FLOWS / "zeek-conn.log")]


def test_a_source_replays_the_bytes_it_sniffed_from_a_pipe():
    done = subprocess.run(
        [sys.executable, "-c",
         "import sys; from nkclass.flows.source import Source; s = Source(None); "
         "h = s.head; sys.stdout.buffer.write(s.stream().read())"],
        input=b"x" * 10_000, capture_output=True, check=True)
    assert done.stdout == b"x" * 10_000


def test_a_source_is_read_once(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"abc\n")
    with Source(str(path)) as source:
        assert source.stream().read() == b"abc\n"
        with pytest.raises(InputError, match="already read"):
            source.stream()
