"""``nkclass classify``: usage errors before reading, outputs that never
replace an input, and a last line where rows in = rows out + skipped."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pyarrow as pa
import pytest

import nkclass
from nkclass.cli import main

DATA = Path(__file__).parent.parent / "data"
FLOWS = DATA / "flows"
SUMMARY = re.compile(r"^nkclass: ([\d,]+) rows in, ([\d,]+) rows out.*, ([\d,]+) skipped")


def last_line_counts(err: str) -> tuple[int, int, int]:
    match = SUMMARY.match(err.strip().splitlines()[-1])
    assert match, err
    rows_in, rows_out, skipped = (int(g.replace(",", "")) for g in match.groups())
    return rows_in, rows_out, skipped


def output_rows(path: Path) -> int:
    return sum(b.num_rows for b in nkclass.read(path))


def usage_error(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_an_output_format_nkclass_cannot_tell_is_a_usage_error_before_reading(tmp_path, capsys):
    usage_error(["classify", str(tmp_path / "not-there.pcap"), "-o", str(tmp_path / "out.txt")])
    err = capsys.readouterr().err
    assert "cannot tell the output format" in err and "--output-format" in err
    assert list(tmp_path.iterdir()) == []
    assert main(["classify", str(FLOWS / "zeek-conn.log"), "-o", str(tmp_path / "out.txt"),
                 "--output-format", "csv"]) == 0


@pytest.mark.parametrize("spelling", ["same", "dotted", "hard link", "symlink"])
def test_an_output_that_names_an_input_is_refused_before_reading(tmp_path, capsys, spelling):
    source = tmp_path / "conn.log"
    source.write_bytes((FLOWS / "zeek-conn.log").read_bytes())
    out = {"same": source, "dotted": tmp_path / "." / "conn.log",
           "hard link": tmp_path / "link.csv", "symlink": tmp_path / "sym.csv"}[spelling]
    if spelling == "hard link":
        os.link(source, out)
    elif spelling == "symlink":
        out.symlink_to(source)
    usage_error(["classify", str(tmp_path / "*.log"), "-o", str(out), "--output-format", "csv"])
    assert "is also an input" in capsys.readouterr().err
    assert source.read_bytes() == (FLOWS / "zeek-conn.log").read_bytes()


def test_a_missing_output_folder_is_one_clear_line(tmp_path, capsys):
    code = main(["classify", str(FLOWS / "zeek-conn.log"), "-o", str(tmp_path / "no" / "o.csv")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"nkclass: error: {tmp_path / 'no' / 'o.csv'}: the folder {tmp_path / 'no'} does not exist"]


def test_batch_size_must_be_positive(tmp_path):
    usage_error(["classify", str(FLOWS / "zeek-conn.log"), "--batch-size", "0", "-o",
                 str(tmp_path / "o.csv")])


def corrupted(tmp_path: Path, name: str, lines: dict[int, bytes]) -> Path:
    content = (FLOWS / name).read_bytes().splitlines(keepends=True)
    for index, text in lines.items():
        content[index] = text
    path = tmp_path / name
    path.write_bytes(b"".join(content))
    return path


def test_rows_in_are_rows_out_plus_skipped(tmp_path, capsys):
    inputs = [
        corrupted(tmp_path, "nfdump-monero.csv", {3: b"garbage\n", 9: b"2018,x\n"}),
        corrupted(tmp_path, "zeek-conn.json", {2: b'{"ts": NaN}\n'}),
        corrupted(tmp_path, "goflow2.jsonl", {}),
        DATA / "pcap" / "mining-monero-stratum.pcap",
    ]
    out = tmp_path / "out.parquet"
    args = ["classify", *map(str, inputs), "-o", str(out), "--batch-size", "7"]
    assert main(args) == 1  # the first bad line stops the run
    assert not out.exists()
    capsys.readouterr()
    assert main([*args, "--skip-bad"]) == 0
    rows_in, rows_out, skipped = last_line_counts(capsys.readouterr().err)
    assert skipped == 3
    assert rows_out == output_rows(out) == 54 - 2 + 5 - 1 + 3 + 19
    assert rows_in == rows_out + skipped


@pytest.mark.parametrize("name", ["nfdump-monero.csv", "zeek-conn.log", "zeek-conn.json",
                                  "goflow2.jsonl", "pmacct-monero.jsonl"])
def test_every_line_of_a_clean_input_is_a_row_out(tmp_path, capsys, name):
    out = tmp_path / "out.jsonl"
    assert main(["classify", str(FLOWS / name), "-o", str(out), "--skip-bad"]) == 0
    rows_in, rows_out, skipped = last_line_counts(capsys.readouterr().err)
    assert (rows_in, rows_out, skipped) == (rows_out, output_rows(out), 0)


def test_ctrl_c_leaves_the_old_output_in_place(tmp_path, monkeypatch):
    out = tmp_path / "out.parquet"
    out.write_bytes(b"the previous output")
    calls = []
    classify = nkclass.Classifier.classify

    def interrupted(self, batch, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return classify(self, batch, *args, **kwargs)

    monkeypatch.setattr(nkclass.Classifier, "classify", interrupted)
    assert main(["classify", str(DATA / "pcap" / "mining-monero-stratum.pcap"),
                 "--batch-size", "2", "-o", str(out)]) == 130
    assert out.read_bytes() == b"the previous output"
    assert os.listdir(tmp_path) == ["out.parquet"]


def test_classified_output_is_input_to_report(tmp_path, capsys):
    out = tmp_path / "labelled.csv"
    assert main(["classify", str(FLOWS / "goflow2.jsonl"), "-o", str(out)]) == 0
    capsys.readouterr()
    assert main(["report", str(out), "--format", "json"]) == 0
    assert '"activity": "mining_suspect"' in capsys.readouterr().out.replace('":"', '": "')
    table = pa.Table.from_batches(list(nkclass.read(out)))
    assert table.column("activity").to_pylist()[0] == "mining_suspect"
