"""Checks the labels an example program printed against the Python API.

    PROGRAM RULES.nkc | python example_labels.py RULES.nkc

The program (examples/rust) prints a '#' header naming its columns, then one
tab-separated line per flow: its columns (ts_start, src_ip, dst_ip,
src_port, dst_port, protocol) and its labels. The same flows are labelled
here by the ruleset loaded as nkclass.Classifier.load does; every label
must match. Exits 1 naming the first flow and column that differ.
"""
import sys

import numpy as np

import nkclass

FLOW = {"ts_start": np.int64, "src_ip": None, "dst_ip": None, "src_port": np.uint16,
        "dst_port": np.uint16, "protocol": np.uint8}


def main(rules: str) -> int:
    lines = sys.stdin.read().splitlines()
    if not lines or not lines[0].startswith("#"):
        print("example_labels: no header line in the program's output", file=sys.stderr)
        return 1
    names = lines[0][1:].split("\t")
    rows = [line.split("\t") for line in lines[1:]]
    if not rows or any(len(row) != len(names) for row in rows):
        print(f"example_labels: expected flows of {len(names)} columns", file=sys.stderr)
        return 1
    values = {name: [row[i] for row in rows] for i, name in enumerate(names)}
    batch = {name: values[name] if dtype is None else np.array(values[name]).astype(dtype)
             for name, dtype in FLOW.items()}
    labelled = nkclass.Classifier.load(rules).classify(batch).to_arrow()
    for name in names:
        if name in FLOW:
            continue
        column = (labelled.column(name).to_pylist() if name in labelled.column_names
                  else [0 if name == "peer_as" else ""] * len(rows))
        expected = ["" if v is None else str(v) for v in column]
        for i, (got, want) in enumerate(zip(values[name], expected, strict=True)):
            if got != want:
                print(f"example_labels: flow {i} ({values['src_ip'][i]} -> "
                      f"{values['dst_ip'][i]}): {name} is {got!r}, the Python API says "
                      f"{want!r}", file=sys.stderr)
                return 1
    print(f"example labels equal the Python API's: {len(rows)} flows, "
          f"{len(names) - len(FLOW)} labels each")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
