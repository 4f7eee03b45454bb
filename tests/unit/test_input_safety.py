"""Hostile and malformed input: every bad value is an InputError naming file
and line, or skipped and counted with errors="skip"; nothing crashes, hangs,
wraps or is cut."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import nkclass
from nkclass import InputError
from nkclass.flows.jsonl import MAX_DEPTH
from nkclass.flows.reader import Problems
from nkclass.flows.stats import ReadStats
from nkclass.flows.text import MAX_LINE_BYTES, line_blocks

FLOWS = Path(__file__).parent.parent / "data" / "flows"
NFDUMP = (FLOWS / "nfdump-monero.csv").read_bytes().splitlines(keepends=True)
ZEEK_JSON = (FLOWS / "zeek-conn.json").read_bytes().splitlines(keepends=True)
ZEEK_TSV = (FLOWS / "zeek-conn.log").read_bytes().splitlines(keepends=True)
GOFLOW2 = (FLOWS / "goflow2.jsonl").read_bytes().splitlines(keepends=True)
PMACCT = (FLOWS / "pmacct-monero.jsonl").read_bytes().splitlines(keepends=True)
NFDUMP_FIELDS = {"ts": 0, "te": 1, "sa": 3, "dp": 6, "ibyt": 12, "obyt": 14}


def read_all(path, **kwargs):
    reader = nkclass.read(path, **kwargs)
    return sum(b.num_rows for b in reader), reader


def nfdump_row(**fields: bytes) -> bytes:
    """Line 6 of the nfdump fixture with some fields replaced."""
    parts = NFDUMP[5].split(b",")
    for name, value in fields.items():
        parts[NFDUMP_FIELDS[name]] = value
    return b",".join(parts)


def with_line(lines: list[bytes], index: int, text: bytes) -> bytes:
    return b"".join([*lines[:index], text, *lines[index + 1:]])


def zeek_json(old: bytes, new: bytes) -> bytes:
    assert old in ZEEK_JSON[1]
    return with_line(ZEEK_JSON, 1, ZEEK_JSON[1].replace(old, new))


CASES = {
    # name: (file suffix, content, bad line, message fragment, lines skipped)
    "nfdump counter of 2**64": (
        ".csv", with_line(NFDUMP, 5, nfdump_row(ibyt=b"18446744073709551616")), 6,
        "column 'ibyt': value '18446744073709551616', outside 0..18446744073709551615", 1),
    "nfdump ibyt + obyt past 2**64": (
        ".csv", with_line(NFDUMP, 5, nfdump_row(ibyt=b"18446744073709551615", obyt=b"5")), 6,
        "sums to 18446744073709551620, past the counter limit", 1),
    "nfdump non-UTF-8 address": (
        ".csv", with_line(NFDUMP, 5, nfdump_row(sa=b"10.0.\xff.1")), 6, "invalid UTF8", 1),
    "nfdump quoted newline": (
        ".csv", with_line(NFDUMP, 5, nfdump_row(sa=b'"10.0.2.15\n10.0.2.16"')), 6,
        "expected 48 columns, got 4", 2),
    "nfdump 20 MB field": (
        ".csv", with_line(NFDUMP, 5, nfdump_row(sa=b"1" * 20_000_000)), 6,
        f"line longer than {MAX_LINE_BYTES} bytes", 1),
    "nfdump port 443.7": (
        ".csv", with_line(NFDUMP, 5, nfdump_row(dp=b"443.7")), 6,
        "column 'dp': value '443.7', expected a non-negative integer", 1),
    "nfdump end before start": (
        ".csv", with_line(NFDUMP, 5, nfdump_row(te=b"2018-09-11 16:41:53")), 6,
        "before ts_start", 1),
    "nfdump address with a NUL": (
        ".csv", with_line(NFDUMP, 5, nfdump_row(sa=b"::ffff:175.45.176.9\x00junk")), 6,
        "expected an IPv4 or IPv6 address", 1),
    "zeek json integer of 2**63": (
        ".json", zeek_json(b'"orig_pkts":1,', b'"orig_pkts":9223372036854775808,'), 2,
        "column 'orig_pkts'", 1),
    "zeek json ts NaN": (".json", zeek_json(b'"ts":1536684114.34489', b'"ts":NaN'), 2,
                         "column 'ts': value nan", 1),
    "zeek json ts inf": (".json", zeek_json(b'"ts":1536684114.34489', b'"ts":Infinity'), 2,
                         "column 'ts': value inf", 1),
    "zeek json ts 1e20": (".json", zeek_json(b'"ts":1536684114.34489', b'"ts":1e20'), 2,
                          "column 'ts': value 1e+20", 1),
    "zeek json infinite duration": (
        ".json", zeek_json(b'"duration":0.010032', b'"duration":Infinity'), 2,
        "column 'duration': value inf", 1),
    "zeek json negative duration": (
        ".json", zeek_json(b'"duration":0.010032', b'"duration":-5'), 2,
        "column 'duration': value -5", 1),
    "zeek json non-UTF-8 address": (
        ".json", zeek_json(b'"10.0.2.15"', b'"10.0.\xff.15"'), 2, "expected UTF-8 text", 1),
    "zeek json escaped NUL in an address": (
        ".json", zeek_json(b'"10.0.2.15"', b'"10.0.2.15\\u0000junk"'), 2,
        "expected an IPv4 or IPv6 address", 1),
    "json nested 1,000 deep": (
        ".json", with_line(ZEEK_JSON, 1, b'{"a":' * 1000 + b"1" + b"}" * 1000 + b"\n"), 2,
        f"nested deeper than {MAX_DEPTH} levels", 1),
    "json nested 20,000 deep": (
        ".json", with_line(ZEEK_JSON, 1, b'{"a":' * 20_000 + b"1" + b"}" * 20_000 + b"\n"), 2,
        f"nested deeper than {MAX_DEPTH} levels", 1),
    "json brackets left open across lines": (
        ".json", with_line(ZEEK_JSON, 1, b"[\n" * 20_000), 2,
        "not one JSON value", 20_000),
    "pmacct two records run together on one line": (
        ".jsonl", with_line(PMACCT, 1, PMACCT[1].rstrip(b"\n") + b" " + PMACCT[2]), 2,
        "more than one JSON value on the line", 1),
    "goflow2 bytes of 2**64": (
        ".jsonl", with_line(GOFLOW2, 1, GOFLOW2[1].replace(b'"bytes":143',
                                                           b'"bytes":18446744073709551616')),
        2, "column 'bytes'", 1),
    "goflow2 bytes past 2**64 once sampled": (
        ".jsonl", with_line(GOFLOW2, 1, GOFLOW2[1].replace(b'"bytes":143',
                                                           b'"bytes":9223372036854775807')),
        2, "sampled at 1:1000, past the counter limit", 1),
    "zeek tsv ts nan": (".log", with_line(ZEEK_TSV, 9, ZEEK_TSV[9].replace(
        b"1536684114.344890", b"nan")), 10, "column 'ts'", 1),
    "zeek tsv infinite duration": (".log", with_line(ZEEK_TSV, 9, ZEEK_TSV[9].replace(
        b"0.010032", b"inf")), 10, "column 'duration'", 1),
    "pmacct timestamp_end of 0": (
        ".jsonl", with_line(PMACCT, 1, PMACCT[1].replace(
            b'"timestamp_end": "0000-00-00 00:00:00.000000"', b'"timestamp_end": 0').replace(
            b'"timestamp_start": "2018-09-11 16:41:54.068017"', b'"timestamp_start": 1536684114')),
        2, "before ts_start", 1),
    "pmacct port 443.7": (".jsonl", with_line(PMACCT, 1, PMACCT[1].replace(
        b'"port_src": 33548', b'"port_src": 443.7')), 2,
        "column 'port_src': value 443.7, expected a non-negative integer", 1),
    "pmacct port as text 443.7": (".jsonl", with_line(PMACCT, 1, PMACCT[1].replace(
        b'"port_src": 33548', b'"port_src": "443.7"')), 2, "column 'port_src'", 1),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_value_names_file_and_line_or_is_skipped_and_counted(tmp_path, case):
    suffix, content, line, message, skipped = CASES[case]
    path = tmp_path / f"input{suffix}"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_all(path)
    assert info.value.path == str(path) and info.value.line == line, str(info.value)
    assert message in str(info.value)
    _, reader = read_all(path, errors="skip")
    assert reader.stats.skipped == skipped
    assert sum(reader.stats.skip_reasons.values()) == skipped


def test_skipping_keeps_every_good_row(tmp_path):
    path = tmp_path / "flows.csv"
    path.write_bytes(CASES["nfdump counter of 2**64"][1])
    rows, reader = read_all(path, errors="skip")
    clean, _ = read_all(FLOWS / "nfdump-monero.csv")
    assert rows == clean - 1 == reader.stats.records


def test_icmp_type_code_is_port_zero_only_on_icmp_rows(tmp_path):
    icmp = nfdump_row(dp=b"8.0").replace(b",UDP,", b",ICMP,")
    path = tmp_path / "icmp.csv"
    path.write_bytes(with_line(NFDUMP, 5, icmp))
    table = pa.Table.from_batches(list(nkclass.read(path)))
    assert table.column("dst_port")[4].as_py() == 0 and table.column("protocol")[4].as_py() == 1
    path.write_bytes(with_line(NFDUMP, 5, nfdump_row(dp=b"8.0")))  # UDP
    with pytest.raises(InputError, match="column 'dp'"):
        read_all(path)


def test_utf8_byte_order_mark_before_the_nfdump_header_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + b"".join(NFDUMP))
    assert read_all(path)[0] == read_all(FLOWS / "nfdump-monero.csv")[0] == 54


@pytest.mark.parametrize(
    ("name", "index"),
    [("nfdump-monero.csv", 5), ("zeek-conn.log", 9), ("zeek-conn.json", 1), ("goflow2.jsonl", 1),
     ("pmacct-monero.jsonl", 1)],
)
def test_every_text_reader_limits_line_length(tmp_path, name, index):
    lines = (FLOWS / name).read_bytes().splitlines(keepends=True)
    long = b"x" * (MAX_LINE_BYTES + 1) + b"\n"
    path = tmp_path / name
    path.write_bytes(with_line(lines, index, long))
    with pytest.raises(InputError, match="line longer than") as info:
        read_all(path)
    assert info.value.line == index + 1
    rows, reader = read_all(path, errors="skip")
    assert reader.stats.skipped == 1
    # a long last line without a newline
    content = NO_SUMMARY if name.startswith("nfdump") else b"".join(lines)
    path.write_bytes(content + b"y" * (3 * MAX_LINE_BYTES))
    rows, reader = read_all(path, errors="skip")
    assert reader.stats.skipped == 1 and rows == read_all(FLOWS / name)[0]


@pytest.mark.parametrize("block_bytes", [1, 7, 64, 1000])
def test_line_blocks_cut_whole_lines_and_drop_long_ones_across_reads(block_bytes):
    lines = [b"a" * n for n in (3, 150, 0, 20, 400, 5, 101, 100)]
    data = b"\xef\xbb\xbf" + b"\n".join(lines)  # no newline at the end
    stats = ReadStats()
    seen = {}
    for block in line_blocks(io.BytesIO(data), Problems("mem", "skip", stats), block_bytes, 100):
        assert block.data.endswith(b"\n") or block.data == lines[-1]
        for i, text in enumerate(block.data.removesuffix(b"\n").split(b"\n")):
            seen[block.first_line + i] = text
    assert stats.skipped == 3
    # every line at its number; long ones blanked or left out
    assert {n: t for n, t in seen.items() if t} == {
        n: t for n, t in enumerate(lines, 1) if t and len(t) <= 100}
    with pytest.raises(InputError) as info:
        list(line_blocks(io.BytesIO(data), Problems("mem", "raise", ReadStats()), block_bytes, 100))
    assert info.value.line == 2


def test_bad_line_numbers_stay_right_after_blanked_lines(tmp_path):
    lines = list(ZEEK_JSON)
    lines[1] = b"[" * 100 + b"\n"  # too deep: blanked before parsing
    lines[3] = b'{"ts":1,"id.orig_h":"10.0.2.999"}\n'
    path = tmp_path / "conn.json"
    path.write_bytes(b"".join(lines))
    with pytest.raises(InputError) as info:
        read_all(path)
    assert info.value.line == 2
    path.write_bytes(b"".join(lines[:1] + lines[2:] + lines[1:2]))  # the deep line last
    with pytest.raises(InputError) as info:
        read_all(path)
    assert info.value.line == 3 and "10.0.2.999" in str(info.value)
    rows, reader = read_all(path, errors="skip")
    assert reader.stats.skipped == 2 and rows == 3


def test_a_bad_last_line_after_many_blank_ones_is_found(tmp_path):
    path = tmp_path / "conn.json"
    path.write_bytes(b"".join(ZEEK_JSON) + b"\n" * 40 + b'{"ts": "x' + b"y" * 100_000 + b'"}')
    with pytest.raises(InputError) as info:
        read_all(path)
    assert info.value.line == len(ZEEK_JSON) + 41
    rows, reader = read_all(path, errors="skip")
    assert (rows, reader.stats.skipped) == (5, 1)


def data_lines(name: str, content: bytes) -> int:
    """Records a text fixture holds: non-blank lines that are not headers,
    comments or nfdump's Summary."""
    lines = [line for line in content.split(b"\n") if line.strip()]
    if name.startswith("nfdump"):
        return len(lines) - 1  # the header
    if name.endswith(".log"):
        return sum(not line.startswith(b"#") for line in lines)
    return len(lines)


FORMAT_OF = {"nfdump-monero.csv": "nfdump-csv", "zeek-conn.log": "zeek-tsv",
             "zeek-conn.json": "zeek-json", "goflow2.jsonl": "goflow2-json",
             "pmacct-monero.jsonl": "pmacct-json"}
NO_SUMMARY = b"".join(NFDUMP[: NFDUMP.index(b"Summary\n")]) if b"Summary\n" in NFDUMP else b""


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    name=st.sampled_from(["nfdump-monero.csv", "zeek-conn.log", "zeek-conn.json",
                          "goflow2.jsonl", "pmacct-monero.jsonl"]),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 4),
                             st.binary(min_size=0, max_size=6)), min_size=1, max_size=4),
)
# A deleted newline that ran two records together: read as two rows of one line.
@example(name="pmacct-monero.jsonl",
         edits=[(0, 1, b""), (0, 4, b""), (170136, 2, b"\x00" * 6), (131073, 1, b"")])
def test_mangled_text_input_is_read_or_refused_and_every_line_is_counted(tmp_path_factory, name,
                                                                         edits):
    """Random byte edits of data lines: the reader raises nothing but
    InputError, and with errors="skip" rows + skipped = the data lines."""
    content = NO_SUMMARY if name.startswith("nfdump") else (FLOWS / name).read_bytes()
    header_end = content.index(b"\n") + 1 if name.startswith("nfdump") else 0
    if name.endswith(".log"):
        header_end = content.index(b"\n", content.index(b"#types")) + 1
    body = bytearray(content[header_end:])
    for at, cut, insert in edits:
        at = 1 + at % (len(body) - 1)  # the first byte stays: no compression magic
        body[at: at + cut] = insert
    body = bytes(body)
    if re.search(rb"(^|\n)(#|Summary)", body):
        return  # a new header or trailer, not a record
    mangled = content[:header_end] + body
    path = tmp_path_factory.mktemp("mangled") / name
    path.write_bytes(mangled)
    fmt = FORMAT_OF[name]
    try:
        read_all(path, format=fmt)
    except InputError:
        pass
    rows, reader = read_all(path, format=fmt, errors="skip")
    assert rows + reader.stats.skipped == data_lines(name, mangled)


def test_a_bad_row_of_a_parquet_file_is_named_by_row_or_skipped(tmp_path):
    flows = pa.Table.from_batches(list(nkclass.read(FLOWS / "zeek-conn.log")))
    src = flows.column("src_ip").to_pylist()
    text = ["175.45.176.9", "10.0.0.1", "::ffff:175.45.176.9\x00junk", "10.0.0.3", "10.0.0.4"]
    assert len(src) == len(text)
    table = flows.set_column(flows.column_names.index("src_ip"), "src_ip", pa.array(text))
    end = table.column("ts_end").cast(pa.int64()).to_numpy().copy()
    end[4] = 0  # ends before it starts
    table = table.set_column(table.column_names.index("ts_end"), "ts_end",
                             pa.array(end).cast(flows.schema.field("ts_end").type))
    path = tmp_path / "flows.parquet"
    pa.parquet.write_table(table, path)
    with pytest.raises(InputError, match=r"flows\.parquet: row 2: column 'src_ip'"):
        read_all(path)
    rows, reader = read_all(path, errors="skip", batch_size=2)
    assert (rows, reader.stats.skipped) == (3, 2)
    assert set(reader.stats.skip_reasons) == {"column 'src_ip'", "column 'ts_end'"}
