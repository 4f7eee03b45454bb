"""The nkclass command: exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import nkclass
from nkclass.cli import main


def test_rules_check_accepts_a_valid_file(tmp_path, capsys):
    path = tmp_path / "ok.toml"
    path.write_text('[[watched]]\nname = "lab"\nprefixes = ["192.0.2.0/24"]\n')
    assert main(["rules", "check", str(path)]) == 0
    assert "ok:" in capsys.readouterr().out


def test_rules_check_reports_file_and_line_and_exits_1(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text('[[watched]]\nname = "lab"\nprefixes = ["192.0.2.1/24"]\n')
    assert main(["rules", "check", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:3:" in err and "host bits set" in err


def test_rules_show_json_lists_the_default_paths(capsys):
    assert main(["rules", "show", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [w["name"] for w in data["watched"]] == ["kp_range", "unicom", "satgate"]


def test_rules_show_text(capsys):
    assert main(["rules", "show"]) == 0
    out = capsys.readouterr().out
    assert "175.45.176.0/22" in out and "port rules:" in out


def test_usage_error_exits_2():
    with pytest.raises(SystemExit) as info:
        main(["rules", "frobnicate"])
    assert info.value.code == 2


def test_bench_prints_a_rate(capsys):
    assert main(["bench", "--flows", "20000", "--repeat", "1"]) == 0
    assert "M flows/s" in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "nkclass", "rules", "show", "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["name"] == "nkclass-default"


# ------------------------------------------------------------ conventions

MISSING = "missing-input.parquet"  # reading it would fail with exit code 1


def test_version_names_the_package_version(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"nkclass {nkclass.__version__}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report", MISSING, "--activity", "minning"], "did you mean 'mining'?"),
        (["report", MISSING, "--activity", "mining,,tor"], "empty activity"),
        (["report", MISSING, "--path", "kp_rnage"], "did you mean 'kp_range'?"),
        (["top", MISSING, "--path", "satgte,unicom"], "did you mean 'satgate'?"),
        (["trend", MISSING, "--split", "2019-13-01"], "expected a date such as 2019-05-01"),
        (["trend", MISSING, "--split", "2019-05-01", "--activity", "tro"], "did you mean 'tor'?"),
        (["trend", MISSING, "--split", "2019-05-01", "--start", "2019-06-01"], "not before"),
        (["trend", MISSING, "--split", "2019-05-01", "--end", "2019-04-01"], "not after"),
        (["report", MISSING, "--start", "2019-05-01", "--end", "2019-01-01"], "must come after"),
        (["top", MISSING, "--start", "yesterday"], "expected a date"),
        (["top", MISSING, "-n", "0"], "must be at least 1"),
        (["report", MISSING, "--rows", "5", "--format", "json"], "only with --format table"),
        (["report", MISSING, "--rows", "some"], "expected a whole number"),
        (["report", MISSING, "--split", "2019-05-01"], "needs --plots"),
        (["report", MISSING, "--plots", "p", "--trend", "mining"], "needs --split"),
        (["report", MISSING, "--min-flows", "-1"], "must be at least 0"),
        (["report", MISSING, "--batch-size", "0"], "must be at least 1"),
        (["trend", MISSING, "--split", "2019-05-01", "--movers", "-2"], "must be at least 0"),
        (["trend", MISSING], "give --split WHEN to compare around a date, or --detect"),
        (["trend", MISSING, "--detect", "--split", "2019-05-01"], "finds the dates itself"),
        (["trend", MISSING, "--detect", "--bucket", "week"], "searches daily series"),
        (["trend", MISSING, "--detect", "--activity", "tor", "--combined"], "two or more"),
        (["trend", MISSING, "--split", "2019-05-01", "--format", "json"], "only with --detect"),
        (["trend", MISSING, "--split", "2019-05-01", "--plots", "p"], "only with --detect"),
        (
            ["trend", MISSING, "--detect", "--start", "2019-05-01", "--end", "2019-01-01"],
            "not after",
        ),
        (["pivot", MISSING, "--utc-offset", "15"], "must be in -12..14"),
        (["pivot", MISSING, "-n", "0"], "must be at least 1"),
        (["demo", "--flows", "5"], "must be at least 10000"),
        (["bench", "--flows", "0"], "must be at least 1"),
        (["synth", "--flows", "0", "-o", "x.parquet"], "must be at least 1"),
        (["synth", "--start", "2019-13-01", "-o", "x.parquet"], "expected a date"),
        (["synth", "--start", "2019-05-01", "--end", "2019-01-01", "-o", "x.parquet"], "not after"),
    ],
)
def test_usage_errors_exit_2_before_any_input_is_read(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "usage: nkclass" in err


def test_plots_folder_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    taken = tmp_path / "charts"
    taken.write_text("")
    with pytest.raises(SystemExit) as info:
        main(["report", MISSING, "--plots", str(taken)])
    assert info.value.code == 2 and "is not a folder" in capsys.readouterr().err


def test_usage_mistake_in_a_subprocess_has_no_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "nkclass", "report", MISSING, "--activity", "minning"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr and "did you mean 'mining'?" in done.stderr


def test_unwritable_output_is_an_error_with_the_path(tmp_path, capsys):
    target = tmp_path / "no-such-folder" / "flows.parquet"
    assert main(["synth", "--flows", "100", "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("nkclass: error:") and str(target) in err


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "flows.parquet"
    assert main(["synth", "--flows", "20000", "-o", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def labelled(synthetic):
    """The synthetic flows with their labels, as pandas (the reference; the
    commands learn names across batches as one pass over the table does)."""
    table = pa.Table.from_batches(list(nkclass.read(synthetic)))
    labels = nkclass.Classifier().classify(table, names=nkclass.NameCache()).to_arrow()
    frame = labels.select([c for c in labels.column_names if c != "peer_org"]).to_pandas()
    for label in ("path", "side", "activity", "service"):
        frame[label] = frame[label].astype(str)
    frame["ts"] = table.column("ts_start").cast(pa.int64()).to_numpy()
    return frame


def _json_rows(capsys, argv) -> pd.DataFrame:
    assert main([*argv, "--format", "json"]) == 0
    return pd.DataFrame(json.loads(capsys.readouterr().out)["rows"])


def test_report_default_is_a_short_summary(synthetic, labelled, capsys):
    assert main(["report", str(synthetic)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"{len(labelled):,} flows from 2017-01-01")
    watched = int((labelled.path != "none").sum())
    assert out[1].startswith(f"{watched:,} flows")
    assert "top activities on the watched paths:" in out
    assert len(out) < 30


def test_report_rows_prints_the_bucket_table(synthetic, labelled, capsys):
    assert main(["report", str(synthetic), "--bucket", "month", "--rows", "all"]) == 0
    out = capsys.readouterr().out.splitlines()
    header = out.index(next(line for line in out if line.startswith("bucket ")))
    watched = labelled[labelled.path != "none"]
    months = pd.to_datetime(watched.ts, unit="ms").dt.strftime("%Y-%m")
    assert len(out) - header - 2 == len(watched.groupby([months, watched.path, watched.activity]))
    assert main(["report", str(synthetic), "--rows", "4"]) == 0
    out = capsys.readouterr().out.splitlines()
    header = out.index(next(line for line in out if line.startswith("bucket ")))
    assert len(out) - header - 2 == 4


@pytest.mark.parametrize(
    "filters",
    [
        {"--start": "2018-03-01", "--end": "2018-09-15T12:00"},
        {"--path": "unicom,satgate"},
        {"--activity": "mining,tor,vpn"},
        {"--start": "2019-01-01", "--activity": "streaming", "--path": "kp_range"},
        {"--end": "2017-06-01T00:00:00+09:00"},  # an offset: 2017-05-31 15:00 UTC
    ],
)
def test_report_and_top_filters_match_pandas(synthetic, labelled, capsys, filters):
    argv = [x for pair in filters.items() for x in pair]
    keep = np.ones(len(labelled), bool)
    if "--start" in filters:
        keep &= labelled.ts >= nkclass.report.model.parse_time(filters["--start"])
    if "--end" in filters:
        keep &= labelled.ts < nkclass.report.model.parse_time(filters["--end"])
    if "--path" in filters:
        keep &= labelled.path.isin(filters["--path"].split(","))
    if "--activity" in filters:
        keep &= labelled.activity.isin(filters["--activity"].split(","))
    want = labelled[keep]
    rows = _json_rows(capsys, ["report", str(synthetic), "--bucket", "month", *argv])
    assert rows.flows.sum() == len(want)
    assert rows.groupby("activity").flows.sum().to_dict() == want.activity.value_counts().to_dict()
    assert main(["top", str(synthetic), "--by", "service", "-n", "3", *argv]) == 0
    out = capsys.readouterr().out.splitlines()
    counts = want[want.side != "none"].service.value_counts()
    assert [int(line.split()[1].replace(",", "")) for line in out[2:]] == counts.iloc[:3].tolist()


def test_report_says_when_the_filters_leave_nothing(synthetic, capsys):
    assert main(["report", str(synthetic), "--start", "2030-01-01"]) == 0
    assert capsys.readouterr().out.strip() == "no flows matched the filters"
    assert main(["report", str(synthetic), "--path", "none"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "no flow touched a watched network (kp_range, unicom, satgate)"


def test_path_names_come_from_the_rules_in_force(synthetic, tmp_path, capsys):
    rules = tmp_path / "lab.toml"
    rules.write_text('[[watched]]\nname = "lab"\nprefixes = ["192.0.2.0/24"]\n')
    assert main(["report", str(synthetic), "--rules", str(rules), "--path", "lab"]) == 0
    assert capsys.readouterr().out.strip() == "no flows matched the filters"


def test_top_peers_show_service_and_as(synthetic, capsys):
    assert main(["top", str(synthetic), "--by", "peer", "-n", "5"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["peer", "service", "AS", "organisation", "flows", "bytes"]
    assert any(line.split()[2].startswith("AS") for line in out[2:])


def test_trend_with_a_split_outside_the_data_fails_clearly(synthetic, capsys):
    assert main(["trend", str(synthetic), "--split", "2030-01-01"]) == 1
    assert "leaves one window empty" in capsys.readouterr().err


@pytest.fixture(scope="module")
def mining_step(tmp_path_factory):
    """Labelled flows of one watched miner: about 3 pool flows a day from
    2017-01-01, 40 a day from 2018-02-05 (day 400) on, for 600 days."""
    rng = np.random.default_rng(0)
    days = 17167 + np.arange(600)  # 2017-01-01
    day = np.repeat(days, rng.poisson(np.where(days < 17167 + 400, 3, 40)))
    n = len(day)
    ts = pa.array(day * 86_400_000 + rng.integers(0, 86_400_000, n)).cast(
        pa.timestamp("ms", tz="UTC")
    )
    batch = {
        "ts_start": ts,
        "ts_end": ts,
        "src_ip": np.full(n, 0xAF2DB009, np.uint32),
        "dst_ip": np.full(n, 0xC0000205, np.uint32),
        "src_port": rng.integers(1024, 65535, n).astype(np.uint16),
        "dst_port": np.full(n, 3333, np.uint16),
        "protocol": np.full(n, 6, np.uint8),
        "packets": np.full(n, 10, np.uint64),
        "bytes": np.full(n, 1000, np.uint64),
    }
    path = tmp_path_factory.mktemp("step") / "labelled.parquet"
    pq.write_table(nkclass.Classifier(asn=False).classify(batch).to_arrow(), path)
    return path


def test_trend_detect_json_lists_the_planted_step(mining_step, capsys):
    assert main(["trend", str(mining_step), "--detect", "--format", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)["changes"]
    assert [(c["date"], c["path"], c["activity"]) for c in changes] == [
        ("2018-02-05", "kp_range", "mining_suspect")
    ]
    assert changes[0]["ratio"] == pytest.approx(changes[0]["after"] / changes[0]["before"])
    assert 10 < changes[0]["ratio"] < 16 and changes[0]["confidence"] == "high"


def test_trend_detect_prints_changes_and_marks_them_on_charts(mining_step, tmp_path, capsys):
    charts = tmp_path / "charts"
    argv = ["trend", str(mining_step), "--detect", "--plots", str(charts)]
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "1 change in flows per day" in out
    row = out.splitlines()[-1].split()
    assert row[:3] == ["2018-02-05", "kp_range", "mining_suspect"] and row[-1] == "high"
    assert [p.name for p in charts.iterdir()] == ["changes_kp_range_mining_suspect.png"]
    assert "1 charts written" in err
    assert main(["trend", str(mining_step), "--detect", "--end", "2018-01-01"]) == 0
    assert "no change found in flows per day" in capsys.readouterr().out


def test_pivot_table_names_the_outside_host_sharing_the_watched_peers(tmp_path, capsys):
    watched, operator, decoy = "175.45.176.10", "203.0.113.7", "203.0.113.8"
    rows = [(watched, f"198.51.100.{i}") for i in range(1, 6)]
    rows += [(operator, f"198.51.100.{i}") for i in range(1, 4)]
    rows += [(decoy, "192.0.2.99")] + [(f"100.{i}.0.1", "192.0.2.99") for i in range(20)]
    n = len(rows)
    ts = pa.array(np.full(n, 1_546_300_800_000)).cast(pa.timestamp("ms", tz="UTC"))
    batch = {
        "ts_start": ts,
        "ts_end": ts,
        "src_ip": [r[0] for r in rows],
        "dst_ip": [r[1] for r in rows],
        "src_port": np.full(n, 40000, np.uint16),
        "dst_port": np.full(n, 443, np.uint16),
        "protocol": np.full(n, 6, np.uint8),
        "packets": np.full(n, 10, np.uint64),
        "bytes": np.full(n, 1000, np.uint64),
    }
    path = tmp_path / "labelled.parquet"
    pq.write_table(nkclass.Classifier(asn=False).classify(batch).to_arrow(), path)
    assert main(["pivot", str(path), "--no-asn"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:6] == ["host", "score", "peers", "mix", "hours", "shared"]
    assert [line.split()[0] for line in lines[2:]] == [operator]
    assert lines[2].split()[5] == "3"
