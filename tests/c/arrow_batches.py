"""nk_classify_arrow on real record batches, against the Python API.

    python arrow_batches.py LIBNKCLASS.so RULES.nkc CAPTURE...

Each capture's flows (read_pcap) are exported across the Arrow C Data
Interface by pyarrow itself and labelled through libnkclass (ctypes); the
labels must equal those Classifier.classify gives the same batch. Each batch
also goes in as variants the C side must read alike: a slice (offsets in
the arrays), other integer and timestamp types, large_binary payloads,
IPv4 narrowed to uint32, null payloads and null tcp_flags. Malformed
batches (a text address column, a port out of range, a null port) must be
refused with a message naming the column and row.
"""
import ctypes
import sys

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import nkclass
from nkclass.flows.pcap import read_pcap

P = ctypes.c_void_p
LABELS = (("path", np.uint16), ("side", np.uint8), ("service", np.uint32),
          ("app", np.uint8), ("activity", np.uint8), ("evidence", np.uint16),
          ("confidence", np.uint8), ("peer_as", np.uint32), ("peer_org", np.uint32))


class NkLabels(ctypes.Structure):
    _fields_ = [(name, P) for name, _ in LABELS]


class ArrowSchema(ctypes.Structure):  # sizes only: pyarrow fills and releases them
    _fields_ = [("format", P), ("name", P), ("metadata", P), ("flags", ctypes.c_int64),
                ("n_children", ctypes.c_int64), ("children", P), ("dictionary", P),
                ("release", P), ("private_data", P)]


class ArrowArray(ctypes.Structure):
    _fields_ = [("length", ctypes.c_int64), ("null_count", ctypes.c_int64),
                ("offset", ctypes.c_int64), ("n_buffers", ctypes.c_int64),
                ("n_children", ctypes.c_int64), ("buffers", P), ("children", P),
                ("dictionary", P), ("release", P), ("private_data", P)]


RELEASE_SCHEMA = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowSchema))
RELEASE_ARRAY = ctypes.CFUNCTYPE(None, ctypes.POINTER(ArrowArray))


class Library:
    def __init__(self, path: str, rules: str) -> None:
        lib = self.lib = ctypes.CDLL(path)
        lib.nk_last_error.restype = ctypes.c_char_p
        lib.nk_ruleset_load.argtypes = [ctypes.c_char_p, ctypes.POINTER(P)]
        lib.nk_classifier_new.argtypes = [P, ctypes.POINTER(P)]
        lib.nk_classify_arrow.argtypes = [P, ctypes.POINTER(ArrowSchema),
                                          ctypes.POINTER(ArrowArray), P,
                                          ctypes.POINTER(NkLabels)]
        lib.nk_ruleset_org_name.argtypes = [P, ctypes.c_uint32]
        lib.nk_ruleset_org_name.restype = ctypes.c_char_p
        self.rules, self.clf = P(), P()
        self._ok(lib.nk_ruleset_load(rules.encode(), ctypes.byref(self.rules)))
        self._ok(lib.nk_classifier_new(self.rules, ctypes.byref(self.clf)))

    def _ok(self, status: int) -> None:
        if status != 0:
            raise RuntimeError(f"status {status}: {self.lib.nk_last_error().decode()}")

    def classify(self, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
        """Labels of `batch` (raises RuntimeError with the library's message)."""
        schema, array = ArrowSchema(), ArrowArray()
        batch._export_to_c(ctypes.addressof(array), ctypes.addressof(schema))
        out = {name: np.full(batch.num_rows, 0xEE, dtype) for name, dtype in LABELS}
        labels = NkLabels(*(out[name].ctypes.data for name, _ in LABELS))
        try:
            self._ok(self.lib.nk_classify_arrow(self.clf, ctypes.byref(schema),
                                                ctypes.byref(array), None,
                                                ctypes.byref(labels)))
        finally:  # the library borrows: the caller releases
            RELEASE_ARRAY(array.release)(ctypes.byref(array))
            RELEASE_SCHEMA(schema.release)(ctypes.byref(schema))
        return out

    def org_name(self, code: int) -> str:
        return self.lib.nk_ruleset_org_name(self.rules, code).decode()


def python_labels(clf: nkclass.Classifier, batch: pa.RecordBatch) -> dict[str, np.ndarray]:
    r = clf.classify(batch)
    zeros = np.zeros(len(r), np.uint32)  # the C side writes 0 without the AS stage
    as_stage = clf.as_attribution
    return {"path": r.path, "side": r.side, "service": r.service, "app": r.app,
            "activity": r.activity, "evidence": r.evidence, "confidence": r.confidence,
            "peer_as": r.peer_as if as_stage else zeros,
            "peer_org": r.peer_org_codes if as_stage else zeros}


def replace(batch: pa.RecordBatch, name: str, column: pa.Array) -> pa.RecordBatch:
    i = batch.schema.get_field_index(name)
    return batch.set_column(i, name, column)


def variants(batch: pa.RecordBatch):
    yield "as read", batch
    if batch.num_rows > 2:
        yield "sliced", batch.slice(1, batch.num_rows - 2)
    wide = batch
    for name, type_ in (("src_port", pa.int32()), ("dst_port", pa.int64()),
                        ("protocol", pa.int16()), ("packets", pa.int64()),
                        ("bytes", pa.uint32()), ("tcp_flags", pa.uint16())):
        wide = replace(wide, name, pc.cast(wide.column(name), type_))
    for name, unit in (("ts_start", "us"), ("ts_end", "ns")):
        wide = replace(wide, name, pc.cast(wide.column(name), pa.timestamp(unit, tz="UTC")))
    for name in ("src_payload", "dst_payload"):
        wide = replace(wide, name, pc.cast(wide.column(name), pa.large_binary()))
    yield "other types", wide
    src, dst = (np.frombuffer(batch.column(n).buffers()[1], np.uint8)
                .reshape(-1, 16)[batch.column(n).offset:][: batch.num_rows]
                for n in ("src_ip", "dst_ip"))
    mapped = bytes(10) + b"\xff\xff"
    if all(row[:12].tobytes() == mapped for row in (*src, *dst)):
        narrow = batch
        for name, rows in (("src_ip", src), ("dst_ip", dst)):
            v4 = rows[:, 12:].copy().view(">u4").ravel().astype(np.uint32)
            narrow = replace(narrow, name, pa.array(v4, pa.uint32()))
        yield "uint32 addresses", narrow
    every_other = pa.array(np.arange(batch.num_rows) % 2 == 0)
    nulls = replace(batch, "dst_payload", pc.if_else(every_other, pa.scalar(None, pa.binary()),
                                                     batch.column("dst_payload")))
    nulls = replace(nulls, "tcp_flags", pc.if_else(every_other, pa.scalar(None, pa.uint8()),
                                                   batch.column("tcp_flags")))
    yield "null payloads and flags", nulls


def refused(lib: Library, batch: pa.RecordBatch, needle: str) -> bool:
    try:
        lib.classify(batch)
    except RuntimeError as e:
        return needle in str(e)
    return False


def main(library: str, rules: str, captures: list[str]) -> int:
    lib = Library(library, rules)
    clf = nkclass.Classifier.load(rules)
    failures = 0
    for capture in captures:
        batch = pa.Table.from_batches(list(read_pcap(capture))).combine_chunks()
        batch = batch.to_batches()[0]
        for what, variant in variants(batch):
            got, want = lib.classify(variant), python_labels(clf, variant)
            for name, _ in LABELS:
                if not np.array_equal(got[name], want[name]):
                    print(f"{capture} ({what}): {name} differs:\n  C:      {got[name]}\n"
                          f"  python: {want[name]}")
                    failures += 1
            orgs = clf.classify(variant).peer_org_names if clf.as_attribution else None
            if orgs is not None and [lib.org_name(int(c)) for c in got["peer_org"]] != [
                    orgs[c] for c in want["peer_org"]]:
                print(f"{capture} ({what}): peer_org names differ")
                failures += 1
        bad = {
            "column 'src_ip'": replace(batch, "src_ip", pa.array(["10.0.0.1"] * batch.num_rows)),
            "column 'dst_port': row 0 is 70000": replace(
                batch, "dst_port", pa.array([70000] * batch.num_rows, pa.int32())),
            "column 'src_port': row 0 is null": replace(
                batch, "src_port", pa.array([None] * batch.num_rows, pa.uint16())),
            "missing column 'protocol'": batch.drop_columns(["protocol"]),
        }
        for needle, malformed in bad.items():
            if not refused(lib, malformed, needle):
                print(f"{capture}: a batch with {needle} was not refused naming it")
                failures += 1
        print(f"{capture}: {batch.num_rows} flows, {failures} differences so far")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
