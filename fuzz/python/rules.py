#!/usr/bin/env python3
"""Fuzzes the ruleset parser (atheris, coverage-guided over the Python code
of nkclass.rules): any bytes given as a ruleset file must load or raise
RuleError, never another exception, and a ruleset that loads must compile.

    python fuzz/python/rules.py -dict=fuzz/python/rules.dict [libFuzzer flags] [CORPUS_DIR...]

(NKCLASS_FUZZ_CATALOGUE=DIR lists every distinct failure: see common.py.)
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run

with atheris.instrument_imports(include=["nkclass.rules"]):
    from nkclass.errors import RuleError
    from nkclass.rules import load_rules
    from nkclass.rules.compile import compile_rules

FOLDER = tempfile.mkdtemp(prefix="nkclass-fuzz-rules-")
RULESET = os.path.join(FOLDER, "fuzz.toml")
# A list file a fuzzed ruleset can name (prefix_file = "list.txt").
with open(os.path.join(FOLDER, "list.txt"), "w") as f:
    f.write("# relays\n198.51.100.0/24\n2001:db8:1::/48\n::ffff:203.0.113.0/120\n")


def load_and_compile(data: bytes) -> None:
    with open(RULESET, "wb") as f:
        f.write(data)
    compile_rules(load_rules(RULESET, defaults=False))


def test_one_input(data: bytes) -> None:
    run(load_and_compile, data, RuleError)


def main() -> None:
    sys.setrecursionlimit(1000)  # the default: what users run with
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
