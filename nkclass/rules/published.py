"""Importers for the prefix lists operators publish as data.

Each returns ``(prefix text, line)`` pairs in file order; a malformed file
raises :class:`nkclass.RuleError` naming the file and line.

* ``text``: one prefix per line, ``#`` comments (Cloudflare's ips-v4 /
  ips-v6, Telegram's cidr.txt, and any plain list).
* ``aws-ip-ranges``: AWS ``ip-ranges.json`` (``prefixes[].ip_prefix``,
  ``ipv6_prefixes[].ipv6_prefix``; the syntax AWS documents at
  https://docs.aws.amazon.com/vpc/latest/userguide/aws-ip-syntax.html).
* ``google-ip-ranges``: Google's ``goog.json`` and ``cloud.json``
  (https://www.gstatic.com/ipranges/goog.json, .../cloud.json;
  ``prefixes[].ipv4Prefix`` / ``ipv6Prefix``).
* ``fastly-public-ip-list``: Fastly's public IP list (``addresses``,
  ``ipv6_addresses``).

A published JSON list may name one prefix several times (AWS lists a range
under each of its services): those repeats are kept once.
"""

from __future__ import annotations

import bisect
import json
from collections.abc import Callable, Iterator
from pathlib import Path

from nkclass.errors import RuleError, load_json

PREFIX_FORMATS = ("text", "aws-ip-ranges", "google-ip-ranges", "fastly-public-ip-list")


def read_prefix_list(path: Path, format: str = "text") -> list[tuple[str, int]]:
    """The prefixes of one published list, with their 1-based lines.
    (Rulesets read their list files with more care: see parse.py.)"""
    if format not in PREFIX_FORMATS:
        raise ValueError(f"format must be one of {', '.join(PREFIX_FORMATS)}, got {format!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"cannot read: {exc.strerror}", str(path)) from None
    except UnicodeDecodeError as exc:
        raise RuleError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path)) from None
    return prefix_list(text, str(path), format)


def prefix_list(text: str, path: str, format: str = "text") -> list[tuple[str, int]]:
    """The prefixes of a published list's text, with their 1-based lines
    (lines end at '\\n' only); ``path`` names it in errors, which never
    quote the text."""
    if format == "text":
        out = []
        for number, raw in enumerate(text.split("\n"), start=1):
            value = raw.split("#", 1)[0].strip()
            if value:
                out.append((value, number))
        return out
    doc = load_json(text, RuleError, path)
    values = list(_JSON_READERS[format](doc, path))
    return _with_lines(text, values, path)


def _with_lines(text: str, values: list[str], path: str) -> list[tuple[str, int]]:
    """Lines of JSON string values, found in order in the text; repeats dropped."""
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n":
            starts.append(i + 1)
    out = []
    seen: set[str] = set()
    at = 0
    for value in values:
        found = text.find(json.dumps(value), at)
        if found < 0:  # written with escapes: fall back to the last position
            found = at
        at = found + 1
        if value in seen:
            continue
        seen.add(value)
        out.append((value, bisect.bisect_right(starts, found)))
    return out


def _list(doc: object, key: str, path: str) -> list:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, list):
        raise RuleError(f"expected a JSON object with a {key!r} list", path)
    return value


def _field(item: object, keys: tuple[str, ...], where: str, path: str) -> str | None:
    if not isinstance(item, dict):
        raise RuleError(f"{where} is not an object", path)
    for key in keys:
        if key in item:
            if not isinstance(item[key], str):
                raise RuleError(f"{where}.{key} is not a string", path)
            return item[key]
    return None


def _aws(doc: object, path: str) -> Iterator[str]:
    for key, field in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
        items = _list(doc, key, path) if key == "prefixes" or key in doc else []
        for i, item in enumerate(items):
            value = _field(item, (field,), f"{key}[{i}]", path)
            if value is None:
                raise RuleError(f"{key}[{i}] has no {field!r}", path)
            yield value


def _google(doc: object, path: str) -> Iterator[str]:
    for i, item in enumerate(_list(doc, "prefixes", path)):
        value = _field(item, ("ipv4Prefix", "ipv6Prefix"), f"prefixes[{i}]", path)
        if value is None:
            raise RuleError(f"prefixes[{i}] has neither 'ipv4Prefix' nor 'ipv6Prefix'", path)
        yield value


def _fastly(doc: object, path: str) -> Iterator[str]:
    for key in ("addresses", "ipv6_addresses"):
        if key == "ipv6_addresses" and isinstance(doc, dict) and key not in doc:
            continue
        for i, value in enumerate(_list(doc, key, path)):
            if not isinstance(value, str):
                raise RuleError(f"{key}[{i}] is not a string", path)
            yield value


_JSON_READERS: dict[str, Callable[[object, str], Iterator[str]]] = {
    "aws-ip-ranges": _aws,
    "google-ip-ranges": _google,
    "fastly-public-ip-list": _fastly,
}
