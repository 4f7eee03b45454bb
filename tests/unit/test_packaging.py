"""Packaging: the licence, what the sdist carries, the extras, and importing
nkclass from an unbuilt source tree (run in subprocesses)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import nkclass
from nkclass._source_tree import is_built

ROOT = Path(__file__).resolve().parents[2]
BENCH_ONLY = {"pytricia", "ahocorasick", "hyperscan", "nfstream", "pytest_benchmark"}


def test_licence_is_bsd_3_clause_of_the_nkclass_authors():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "the nkclass authors" in text.splitlines()[2]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "BSD-3-Clause"


def test_sdist_manifest_carries_tests_data_licences_and_benchmarks(monkeypatch):
    from setuptools.command.egg_info import FileList

    monkeypatch.chdir(ROOT)  # the manifest's patterns are relative to the project root
    files = FileList()
    files.findall()
    for line in (ROOT / "MANIFEST.in").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            files.process_template_line(line)
    chosen = set(files.files)
    tracked = subprocess.run(
        ["git", "ls-files", "tests", "benchmarks", "LICENSE"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if tracked.returncode != 0:
        pytest.skip("not a git checkout")
    assert set(tracked.stdout.split()) <= chosen
    assert not any(name.endswith((".so", ".pyc")) for name in chosen)


def test_benchmark_baselines_are_their_own_extra_and_tests_do_not_import_them():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def names(extra: str) -> set[str]:
        return {req.split(">")[0].split("=")[0].strip().replace("-", "_") for req in extras[extra]}

    assert {"pytricia", "pyahocorasick", "hyperscan", "nfstream", "pytest_benchmark"} <= names(
        "bench"
    )
    assert not names("test") & (BENCH_ONLY | {"pyahocorasick"})
    for path in (ROOT / "tests").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = (
                    [a.name for a in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                )
                assert not {m.split(".")[0] for m in modules} & BENCH_ONLY, path


@pytest.fixture(scope="module")
def unbuilt_tree(tmp_path_factory):
    """A copy of the package without its native modules, as a checkout has."""
    where = tmp_path_factory.mktemp("checkout")
    shutil.copytree(
        Path(nkclass.__file__).parent,
        where / "nkclass",
        ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"),
    )
    assert not is_built(where / "nkclass")
    return where


def test_import_from_an_unbuilt_checkout_loads_the_built_package(unbuilt_tree):
    built = Path(nkclass.__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": str(built.parent)}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import nkclass, nkclass.report.top as t; print(nkclass.__file__); print(t.__file__);"
            "print(nkclass.Classifier().classify({'src_ip': ['175.45.176.9'], "
            "'dst_ip': ['8.8.8.8'], 'src_port': [1], 'dst_port': [53], 'protocol': [17]})"
            ".names('path'))",
        ],
        cwd=unbuilt_tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    init, submodule, paths = done.stdout.splitlines()
    assert Path(init).resolve().parent == built
    assert Path(submodule).resolve().is_relative_to(built)
    assert paths == "['kp_range']"


def test_import_from_an_unbuilt_checkout_with_nothing_installed_says_what_to_run(unbuilt_tree):
    done = subprocess.run(
        [sys.executable, "-S", "-E", "-c", "import nkclass"],
        cwd=unbuilt_tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: nkclass is being imported from its source tree")
    assert "pip install -e ." in last and "circular import" not in done.stderr
