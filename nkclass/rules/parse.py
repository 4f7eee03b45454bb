"""Reading ruleset files (TOML) into the validated model, with file:line errors.

tomllib parses the values; a light scan of the text finds the line of each
``[[table]]`` entry and of the keys and items inside it, so that every error
points at the line to fix.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nkclass.errors import RuleError
from nkclass.labels import ACTIVITIES, APPS
from nkclass.rules.model import (
    AS_CONFIDENCES,
    CONFIDENCE_LEVELS,
    MAX_ASN,
    PROTOCOL_NAMES,
    TRANSPORTS,
    AsRule,
    DomainRule,
    FlowShapeOptions,
    Origin,
    PeerNetwork,
    PortRule,
    Ruleset,
    ServiceInfo,
    WatchedNetwork,
)
from nkclass.rules.published import PREFIX_FORMATS, read_prefix_list

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9_.+-]{0,63}$")
LABEL_RE = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
TOML_POSITION_RE = re.compile(r"\(at line (\d+), column \d+\)")

TABLE_KEYS = {
    "ruleset": {"name", "version", "description"},
    "activities": {"precedence"},
    "watched": {"name", "prefixes", "description", "source", "confidence", "server_activity"},
    "network": {"service", "category", "prefixes", "prefix_file", "prefix_format", "source"},
    "port": {"protocol", "ports", "app", "activity", "weak", "source"},
    "domain": {"service", "category", "suffixes", "source"},
    "asn": {"service", "org", "category", "confidence", "asns", "as_names", "source"},
    "service": {"name", "operator", "country", "source"},
    "flow_shape": {"threshold", "min_flows", "enabled"},
}
ENTRY_TABLES = ("watched", "network", "port", "domain", "asn", "service")
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


def parse_file(path: str | Path) -> Ruleset:
    """Read and validate one ruleset file (no layering)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise RuleError(f"cannot read ruleset: {exc.strerror}", str(p)) from None
    except UnicodeDecodeError as exc:
        raise RuleError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(p)) from None
    return parse_text(text, str(p), base_dir=p.parent)


def parse_text(text: str, path: str = "<rules>", base_dir: Path | None = None) -> Ruleset:
    """Validate ruleset TOML ``text``; ``path`` names it in errors."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = TOML_POSITION_RE.search(str(exc))
        message = TOML_POSITION_RE.sub("", str(exc)).strip()
        raise RuleError(f"invalid TOML: {message}", path, int(m.group(1)) if m else None) from None
    loc = _Locator(text)
    for key, value in doc.items():
        if key not in TABLE_KEYS:
            raise RuleError(
                f"unknown table {key!r}; expected one of {', '.join(TABLE_KEYS)}",
                path,
                _one_based(loc.entry(key) if key in loc.singles else loc.key(None, key)),
            )
        if key in ENTRY_TABLES and not isinstance(value, list):
            raise RuleError(
                f"{key!r} must be written as [[{key}]] tables", path, _one_based(loc.entry(key))
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

    prefix_seen: dict[tuple[str, int], str] = {}
    watched = [_watched(e, prefix_seen) for e in entries("watched")]
    names = [w.name for w in watched]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise _Entry("watched", i, {}, path, loc).fail(f"path name {name!r} is used twice")
    networks = [_network(e, prefix_seen, base_dir) for e in entries("network")]
    port_seen: dict[tuple[int, int, int], str] = {}
    ports = [rule for e in entries("port") for rule in _ports(e, port_seen)]
    suffix_seen: dict[str, str] = {}
    domains = [_domain(e, suffix_seen) for e in entries("domain")]
    as_seen: dict[object, str] = {}
    as_rules = [_as_rule(e, as_seen) for e in entries("asn")]
    info_seen: dict[str, str] = {}
    service_info = [_service_info(e, info_seen) for e in entries("service")]
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
        service_info=tuple(service_info),
    )


def _flow_shape(entry: _Entry) -> FlowShapeOptions:
    if not isinstance(entry.values, dict):
        raise entry.fail("must be written as a [flow_shape] table")
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


def _check_prefix(text: str, seen: dict[tuple[str, int], str], owner: str) -> str | None:
    """Canonical form of a prefix, or the reason it is invalid."""
    try:
        net = ipaddress.ip_network(text.strip(), strict=True)
    except ValueError as exc:
        return str(exc).replace("does not appear to be an IPv4 or IPv6 network", "is not a prefix")
    key = (str(net.network_address), net.prefixlen)
    if key in seen:
        return f"prefix {net} is already listed by {seen[key]}"
    seen[key] = owner
    return None


def _prefixes(entry: _Entry, seen: dict[tuple[str, int], str], required: bool) -> tuple[str, ...]:
    values = entry.strings("prefixes", required)
    for text in values:
        problem = _check_prefix(text, seen, entry.label)
        if problem:
            raise entry.fail(problem, "prefixes", text)
    return tuple(v.strip() for v in values)


def _watched(entry: _Entry, seen: dict[tuple[str, int], str]) -> WatchedNetwork:
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


def _network(entry: _Entry, seen: dict[tuple[str, int], str], base_dir: Path | None) -> PeerNetwork:
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
        prefixes += _prefix_file(entry, list_file, list_format, base_dir, seen)
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


def _prefix_file(
    entry: _Entry, name: str, format: str, base_dir: Path | None,
    seen: dict[tuple[str, int], str],
) -> list[str]:
    """Prefixes from a list file in one of the published formats (plain
    text: one per line, '#' starts a comment)."""
    path = Path(name) if base_dir is None else base_dir / name
    if not path.is_file():
        raise entry.fail(f"cannot read {path}: no such file", "prefix_file")
    out = []
    for text, number in read_prefix_list(path, format):
        problem = _check_prefix(text, seen, f"{path}:{number}")
        if problem:
            raise RuleError(problem, str(path), number)
        out.append(text)
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
    return DomainRule(
        service, category, tuple(suffixes), entry.text("source") or "", entry.origin()
    )


def _as_rule(entry: _Entry, seen: dict[object, str]) -> AsRule:
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
    return ServiceInfo(
        name=name,
        operator=entry.text("operator") or "",
        country=country,
        source=entry.text("source") or "",
        origin=entry.origin(),
    )
