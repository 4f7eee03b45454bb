"""Checking a Ruleset object built outside the parser.

Rulesets read from files are checked as they are parsed, with file and
line. A Ruleset can also be built by hand or arrive in a pickle (a
Classifier pickles as its ruleset), where any field may hold anything:
:func:`check_ruleset` holds such a ruleset to the same rules before it is
compiled, so a bad value is a :class:`RuleError` naming the entry instead of
a wrapped number or a KeyError deep in the compiler.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from nkclass.errors import RuleError, describe
from nkclass.labels import ACTIVITIES, APPS
from nkclass.rules.model import (
    AS_CONFIDENCES,
    CONFIDENCE_LEVELS,
    DNS_TUNNEL_INT_RANGES,
    DNS_TUNNEL_MAX_ENTROPY,
    MAX_ASN,
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
from nkclass.rules.parse import COUNTRY_RE, NAME_RE, SERVICE_RE, normalise_suffix


def _where(kind: str, entry: object) -> str:
    origin = getattr(entry, "origin", None)
    return f"{kind} ({origin})" if isinstance(origin, Origin) else kind


class _Checker:
    def __init__(self, what: str) -> None:
        self.what = what

    def fail(self, problem: str) -> RuleError:
        return RuleError(f"{self.what}: {problem}")

    def text(self, name: str, value: object) -> str:
        if not isinstance(value, str):
            raise self.fail(f"{name} must be a str, got {describe(value)}")
        return value

    def texts(self, name: str, values: object) -> tuple[str, ...]:
        if not isinstance(values, tuple) or not all(isinstance(v, str) for v in values):
            raise self.fail(f"{name} must be a tuple of str, got {describe(values)}")
        return values

    def vocabulary(self, name: str, value: object, names: tuple[str, ...], optional: bool) -> None:
        if value is None and optional:
            return
        if not isinstance(value, str) or value not in names or value == "unknown":
            raise self.fail(f"{name} {describe(value)} is not one of {', '.join(names[1:])}")

    def integer(self, name: str, value: object, low: int, high: int) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            raise self.fail(f"{name} must be an int in [{low}, {high}], got {describe(value)}")
        return value

    def prefixes(self, values: object) -> None:
        # Texts only: the compiler parses them and names a bad one.
        self.texts("prefixes", values)


def _watched(w: object) -> None:
    check = _Checker(_where("watched", w))
    if not isinstance(w, WatchedNetwork):
        raise check.fail(f"expected a WatchedNetwork, got {type(w).__name__}")
    name = check.text("name", w.name)
    if not NAME_RE.match(name) or name == "none":
        raise check.fail(f"path name {describe(name)} must be lowercase letters, digits and _")
    check.prefixes(w.prefixes)
    if not w.prefixes:
        raise check.fail("a watched path needs at least one prefix")
    for field in ("description", "source"):
        check.text(field, getattr(w, field))
    if w.confidence not in CONFIDENCE_LEVELS:
        raise check.fail(f"confidence {describe(w.confidence)} is not one of "
                         f"{', '.join(CONFIDENCE_LEVELS)}")
    check.vocabulary("server_activity", w.server_activity, ACTIVITIES, optional=True)


def _service(check: _Checker, service: object) -> None:
    if not isinstance(service, str) or not SERVICE_RE.match(service) or service == "none":
        raise check.fail(f"service name {describe(service)} must be lowercase, without spaces")


def _network(n: object) -> None:
    check = _Checker(_where("network", n))
    if not isinstance(n, PeerNetwork):
        raise check.fail(f"expected a PeerNetwork, got {type(n).__name__}")
    _service(check, n.service)
    # None: the network names its service without implying an activity.
    check.vocabulary("category", n.category, ACTIVITIES, optional=True)
    check.prefixes(n.prefixes)
    if not n.prefixes:
        raise check.fail("a network needs at least one prefix")
    check.text("source", n.source)


def _port(p: object) -> None:
    check = _Checker(_where("port rule", p))
    if not isinstance(p, PortRule):
        raise check.fail(f"expected a PortRule, got {type(p).__name__}")
    protocol = check.integer("protocol", p.protocol, 0, 255)
    first = check.integer("first_port", p.first_port, 0, 65535)
    last = check.integer("last_port", p.last_port, 0, 65535)
    if first > last:
        raise check.fail(f"port range {first}-{last} ends before it starts")
    if protocol not in TRANSPORTS and (first, last) != (0, 0):
        raise check.fail("only tcp and udp rules take ports")
    check.vocabulary("app", p.app, APPS, optional=True)
    check.vocabulary("activity", p.activity, ACTIVITIES, optional=True)
    if p.app is None and p.activity is None:
        raise check.fail("a port rule needs an app or an activity")
    if not isinstance(p.weak, bool):
        raise check.fail(f"weak must be a bool, got {describe(p.weak)}")
    check.text("source", p.source)


def _domain(d: object) -> None:
    check = _Checker(_where("domain", d))
    if not isinstance(d, DomainRule):
        raise check.fail(f"expected a DomainRule, got {type(d).__name__}")
    _service(check, d.service)
    check.vocabulary("category", d.category, ACTIVITIES, optional=False)
    for suffix in check.texts("suffixes", d.suffixes):
        if normalise_suffix(suffix) != suffix:
            raise check.fail(f"{describe(suffix)} is not a lowercase domain name suffix")
    if not d.suffixes:
        raise check.fail("a domain rule needs at least one suffix")
    for name in check.texts("narrows", d.narrows):
        _service(check, name)
    check.text("source", d.source)


def _as_rule(a: object) -> None:
    check = _Checker(_where("asn", a))
    if not isinstance(a, AsRule):
        raise check.fail(f"expected an AsRule, got {type(a).__name__}")
    _service(check, a.service)
    if not check.text("org", a.org).strip():
        raise check.fail("org must name the organisation")
    check.vocabulary("category", a.category, ACTIVITIES, optional=True)
    if a.confidence not in AS_CONFIDENCES:
        raise check.fail(f"confidence {describe(a.confidence)} is not one of "
                         f"{', '.join(AS_CONFIDENCES)}")
    if not isinstance(a.asns, tuple):
        raise check.fail(f"asns must be a tuple of AS numbers, got {describe(a.asns)}")
    for number in a.asns:
        check.integer("an AS number", number, 1, MAX_ASN)
    if not all(name.strip() for name in check.texts("as_names", a.as_names)):
        raise check.fail("an AS name must not be empty")
    if not a.asns and not a.as_names:
        raise check.fail("an [[asn]] entry needs asns or as_names")
    check.text("source", a.source)


def _service_info(info: object) -> None:
    check = _Checker(_where("service", info))
    if not isinstance(info, ServiceInfo):
        raise check.fail(f"expected a ServiceInfo, got {type(info).__name__}")
    _service(check, info.name)
    country = check.text("country", info.country)
    if country and not COUNTRY_RE.match(country):
        raise check.fail(f"country must be an ISO 3166-1 alpha-2 code, got {describe(country)}")
    if check.text("org", info.org):
        _service(check, info.org)
    check.text("operator", info.operator)
    check.text("source", info.source)


def _flow_shape(shape: object) -> None:
    check = _Checker(_where("flow_shape", shape))
    if not isinstance(shape, FlowShapeOptions):
        raise check.fail(f"expected FlowShapeOptions, got {type(shape).__name__}")
    threshold = shape.threshold
    if (not isinstance(threshold, int | float) or isinstance(threshold, bool)
            or not math.isfinite(threshold) or not 0 < threshold <= 1):
        raise check.fail(f"threshold must be a number in (0, 1], got {describe(threshold)}")
    check.integer("min_flows", shape.min_flows, 1, 2**32 - 1)
    if not isinstance(shape.enabled, bool):
        raise check.fail(f"enabled must be a bool, got {describe(shape.enabled)}")


def check_dns_tunnel(options: object) -> None:
    """Raise :class:`RuleError` unless ``options`` are DnsTunnelOptions
    within their ranges."""
    check = _Checker(_where("dns_tunnel", options))
    if not isinstance(options, DnsTunnelOptions):
        raise check.fail(f"expected DnsTunnelOptions, got {type(options).__name__}")
    for key, (low, high) in DNS_TUNNEL_INT_RANGES.items():
        check.integer(key, getattr(options, key), low, high)
    entropy = options.entropy_bits
    if (not isinstance(entropy, int | float) or isinstance(entropy, bool)
            or not 0 < entropy <= DNS_TUNNEL_MAX_ENTROPY):
        raise check.fail(f"entropy_bits must be a number in (0, {DNS_TUNNEL_MAX_ENTROPY:g}], "
                         f"got {describe(entropy)}")
    if not isinstance(options.enabled, bool):
        raise check.fail(f"enabled must be a bool, got {describe(options.enabled)}")


def _unique(what: str, keys: Iterable[object]) -> None:
    seen: set[object] = set()
    for key in keys:
        if key in seen:
            raise RuleError(f"{what} {describe(key)} appears twice")
        seen.add(key)


def check_ruleset(ruleset: object) -> None:
    """Raise :class:`RuleError` unless ``ruleset`` is a :class:`Ruleset` whose
    every field holds what a parsed file could have given it (layering's
    results included: later layers may repeat prefixes across services)."""
    if not isinstance(ruleset, Ruleset):
        raise RuleError(f"expected a Ruleset, got {type(ruleset).__name__}")
    top = _Checker("ruleset")
    for field in ("name", "version", "description"):
        top.text(field, getattr(ruleset, field))
    top.texts("files", ruleset.files)
    for name in top.texts("precedence", ruleset.precedence):
        top.vocabulary("precedence activity", name, ACTIVITIES, optional=False)
    _unique("precedence activity", ruleset.precedence)
    for field, check in (("watched", _watched), ("networks", _network), ("ports", _port),
                         ("domains", _domain), ("asns", _as_rule),
                         ("service_info", _service_info)):
        entries = getattr(ruleset, field)
        if not isinstance(entries, tuple):
            raise top.fail(f"{field} must be a tuple, got {type(entries).__name__}")
        for entry in entries:
            check(entry)
    _unique("watched path", (w.name for w in ruleset.watched))
    _unique("port rule", (p.key for p in ruleset.ports))
    _unique("domain suffix", (s for d in ruleset.domains for s in d.suffixes))
    _unique("AS number", (n for a in ruleset.asns for n in a.asns))
    _unique("AS name", (n for a in ruleset.asns for n in a.as_names))
    _unique("described service", (i.name for i in ruleset.service_info))
    if ruleset.flow_shape is not None:
        _flow_shape(ruleset.flow_shape)
    if ruleset.dns_tunnel is not None:
        check_dns_tunnel(ruleset.dns_tunnel)
