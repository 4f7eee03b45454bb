"""Zeek ``dns.log`` (TSV or JSON): the address answers of DNS lookups, for
learning address -> name mappings.

Fields used: ``ts`` (the query's time: seconds since the epoch, or ISO 8601
text in JSON logs written with ISO timestamps), ``query``, ``answers`` (a
set: addresses, CNAME targets and other record data; only addresses are
taken) and ``TTLs`` (one per answer, in seconds); ``rcode`` when present
(answers of responses other than NOERROR (0) are not taken). In TSV the
``#fields`` header names the columns and ``#set_separator`` (default ``,``)
separates the set's items; ``-`` and ``(empty)`` are unset / empty. A
line with a bad field is an :class:`nkclass.InputError` naming the file
and line, or skipped and counted with ``errors="skip"``.

>>> reader = DnsLogReader("tests/data/flows/zeek-dns.log")
>>> batch = next(iter(reader))
>>> batch["name"][:1], batch["ttl"][:1]
(['www.youtube.com'], [300.0])
"""

from __future__ import annotations

import ipaddress
import json
import math
import os
from collections.abc import Iterable, Iterator
from datetime import datetime

import numpy as np

from nkclass.errors import InputError
from nkclass.flows.reader import Problems, check_errors_mode
from nkclass.flows.source import Source, expand_inputs
from nkclass.flows.stats import ReadStats
from nkclass.flows.text import UTF8_BOM, line_blocks

BATCH = 65_536
REQUIRED = ("ts", "query", "answers", "TTLs")
#: Largest TTL taken (RFC 2181: 2**31 - 1 seconds).
MAX_TTL = 2**31 - 1


def is_dns_log(head: bytes) -> bool:
    """Whether the first bytes of an input look like a Zeek dns.log."""
    text = head.removeprefix(UTF8_BOM).lstrip()
    if text.startswith(b"#"):
        for line in text.split(b"\n"):
            if line.startswith(b"#path") and line.split(b"\t")[1:2] == [b"dns"]:
                return True
            if line.startswith(b"#fields"):
                fields = line.rstrip(b"\r").split(b"\t")[1:]
                return all(f.encode() in fields for f in ("query", "answers", "trans_id"))
        return False
    if text.startswith(b"{"):
        first = text.split(b"\n", 1)[0]
        return all(f'"{key}"'.encode() in first for key in ("query", "trans_id"))
    return False


class _Batch:
    def __init__(self) -> None:
        self.address: list[str] = []
        self.name: list[str] = []
        self.at: list[int] = []
        self.ttl: list[float] = []

    def __len__(self) -> int:
        return len(self.address)

    def take(self) -> dict:
        out = {"address": self.address, "name": self.name,
               "at": np.array(self.at, np.int64), "ttl": self.ttl}
        self.__init__()
        return out


class DnsLogReader:
    """Iterator of answer batches (dicts of ``address`` text, ``name``,
    ``at`` (int64 ms) and ``ttl`` (seconds)) from dns.log files, folders or
    patterns (as :func:`nkclass.read` takes them); ``stats`` counts lines
    read and skipped."""

    def __init__(self, paths: str | os.PathLike | Iterable[str | os.PathLike],
                 errors: str = "raise") -> None:
        check_errors_mode(errors)
        if isinstance(paths, str | os.PathLike):
            paths = [paths]
        self.sources = paths if isinstance(paths, list) and all(
            isinstance(p, Source) for p in paths) else expand_inputs(paths)
        self.errors = errors
        self.stats = ReadStats()

    def __iter__(self) -> Iterator[dict]:
        batch = _Batch()
        for source in self.sources:
            with source:
                problems = Problems(source.name, self.errors, self.stats)
                if not is_dns_log(source.head):
                    raise InputError("not a Zeek dns.log (no #fields with query, answers and "
                                     "trans_id, nor JSON lines with them)", source.name)
                for item in self._lines(source, problems):
                    batch.address.append(item[0])
                    batch.name.append(item[1])
                    batch.at.append(item[2])
                    batch.ttl.append(item[3])
                    if len(batch) >= BATCH:
                        yield batch.take()
        if len(batch):
            yield batch.take()

    def _lines(self, source: Source, problems: Problems) -> Iterator[tuple[str, str, int, float]]:
        fields: list[str] | None = None
        unset, empty, set_separator = "-", "(empty)", ","
        for block in line_blocks(source.stream(), problems):
            for offset, raw in enumerate(block.data.split(b"\n")):
                number = block.first_line + offset
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8").rstrip("\r")
                except UnicodeDecodeError:
                    problems.bad(number, "not UTF-8 text")
                    continue
                if line.startswith("#"):
                    key, _, value = line.partition("\t")
                    if key == "#fields":
                        fields = value.split("\t")
                        missing = [f for f in REQUIRED if f not in fields]
                        if missing:
                            raise InputError(f"not a dns.log: #fields has no "
                                             f"{', '.join(missing)}", source.name, number)
                    elif key == "#unset_field":
                        unset = value
                    elif key == "#empty_field":
                        empty = value
                    elif key == "#set_separator":
                        set_separator = value.encode().decode("unicode_escape")
                    continue
                try:
                    if line.lstrip().startswith("{"):
                        record = _json_record(line)
                    elif fields is None:
                        raise ValueError("a record before the #fields header")
                    else:
                        record = _tsv_record(line, fields, unset, empty, set_separator)
                    answers = _answers(*record)
                except (ValueError, RecursionError) as exc:
                    problems.bad(number, f"bad dns.log record: {exc}")
                    continue
                self.stats.records += 1
                yield from answers


def _tsv_record(line: str, fields: list[str], unset: str, empty: str,
                set_separator: str) -> tuple:
    values = line.split("\t")
    if len(values) != len(fields):
        raise ValueError(f"expected {len(fields)} fields, got {len(values)}")
    row = dict(zip(fields, values, strict=True))

    def items(name: str) -> list[str]:
        value = row[name]
        return [] if value in (unset, empty, "") else value.split(set_separator)

    rcode = row.get("rcode", unset)
    return (row["ts"], row["query"] if row["query"] != unset else None, items("answers"),
            items("TTLs"), None if rcode == unset else rcode)


def _json_record(line: str) -> tuple:
    doc = json.loads(line)
    if not isinstance(doc, dict):
        raise ValueError("a JSON line must be an object")
    answers = doc.get("answers", [])
    ttls = doc.get("TTLs", [])
    if not isinstance(answers, list) or not isinstance(ttls, list):
        raise ValueError("answers and TTLs must be lists")
    return doc.get("ts"), doc.get("query"), answers, ttls, doc.get("rcode")


def _seconds(ts: object) -> float:
    if isinstance(ts, str):
        text = ts.strip()
        try:
            return float(text)
        except ValueError:
            stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if stamp.tzinfo is None:
                raise ValueError(f"ts {ts!r} has no time zone") from None
            return stamp.timestamp()
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts)
    raise ValueError(f"ts must be a time, got {ts!r}")


def _answers(ts: object, query: object, answers: list, ttls: list,
             rcode: object) -> list[tuple[str, str, int, float]]:
    seconds = _seconds(ts)
    if not math.isfinite(seconds) or not 0 <= seconds < 2**33:
        raise ValueError(f"ts {ts!r} is not a time between 1970 and 2242")
    if rcode not in (None, 0, "0"):
        return []
    if query is None or not answers:
        return []
    if not isinstance(query, str):
        raise ValueError("query must be text")
    if len(ttls) != len(answers):
        raise ValueError(f"{len(answers)} answers but {len(ttls)} TTLs")
    at = round(seconds * 1000)
    out = []
    for answer, ttl in zip(answers, ttls, strict=True):
        if not isinstance(answer, str):
            raise ValueError("answers must be text")
        try:
            ipaddress.ip_address(answer)
        except ValueError:
            continue  # a CNAME target or other record data
        try:
            seconds_ttl = float(ttl)
        except (TypeError, ValueError):
            seconds_ttl = -1.0
        if not math.isfinite(seconds_ttl) or seconds_ttl < 0:
            raise ValueError(f"TTL {ttl!r} is not a number of seconds >= 0")
        out.append((answer, query, at, min(seconds_ttl, MAX_TTL)))
    return out
