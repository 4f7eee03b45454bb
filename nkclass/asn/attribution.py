"""Joining a ruleset's [[asn]] entries with an IP-to-AS table.

The classifier's AS stage works on entry ids: the table's own entries first
(ids 1..len(database)), then one entry per AS number the rules name that the
table lacks (so exporter AS fields resolve even without a table). Per id it
knows the AS number, the organisation name and what the rules propose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nkclass import _columns
from nkclass.asn.database import AsDatabase
from nkclass.errors import SchemaTypeError
from nkclass.flows.convert import one_array
from nkclass.labels import ACTIVITY_CODES, EVIDENCE, RANKS
from nkclass.rules.model import Ruleset

#: AS numbers below this resolve through a table (16 MiB at most).
DENSE_LIMIT = 1 << 22


@dataclass(frozen=True)
class AsAttribution:
    """Per AS entry id: ``asns`` (uint32, 0 = no number known), ``org_codes``
    (into ``orgs``; 0 = "") and ``entry_verdict`` (uint16 verdict code).
    Per verdict code (0 = no opinion, i + 1 = the ruleset's i-th [[asn]]
    entry): ``codes`` (app, activity, rank), ``evidence``, ``services``."""

    database: AsDatabase | None
    asns: np.ndarray
    org_codes: np.ndarray
    orgs: tuple[str, ...]
    codes: np.ndarray
    evidence: np.ndarray
    services: np.ndarray
    entry_verdict: np.ndarray
    number_keys: np.ndarray  # sorted AS numbers that have an entry
    number_ids: np.ndarray  # their entry ids
    # Entry id by AS number for the numbers below DENSE_LIMIT, then one 0
    # for every larger number: one gather per column instead of a search.
    number_table: np.ndarray

    def image(self) -> dict[str, object]:
        """The stage's arrays as a compiled ruleset stores them."""
        return {
            "as_numbers": self.asns.astype(np.uint32),
            "as_orgs": self.org_codes.astype(np.uint32),
            "as_entry_verdict": self.entry_verdict.astype(np.uint16),
            "as_org_names": list(self.orgs),
            "as_codes": self.codes,
            "as_evidence": self.evidence,
            "as_services": self.services,
        }

    @classmethod
    def from_image(cls, image: dict, database: AsDatabase | None) -> AsAttribution:
        """The stage back from a compiled ruleset's arrays (:meth:`image`)."""
        asns = image["as_numbers"]
        return cls(
            database, asns, image["as_orgs"].astype(np.int32), tuple(image["as_org_names"]),
            image["as_codes"], image["as_evidence"], image["as_services"],
            image["as_entry_verdict"], *_number_index(asns),
        )

    def ids_for_numbers(self, numbers: np.ndarray) -> np.ndarray:
        """Entry ids (uint32; 0 = none) for an exporter's AS numbers."""
        if len(self.number_keys) == 0:
            return np.zeros(len(numbers), np.uint32)
        numbers = np.ascontiguousarray(numbers)
        if numbers.dtype != np.uint32:
            raise TypeError(f"AS numbers must be uint32 (as exporter_numbers gives), "
                            f"got {numbers.dtype}")
        # clipped: numbers past the dense table read its last entry (0),
        # and the large ones are looked up below
        out = np.empty(len(numbers), np.uint32)
        _columns.take_clipped(self.number_table, numbers, out)
        if self.number_keys[-1] >= DENSE_LIMIT:
            big = np.flatnonzero(numbers >= DENSE_LIMIT)
            if len(big):
                at = np.minimum(np.searchsorted(self.number_keys, numbers[big]),
                                len(self.number_keys) - 1)
                hit = self.number_keys[at] == numbers[big]
                out[big] = np.where(hit, self.number_ids[at], 0)
        return out


def build_attribution(ruleset: Ruleset, service_code: dict[str, int],
                      database: AsDatabase | None) -> AsAttribution:
    """The AS stage's tables for ``ruleset`` over ``database`` (or none)."""
    db_asns = database.asns if database is not None else np.zeros(1, np.uint32)
    db_orgs = database.orgs if database is not None else ("",)
    by_number = {n: rule for rule in ruleset.asns for n in rule.asns}
    by_name = {n: rule for rule in ruleset.asns for n in rule.as_names}
    present = set(db_asns[db_asns > 0].tolist())
    extra = sorted(n for n in by_number if n not in present)
    asns = np.concatenate([db_asns, np.array(extra, np.uint32)]).astype(np.uint32)
    n = len(asns)

    # Entry ids index the table's organisation names; extra entries (and
    # table entries without a name) take the rule's organisation.
    names = list(db_orgs) + [""] * len(extra)
    rules = list(ruleset.asns)
    rule_index = {id(r): i for i, r in enumerate(rules)}
    matched = np.full(n, -1, np.int64)
    for entry in np.flatnonzero(asns).tolist():
        rule = by_number.get(int(asns[entry]))
        if rule is not None:
            matched[entry] = rule_index[id(rule)]
    if by_name:
        for entry, name in enumerate(names):
            if matched[entry] < 0 and name in by_name:
                matched[entry] = rule_index[id(by_name[name])]
    orgs = tuple(names) + tuple(r.org for r in rules)
    org_codes = np.arange(n, dtype=np.int32)
    unnamed = np.array([not name for name in names], bool)
    org_codes[unnamed & (matched >= 0)] = len(names) + matched[unnamed & (matched >= 0)]
    org_codes[unnamed & (matched < 0)] = 0
    # One code per distinct name (tables repeat an organisation across
    # entries), so the peer_org column is a proper dictionary.
    distinct: dict[str, int] = {}
    remap = np.array([distinct.setdefault(name, len(distinct)) for name in orgs], np.int32)
    org_codes = remap[org_codes]
    orgs = tuple(distinct)
    rule_codes = np.array(
        [(0, ACTIVITY_CODES[r.category] if r.category else 0,
          RANKS["weak"] if r.confidence == "low" else RANKS["asn"]) for r in rules],
        np.uint8).reshape(-1, 3)
    rule_services = np.array([service_code[r.service] for r in rules], np.uint32)
    # Verdict code 0 is "no opinion", code i + 1 is rule i.
    codes = np.concatenate([np.zeros((1, 3), np.uint8), rule_codes])
    evidence = np.full(len(rules) + 1, EVIDENCE["asn"], np.uint16)
    evidence[0] = 0
    services = np.concatenate([[0], rule_services]).astype(np.uint32)
    entry_verdict = (matched + 1).astype(np.uint16)
    return AsAttribution(
        database, asns, org_codes, orgs, codes, evidence, services, entry_verdict,
        *_number_index(asns),
    )


def _number_index(asns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted AS numbers, their entry ids, the entry id by number below
    DENSE_LIMIT): the lowest id first where entries share a number, so a
    lookup finds the lowest."""
    numbered = np.flatnonzero(asns > 0)
    order = numbered[np.argsort(asns[numbered], kind="stable")]
    keys, ids = asns[order], order.astype(np.uint32)
    small = keys < DENSE_LIMIT
    table = np.zeros(int(keys[small].max()) + 2 if small.any() else 1, np.uint32)
    # the lowest id per number: assign in reverse so the first occurrence wins
    table[keys[small][::-1]] = ids[small][::-1]
    table[0] = 0  # AS 0 is "unknown"
    return keys, ids, table


def exporter_numbers(source: object, name: str, n: int) -> np.ndarray | None:
    """An exporter's AS column (``src_as`` / ``dst_as``) as uint32, nulls as
    0 (unknown); None when the batch has no such column."""
    import pyarrow as pa

    if isinstance(source, pa.Table | pa.RecordBatch):
        if name not in source.schema.names:
            return None
        col = one_array(source.column(name))
        if not pa.types.is_integer(col.type):
            raise SchemaTypeError(f"column {name!r}: expected integer AS numbers, got {col.type}")
        arr = (col.fill_null(0) if col.null_count else col).to_numpy(zero_copy_only=False)
    elif hasattr(source, "columns") and not isinstance(source, dict):  # pandas
        if name not in source.columns:
            return None
        arr = source[name].fillna(0).to_numpy()
    elif isinstance(source, dict) or hasattr(source, "keys"):
        if name not in source:
            return None
        arr = np.asarray(source[name])
    else:
        return None
    if arr.dtype.kind == "f" and np.all(np.mod(arr, 1) == 0):
        arr = arr.astype(np.int64)  # pandas turns an integer column with nulls into floats
    if arr.dtype.kind not in "iu" or arr.ndim != 1 or len(arr) != n:
        raise SchemaTypeError(
            f"column {name!r}: expected {n} integer AS numbers, got dtype {arr.dtype} "
            f"with shape {arr.shape}"
        )
    fits = arr.dtype.kind == "u" and arr.dtype.itemsize <= 4
    if len(arr) and not fits and (arr.min() < 0 or arr.max() > 2**32 - 1):
        from nkclass.errors import SchemaValueError

        row = int(np.flatnonzero((arr < 0) | (arr > 2**32 - 1))[0])
        raise SchemaValueError(f"column {name!r}: row {row} is {arr[row]}, outside 0..2**32-1")
    return np.ascontiguousarray(arr, dtype=np.uint32)
