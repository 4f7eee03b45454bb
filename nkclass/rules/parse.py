"""Reading ruleset files (TOML) into the validated model, with file:line errors.

tomllib parses the values; a light scan of the text finds the line of each
``[[table]]`` entry and of the keys and items inside it, so that every error
points at the line to fix.

Files a ruleset names (``prefix_file``) are untrusted input: they are read
only from the ruleset's own folder (or folders the caller allows), only
when they are regular files of at most MAX_LIST_FILE_BYTES, and errors in
them give the file and line but never their text.
"""

from __future__ import annotations

import glob
import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nkclass.addresses import parse_prefixes
from nkclass.errors import InputError, RuleError, SchemaValueError
from nkclass.labels import ACTIVITIES, APPS
from nkclass.lists.dated import LIST_FORMATS, DatedList, read_dated_list
from nkclass.lists.files import DatedListError
from nkclass.rules.model import (
    AS_CONFIDENCES,
    CONFIDENCE_LEVELS,
    DNS_TUNNEL_INT_RANGES,
    DNS_TUNNEL_MAX_ENTROPY,
    MAX_ASN,
    PROTOCOL_NAMES,
    TRANSPORTS,
    AsRule,
    DnsTunnelOptions,
    DomainRule,
    FlowShapeOptions,
    Origin,
    PeerNetwork,
    PortRule,
    Ruleset,
    ServiceInfo,
    WatchedNetwork,
)
from nkclass.rules.published import PREFIX_FORMATS, prefix_list

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,63}$")
LABEL_RE = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
TOML_POSITION_RE = re.compile(r"\(at line (\d+), column \d+\)")
# A ruleset needs two levels of nesting; tomllib recurses once per level.
MAX_NESTING = 32
MAX_RULESET_BYTES = 16 << 20
# A full routing table's prefixes, one per line, take about 20 MB.
MAX_LIST_FILE_BYTES = 64 << 20

TABLE_KEYS = {
    "ruleset": {"name", "version", "description"},
    "activities": {"precedence"},
    "watched": {"name", "prefixes", "description", "source", "confidence", "server_activity"},
    "network": {"service", "category", "prefixes", "prefix_file", "prefix_format", "source"},
    "port": {"protocol", "ports", "app", "activity", "weak", "source"},
    "domain": {"service", "category", "suffixes", "narrows", "source"},
    "asn": {"service", "org", "category", "confidence", "asns", "as_names", "source"},
    "service": {"name", "org", "operator", "country", "source"},
    "flow_shape": {"threshold", "min_flows", "enabled"},
    "dns_tunnel": {*DNS_TUNNEL_INT_RANGES, "entropy_bits", "enabled"},
    "dated_list": {"service", "category", "files", "format", "flags", "source"},
}
ENTRY_TABLES = ("watched", "network", "port", "domain", "asn", "service", "dated_list")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


class _Locator:
    """Line numbers of entries, keys and items in a TOML text."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: dict[str, list[int]] = {}
        self.singles: dict[str, int] = {}
        self.boundaries: list[int] = []
        for i, raw in enumerate(self.lines):
            line = raw.strip()
            m = re.match(r"^\[\[\s*([A-Za-z0-9_-]+)\s*\]\]", line)
            if m:
                self.headers.setdefault(m.group(1), []).append(i)
                self.boundaries.append(i)
                continue
            m = re.match(r"^\[\s*([A-Za-z0-9_-]+)\s*\]", line)
            if m:
                self.singles[m.group(1)] = i
                self.boundaries.append(i)

    def _span(self, start: int | None) -> tuple[int, int]:
        if start is None:
            return (0, len(self.lines))
        later = [b for b in self.boundaries if b > start]
        return (start, later[0] if later else len(self.lines))

    def entry(self, table: str, index: int | None = None) -> int | None:
        if index is None:
            return self.singles.get(table)
        found = self.headers.get(table, [])
        return found[index] if index < len(found) else None

    def key(self, start: int | None, key: str) -> int | None:
        lo, hi = self._span(start)
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i in range(lo, hi):
            if pattern.match(self.lines[i]):
                return i
        return start

    def item(self, start: int | None, key: str, item: object) -> int | None:
        key_line = self.key(start, key)
        lo, hi = self._span(start)
        needle = f'"{item}"' if isinstance(item, str) else str(item)
        first = key_line if key_line is not None else lo
        for i in range(first, hi):
            if needle in self.lines[i]:
                return i
        return key_line


@dataclass
class _Entry:
    """One table of the file being validated, with error helpers."""

    table: str
    index: int | None
    values: dict[str, Any]
    path: str
    loc: _Locator

    @property
    def start(self) -> int | None:
        return self.loc.entry(self.table, self.index)

    @property
    def label(self) -> str:
        return self.table if self.index is None else f"{self.table}[{self.index}]"

    def origin(self) -> Origin:
        return Origin(self.path, _one_based(self.start))

    def fail(self, message: str, key: str | None = None, item: object = None) -> RuleError:
        if key is None:
            line = self.start
        elif item is None:
            line = self.loc.key(self.start, key)
        else:
            line = self.loc.item(self.start, key, item)
        where = f"{self.label}.{key}" if key else self.label
        return RuleError(f"{where}: {message}", self.path, _one_based(line))

    def check_keys(self) -> None:
        allowed = TABLE_KEYS[self.table]
        for key in self.values:
            if key not in allowed:
                raise self.fail(
                    f"unknown key {key!r}; expected one of {', '.join(sorted(allowed))}", key
                )

    def get(self, key: str, kind: type | tuple[type, ...], required: bool = False) -> Any:
        if key not in self.values:
            if required:
                raise self.fail(f"missing required key {key!r}")
            return None
        value = self.values[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            expected = (
                kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
            )
            raise self.fail(f"expected {expected}, got {type(value).__name__} {value!r}", key)
        return value

    def text(self, key: str, required: bool = False) -> str | None:
        return self.get(key, str, required)

    def strings(self, key: str, required: bool = False) -> list[str]:
        values = self.get(key, list, required)
        if values is None:
            return []
        for v in values:
            if not isinstance(v, str):
                raise self.fail(f"expected a list of strings, found {v!r}", key)
        return values

    def vocabulary(self, key: str, names: tuple[str, ...], required: bool = False) -> str | None:
        value = self.text(key, required)
        if value is None:
            return None
        if value not in names or value == "unknown":
            raise self.fail(f"unknown name {value!r}; expected one of {', '.join(names[1:])}", key)
        return value


def _one_based(line: int | None) -> int | None:
    return None if line is None else line + 1


def _decode(data: bytes, path: str, what: str) -> str:
    """UTF-8 text without NUL bytes, or a RuleError naming the line."""
    def line_of(offset: int) -> int:
        return data.count(b"\n", 0, offset) + 1

    nul = data.find(b"\0")
    if nul >= 0:
        raise RuleError(f"binary data (a NUL byte), not a {what}", path, line_of(nul))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RuleError(f"not UTF-8 text (binary data?), not a {what}", path,
                        line_of(exc.start)) from None


def parse_file(path: str | Path, allowed_dirs: Sequence[str | Path] = ()) -> Ruleset:
    """Read and validate one ruleset file (no layering). Files it names are
    read from its folder or from ``allowed_dirs``."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_RULESET_BYTES + 1)
    except OSError as exc:
        raise RuleError(f"cannot read ruleset: {exc.strerror or exc}", str(p)) from None
    if len(data) > MAX_RULESET_BYTES:
        raise RuleError(f"larger than {MAX_RULESET_BYTES >> 20} MiB: not a ruleset", str(p))
    text = _decode(data, str(p), "ruleset")
    return parse_text(text, str(p), base_dir=p.parent, allowed_dirs=allowed_dirs)


def _nesting_line(text: str) -> int | None:
    """1-based line where arrays and inline tables nest deeper than
    MAX_NESTING, else None. Strings and comments are skipped; anything this
    scan gets wrong about malformed TOML, tomllib reports afterwards."""
    depth = line = i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
            continue
        elif c in "\"'":
            quote = text[i : i + 3] if text.startswith(c * 3, i) else c
            i += len(quote)
            while i < n and not text.startswith(quote, i):
                if text[i] == "\\" and c == '"':
                    i += 1
                elif text[i] == "\n":
                    if len(quote) == 1:
                        break  # an unterminated one-line string: tomllib says so
                    line += 1
                i += 1
            i += len(quote)
            continue
        elif c in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return line + 1
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return None


def parse_text(
    text: str,
    path: str = "<rules>",
    base_dir: Path | None = None,
    allowed_dirs: Sequence[str | Path] = (),
) -> Ruleset:
    """Validate ruleset TOML ``text``; ``path`` names it in errors. Files it
    names are read from ``base_dir`` (the ruleset's folder) or from
    ``allowed_dirs``; a text without a folder reads only from the latter."""
    deep = _nesting_line(text)
    if deep is not None:
        raise RuleError(f"invalid TOML: arrays or tables nested more than {MAX_NESTING} deep",
                        path, deep)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = TOML_POSITION_RE.search(str(exc))
        message = TOML_POSITION_RE.sub("", str(exc)).strip()
        raise RuleError(f"invalid TOML: {message}", path, int(m.group(1)) if m else None) from None
    except RecursionError:  # nesting the scan above did not see (dotted keys, say)
        raise RuleError("invalid TOML: nested too deeply", path) from None
    roots = _ListRoots(base_dir, allowed_dirs)
    loc = _Locator(text)
    for key, value in doc.items():
        if key not in TABLE_KEYS:
            raise RuleError(
                f"unknown table {key!r}; expected one of {', '.join(TABLE_KEYS)}",
                path,
                _one_based(loc.entry(key) if key in loc.singles else loc.key(None, key)),
            )
        if key in ENTRY_TABLES and not (
            isinstance(value, list) and all(isinstance(v, dict) for v in value)
        ):
            raise RuleError(
                f"{key!r} must be written as [[{key}]] tables", path,
                _one_based(loc.entry(key) if key in loc.singles else loc.key(None, key)),
            )
        if key not in ENTRY_TABLES and not isinstance(value, dict):
            raise RuleError(
                f"{key!r} must be written as one [{key}] table", path,
                _one_based(loc.entry(key, 0) if key in loc.headers else loc.key(None, key)),
            )

    def entries(table: str) -> Iterable[_Entry]:
        for i, values in enumerate(doc.get(table, [])):
            entry = _Entry(table, i, values, path, loc)
            entry.check_keys()
            yield entry

    head = _Entry("ruleset", None, doc.get("ruleset", {}), path, loc)
    head.check_keys()
    acts = _Entry("activities", None, doc.get("activities", {}), path, loc)
    acts.check_keys()
    precedence = tuple(acts.strings("precedence"))
    for name in precedence:
        if name not in ACTIVITIES or name == "unknown":
            raise acts.fail(f"unknown activity {name!r}", "precedence", name)
    if len(set(precedence)) != len(precedence):
        raise acts.fail("an activity is listed twice", "precedence")

    flow_shape = _flow_shape(_Entry("flow_shape", None, doc["flow_shape"], path, loc)) if (
        "flow_shape" in doc
    ) else None
    dns_tunnel = _dns_tunnel(_Entry("dns_tunnel", None, doc["dns_tunnel"], path, loc)) if (
        "dns_tunnel" in doc
    ) else None

    prefix_seen: dict[object, object] = {}
    watched = [_watched(e, prefix_seen) for e in entries("watched")]
    names = [w.name for w in watched]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _Entry("watched", i, {}, path, loc).fail(f"path name {name!r} is used twice")
    networks = [_network(e, prefix_seen, roots) for e in entries("network")]
    port_seen: dict[tuple[int, int, int], str] = {}
    ports = [rule for e in entries("port") for rule in _ports(e, port_seen)]
    suffix_seen: dict[str, str] = {}
    domains = [_domain(e, suffix_seen) for e in entries("domain")]
    as_seen: dict[object, object] = {}
    as_rules = [_as_rule(e, as_seen) for e in entries("asn")]
    info_seen: dict[str, str] = {}
    service_info = [_service_info(e, info_seen) for e in entries("service")]
    list_seen: dict[str, str] = {}
    dated_lists = [_dated_list(e, list_seen, roots) for e in entries("dated_list")]
    return Ruleset(
        name=head.text("name") or "",
        version=head.text("version") or "",
        description=head.text("description") or "",
        watched=tuple(watched),
        networks=tuple(networks),
        ports=tuple(ports),
        domains=tuple(domains),
        asns=tuple(as_rules),
        precedence=precedence,
        files=(path,),
        flow_shape=flow_shape,
        dns_tunnel=dns_tunnel,
        service_info=tuple(service_info),
        dated_lists=tuple(dated_lists),
    )


def _flow_shape(entry: _Entry) -> FlowShapeOptions:
    entry.check_keys()
    default = FlowShapeOptions()
    threshold = entry.get("threshold", (float, int))
    if threshold is None:
        threshold = default.threshold
    elif isinstance(threshold, bool) or not 0 < threshold <= 1:
        raise entry.fail(
            f"threshold must be a number in (0, 1] (conditions met / 9), got {threshold!r}",
            "threshold",
        )
    min_flows = entry.get("min_flows", int)
    if min_flows is None:
        min_flows = default.min_flows
    elif not 1 <= min_flows <= 2**32 - 1:
        raise entry.fail(f"min_flows must be at least 1, got {min_flows}", "min_flows")
    enabled = entry.get("enabled", bool)
    return FlowShapeOptions(
        threshold=float(threshold),
        min_flows=min_flows,
        enabled=True if enabled is None else enabled,
        origin=entry.origin(),
    )


def _dns_tunnel(entry: _Entry) -> DnsTunnelOptions:
    entry.check_keys()
    values: dict[str, Any] = {}
    for key, (low, high) in DNS_TUNNEL_INT_RANGES.items():
        value = entry.get(key, int)
        if value is not None and not low <= value <= high:
            raise entry.fail(f"{key} must be an int in [{low}, {high}], got {value}", key)
        if value is not None:
            values[key] = value
    entropy = entry.get("entropy_bits", (float, int))
    if entropy is not None:
        if isinstance(entropy, bool) or not 0 < entropy <= DNS_TUNNEL_MAX_ENTROPY:
            raise entry.fail(
                f"entropy_bits must be a number in (0, {DNS_TUNNEL_MAX_ENTROPY:g}] (bits per "
                f"byte), got {entropy!r}", "entropy_bits")
        values["entropy_bits"] = float(entropy)
    enabled = entry.get("enabled", bool)
    return DnsTunnelOptions(**values, enabled=True if enabled is None else enabled,
                            origin=entry.origin())


def _network_of(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """The prefix a text names (host bits must be zero). An IPv4-mapped IPv6
    prefix of length 96 or more is the IPv4 prefix it matches, as in the
    tables: ``::ffff:1.2.3.0/120`` and ``1.2.3.0/24`` are one prefix.
    Raises ValueError."""
    net = ipaddress.ip_network(text.strip(), strict=True)
    mapped = net.network_address.ipv4_mapped if net.version == 6 else None
    if mapped is not None and net.prefixlen >= 96:
        return ipaddress.ip_network((mapped, net.prefixlen - 96))
    return net


def _unparsable(texts: list[str]) -> int | None:
    """Index of the first text the native prefix parser (which the tables
    use) refuses, or None. ipaddress alone accepts more (netmasks, zone
    ids, "/024")."""
    try:
        parse_prefixes(texts)
        return None
    except SchemaValueError:
        return next(i for i, t in enumerate(texts) if not _parses([t]))


def _parses(texts: list[str]) -> bool:
    try:
        parse_prefixes(texts)
        return True
    except SchemaValueError:
        return False


@dataclass(frozen=True)
class _Place:
    """Where a prefix was listed inline; the line is looked up only for an
    error message (a scan of the entry's lines)."""

    entry: _Entry
    text: str

    def __str__(self) -> str:
        line = self.entry.loc.item(self.entry.start, "prefixes", self.text)
        return f"{self.entry.label} ({self.entry.path}:{_one_based(line)})"


def _prefixes(entry: _Entry, seen: dict[object, object], required: bool) -> tuple[str, ...]:
    values = [v.strip() for v in entry.strings("prefixes", required)]
    bad = _unparsable(values)
    if bad is not None:
        raise entry.fail(f"{values[bad]!r} is not a prefix such as 175.45.176.0/22", "prefixes",
                         values[bad])
    for text in values:
        try:
            net = _network_of(text)
        except ValueError as exc:
            raise entry.fail(str(exc), "prefixes", text) from None
        if net in seen:
            same = "" if str(net) == text else f" (the same prefix as {net})"
            raise entry.fail(f"prefix {text}{same} is already listed by {seen[net]}",
                             "prefixes", text)
        seen[net] = _Place(entry, text)
    return tuple(values)


def _watched(entry: _Entry, seen: dict[object, object]) -> WatchedNetwork:
    name = entry.text("name", required=True)
    if not NAME_RE.match(name) or name == "none":
        raise entry.fail(
            f"path name {name!r} must be lowercase letters, digits and _ (not 'none')", "name"
        )
    confidence = entry.text("confidence") or "certain"
    if confidence not in CONFIDENCE_LEVELS:
        raise entry.fail(
            f"confidence {confidence!r} is not one of {', '.join(CONFIDENCE_LEVELS)}", "confidence"
        )
    prefixes = _prefixes(entry, seen, required=True)
    if not prefixes:
        raise entry.fail("a watched path needs at least one prefix", "prefixes")
    return WatchedNetwork(
        name=name,
        prefixes=prefixes,
        description=entry.text("description") or "",
        source=entry.text("source") or "",
        confidence=confidence,
        server_activity=entry.vocabulary("server_activity", ACTIVITIES),
        origin=entry.origin(),
    )


def _network(entry: _Entry, seen: dict[object, object], roots: _ListRoots) -> PeerNetwork:
    service = entry.text("service", required=True)
    if not SERVICE_RE.match(service) or service == "none":
        raise entry.fail(f"service name {service!r} must be lowercase, without spaces", "service")
    category = entry.vocabulary("category", ACTIVITIES)
    prefixes = list(_prefixes(entry, seen, required=False))
    list_file = entry.text("prefix_file")
    list_format = entry.text("prefix_format") or "text"
    if list_format not in PREFIX_FORMATS:
        raise entry.fail(
            f"unknown prefix_format {list_format!r}; expected one of {', '.join(PREFIX_FORMATS)}",
            "prefix_format",
        )
    if list_file is not None:
        prefixes += _prefix_file(entry, list_file, list_format, roots, seen)
    elif "prefix_format" in entry.values:
        raise entry.fail("prefix_format needs a prefix_file", "prefix_format")
    if not prefixes:
        raise entry.fail("a network needs prefixes or a prefix_file")
    return PeerNetwork(
        service=service,
        category=category,
        prefixes=tuple(prefixes),
        source=entry.text("source") or "",
        origin=entry.origin(),
    )


class _ListRoots:
    """Folders a ruleset may read list files from: its own folder, and the
    folders its caller allows."""

    def __init__(self, base_dir: Path | None, allowed_dirs: Sequence[str | Path]) -> None:
        self.base_dir = base_dir
        self.folders = [Path(d).resolve() for d in
                        ([base_dir] if base_dir is not None else []) + list(allowed_dirs)]

    def locate(self, entry: _Entry, name: str) -> tuple[Path, Path]:
        """(the path as written, resolved), or a RuleError if it lies outside."""
        shown = Path(name) if self.base_dir is None else self.base_dir / name
        try:
            real = shown.resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            reason = getattr(exc, "strerror", None) or "cannot be resolved"
            raise entry.fail(f"cannot read {shown}: {reason}", "prefix_file") from None
        if not any(real.is_relative_to(folder) for folder in self.folders):
            where = (f"the ruleset's folder {self.base_dir}" if self.base_dir is not None
                     else "no folder (the ruleset is text)")
            raise entry.fail(
                f"{shown} is outside {where}; list files are read only from there, or from "
                "the folders given as load_rules(..., allowed_dirs=[...])",
                "prefix_file",
            )
        return shown, real


def _read_list_file(entry: _Entry, shown: Path, real: Path) -> bytes:
    """The bytes of a regular file of at most MAX_LIST_FILE_BYTES, opened
    without blocking (a FIFO would) and without following a link swapped in
    since it was resolved."""
    def refuse(problem: str) -> RuleError:
        return entry.fail(f"{shown} {problem}", "prefix_file")

    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except OSError as exc:
        raise refuse(f"cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise refuse("is not a regular file")
        if info.st_size > MAX_LIST_FILE_BYTES:
            raise refuse(f"is larger than the {MAX_LIST_FILE_BYTES >> 20} MiB limit for list files")
        data = f.read(MAX_LIST_FILE_BYTES + 1)
    if len(data) > MAX_LIST_FILE_BYTES:
        raise refuse(f"is larger than the {MAX_LIST_FILE_BYTES >> 20} MiB limit for list files")
    if info.st_size == 0 and data:
        # Pseudo-files (/proc, /sys) report no size but hold content.
        raise refuse("is not a regular file (a pseudo-file such as those under /proc)")
    return data


def _prefix_file(
    entry: _Entry, name: str, format: str, roots: _ListRoots, seen: dict[object, object]
) -> list[str]:
    """Prefixes from a list file in one of the published formats (plain
    text: one per line, '#' starts a comment). Errors give the file and
    line, never the line's text (the file may hold anything)."""
    shown, real = roots.locate(entry, name)
    text = _decode(_read_list_file(entry, shown, real), str(shown), "list of prefixes")
    numbered = prefix_list(text, str(shown), format)
    bad = _unparsable([prefix for prefix, _ in numbered])
    if bad is not None:
        raise RuleError("not an IPv4 or IPv6 prefix such as 175.45.176.0/22", str(shown),
                        numbered[bad][1])
    out = []
    for prefix, number in numbered:
        try:
            net = _network_of(prefix)
        except ValueError:
            raise RuleError("not a prefix: host bits are set below its length", str(shown),
                            number) from None
        if net in seen:
            raise RuleError(f"prefix {net} is already listed by {seen[net]}", str(shown), number)
        seen[net] = f"{shown}:{number}"
        out.append(prefix)
    return out


def _protocol(entry: _Entry) -> int:
    value = entry.get("protocol", (str, int), required=True)
    if isinstance(value, int):
        if not 0 <= value <= 255:
            raise entry.fail(f"protocol number {value} is outside 0..255", "protocol")
        return value
    if value.lower() not in PROTOCOL_NAMES:
        raise entry.fail(
            f"unknown protocol {value!r}; expected one of {', '.join(PROTOCOL_NAMES)} "
            "or a protocol number",
            "protocol",
        )
    return PROTOCOL_NAMES[value.lower()]


def _port_ranges(entry: _Entry) -> list[tuple[int, int]]:
    values = entry.get("ports", list, required=True)
    out = []
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool):
            first = last = v
        elif isinstance(v, str) and re.fullmatch(r"\d{1,5}-\d{1,5}", v.strip()):
            a, b = v.strip().split("-")
            first, last = int(a), int(b)
        else:
            raise entry.fail(f"{v!r} is not a port or a 'first-last' range", "ports", v)
        if not (0 <= first <= 65535 and 0 <= last <= 65535):
            raise entry.fail(f"port {v!r} is outside 0..65535", "ports", v)
        if first > last:
            raise entry.fail(f"range {v!r} ends before it starts", "ports", v)
        out.append((first, last))
    return out


def _ports(entry: _Entry, seen: dict[tuple[int, int, int], str]) -> list[PortRule]:
    protocol = _protocol(entry)
    app = entry.vocabulary("app", APPS)
    activity = entry.vocabulary("activity", ACTIVITIES)
    if app is None and activity is None:
        raise entry.fail("a port rule needs an app or an activity")
    weak = entry.get("weak", bool)
    if protocol in TRANSPORTS:
        ranges = _port_ranges(entry)
    elif "ports" in entry.values:
        raise entry.fail("only tcp and udp rules take ports", "ports")
    else:
        ranges = [(0, 0)]
    rules = []
    for first, last in ranges:
        rule = PortRule(
            protocol=protocol,
            first_port=first,
            last_port=last,
            app=app,
            activity=activity,
            weak=True if weak is None else weak,
            source=entry.text("source") or "",
            origin=entry.origin(),
        )
        if rule.key in seen:
            raise entry.fail(
                f"{rule.describe()} is already ruled by {seen[rule.key]}",
                "ports",
                first if first == last else f"{first}-{last}",
            )
        seen[rule.key] = entry.label
        rules.append(rule)
    return rules


def normalise_suffix(text: str) -> str | None:
    """Lowercase suffix without a trailing dot, or None if it is not a
    domain name."""
    s = text.strip().lower().rstrip(".")
    labels = s.split(".")
    if not s or len(s) > 253 or not all(LABEL_RE.match(label) for label in labels):
        return None
    return s


def _domain(entry: _Entry, seen: dict[str, str]) -> DomainRule:
    service = entry.text("service", required=True)
    if not SERVICE_RE.match(service) or service == "none":
        raise entry.fail(f"service name {service!r} must be lowercase, without spaces", "service")
    category = entry.vocabulary("category", ACTIVITIES, required=True)
    suffixes = []
    for text in entry.strings("suffixes", required=True):
        suffix = normalise_suffix(text)
        if suffix is None:
            raise entry.fail(f"{text!r} is not a domain name suffix", "suffixes", text)
        if suffix in seen:
            raise entry.fail(
                f"suffix {suffix!r} is already listed by {seen[suffix]}", "suffixes", text
            )
        seen[suffix] = entry.label
        suffixes.append(suffix)
    if not suffixes:
        raise entry.fail("a domain rule needs at least one suffix", "suffixes")
    narrows = entry.strings("narrows")
    for name in narrows:
        if not SERVICE_RE.match(name) or name in (service, "none"):
            raise entry.fail(f"narrows: {name!r} is not another service's name", "narrows", name)
    return DomainRule(
        service, category, tuple(suffixes), entry.text("source") or "", entry.origin(),
        narrows=tuple(narrows),
    )


def _as_rule(entry: _Entry, seen: dict[object, object]) -> AsRule:
    """An [[asn]] entry; an AS number or name listed twice in one file is a
    tie and an error."""
    service = entry.text("service", required=True)
    if not SERVICE_RE.match(service) or service == "none":
        raise entry.fail(f"service name {service!r} must be lowercase, without spaces", "service")
    org = entry.text("org", required=True).strip()
    if not org:
        raise entry.fail("org must name the organisation", "org")
    category = entry.vocabulary("category", ACTIVITIES)
    confidence = entry.text("confidence") or "low"
    if confidence not in AS_CONFIDENCES:
        raise entry.fail(
            f"confidence {confidence!r} is not one of {', '.join(AS_CONFIDENCES)}", "confidence"
        )
    numbers = []
    for value in entry.get("asns", list) or []:
        text = value.upper().removeprefix("AS") if isinstance(value, str) else value
        number = int(text) if isinstance(text, str) and text.isdigit() else text
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= MAX_ASN:
            raise entry.fail(f"{value!r} is not an AS number (1..{MAX_ASN})", "asns", value)
        if number in seen:
            raise entry.fail(f"AS{number} is already listed by {seen[number]}", "asns", value)
        seen[number] = entry.label
        numbers.append(number)
    names = []
    for name in entry.strings("as_names"):
        if not name.strip():
            raise entry.fail("an AS name must not be empty", "as_names", name)
        if ("name", name) in seen:
            raise entry.fail(f"AS name {name!r} is already listed by {seen[('name', name)]}",
                             "as_names", name)
        seen[("name", name)] = entry.label
        names.append(name)
    if not numbers and not names:
        raise entry.fail("an [[asn]] entry needs asns or as_names")
    return AsRule(
        service=service,
        org=org,
        category=category,
        asns=tuple(numbers),
        as_names=tuple(names),
        confidence=confidence,
        source=entry.text("source") or "",
        origin=entry.origin(),
    )


def _service_info(entry: _Entry, seen: dict[str, str]) -> ServiceInfo:
    name = entry.text("name", required=True)
    if not SERVICE_RE.match(name) or name == "none":
        raise entry.fail(f"service name {name!r} must be lowercase, without spaces", "name")
    if name in seen:
        raise entry.fail(f"service {name!r} is already described by {seen[name]}", "name")
    seen[name] = entry.label
    country = entry.text("country") or ""
    if country and not COUNTRY_RE.match(country):
        raise entry.fail(
            f"country must be an ISO 3166-1 alpha-2 code such as 'US', got {country!r}", "country"
        )
    org = entry.text("org") or ""
    if org and (not SERVICE_RE.match(org) or org == "none"):
        raise entry.fail(f"org label {org!r} must be lowercase, without spaces", "org")
    return ServiceInfo(
        name=name,
        org=org,
        operator=entry.text("operator") or "",
        country=country,
        source=entry.text("source") or "",
        origin=entry.origin(),
    )


def _dated_list(entry: _Entry, seen: dict[str, str], roots: _ListRoots) -> DatedList:
    """A [[dated_list]] entry, its files read (relative to the ruleset's
    folder, and only inside it or the allowed folders)."""
    service = entry.text("service", required=True)
    if not SERVICE_RE.match(service) or service == "none":
        raise entry.fail(f"service name {service!r} must be lowercase, without spaces", "service")
    if service in seen:
        raise entry.fail(f"dated list {service!r} is already given by {seen[service]}", "service")
    seen[service] = entry.label
    category = entry.vocabulary("category", ACTIVITIES)
    fmt = entry.text("format", required=True)
    if fmt not in LIST_FORMATS:
        raise entry.fail(f"unknown format {fmt!r}; expected one of {', '.join(LIST_FORMATS)}",
                         "format")
    flags = entry.strings("flags")
    if flags and fmt not in ("tor-consensus", "onionoo-details"):
        raise entry.fail("flags select Tor relays (formats tor-consensus, onionoo-details)",
                         "flags")
    names = entry.strings("files", required=True)
    if not names:
        raise entry.fail("a dated list needs at least one file", "files")
    paths = []
    for name in names:
        # Only from the ruleset's folder or allowed_dirs, links resolved
        # first; a pattern's matches are checked one by one.
        shown = Path(name) if roots.base_dir is None else roots.base_dir / name
        matches = (sorted(glob.glob(str(shown))) if any(c in name for c in "*?[")
                   else [str(shown)])
        for match in matches or [str(shown)]:
            try:
                real = Path(match).resolve()
            except (OSError, RuntimeError) as exc:
                reason = getattr(exc, "strerror", None) or "cannot be resolved"
                raise entry.fail(f"{name!r}: {reason}", "files", name) from None
            if not any(real.is_relative_to(folder) for folder in roots.folders):
                where = ("the ruleset's folder" if roots.base_dir is not None
                         else "the allowed folders (the ruleset is text)")
                raise entry.fail(f"{name!r} is outside {where}; list files are read only from "
                                 "there or from load_rules(..., allowed_dirs=[...])",
                                 "files", name)
            if not real.exists():
                raise entry.fail(f"{name!r}: no such file or folder", "files", name)
            paths.append(match)
    try:
        return read_dated_list(paths, fmt, service=service, category=category,
                               source=entry.text("source") or "", flags=flags,
                               origin=entry.origin())
    except DatedListError as exc:
        raise RuleError(exc.reason, exc.path, exc.line) from None
    except InputError as exc:
        raise entry.fail(exc.reason, "files") from None

