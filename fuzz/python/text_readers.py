#!/usr/bin/env python3
"""Fuzzes the flow readers (atheris, coverage-guided over nkclass.flows):
any bytes read as any text format, or with the format sniffed from the
bytes, must give batches or raise InputError, never another exception or
a crash.

Input: byte 0 picks the format (low 3 bits: nfdump-csv, zeek-tsv,
zeek-json, pmacct-json, goflow2-json, or sniffed), the errors mode (bit 3:
'skip' when set) and a small batch size (bits 4-5); the rest is the file.

    python fuzz/python/text_readers.py [libFuzzer flags] [CORPUS_DIR...]

(NKCLASS_FUZZ_CATALOGUE=DIR lists every distinct failure: see common.py.)
"""

from __future__ import annotations

import os
import sys
import tempfile

import atheris

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import run

with atheris.instrument_imports(include=["nkclass.flows"]):
    import nkclass
    from nkclass.errors import InputError

FORMATS = ("nfdump-csv", "zeek-tsv", "zeek-json", "pmacct-json", "goflow2-json", None)
FOLDER = tempfile.mkdtemp(prefix="nkclass-fuzz-readers-")
PATH = os.path.join(FOLDER, "flows.txt")


def read_all(data: bytes) -> None:
    head, body = data[0], data[1:]
    fmt = FORMATS[(head & 7) % len(FORMATS)]
    errors = "skip" if head & 8 else "raise"
    batch_size = (1, 7, 1000, 65536)[(head >> 4) & 3]
    with open(PATH, "wb") as f:
        f.write(body)
    for batch in nkclass.read(PATH, format=fmt, errors=errors, batch_size=batch_size):
        assert batch.num_rows <= batch_size


def test_one_input(data: bytes) -> None:
    if data:
        run(read_all, data, InputError)


def main() -> None:
    sys.setrecursionlimit(1000)  # the default: what users run with
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
