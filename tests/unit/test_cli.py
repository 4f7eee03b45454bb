"""The nkclass command: exit codes and output."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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
