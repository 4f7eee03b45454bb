"""The ruleset model: validated, immutable, layerable.

A :class:`Ruleset` is plain data (it pickles and compares); compiling it into
native tables is :mod:`nkclass.rules.compile`'s job.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nkclass.lists.dated import DatedList

PROTOCOL_NAMES = {
    "tcp/udp": 0,
    "icmp": 1,
    "tcp": 6,
    "udp": 17,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "sctp": 132,
}
PROTOCOL_LABELS = {code: name for name, code in PROTOCOL_NAMES.items()}
TRANSPORTS = (0, 6, 17)  # protocols whose rules name ports
CONFIDENCE_LEVELS = ("certain", "reported", "uncertain")


@dataclass(frozen=True)
class Origin:
    """Where an entry was written: file and 1-based line (None if unknown)."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line is not None else self.path


@dataclass(frozen=True)
class WatchedNetwork:
    """A watched network path: flows with an endpoint inside it get its name."""

    name: str
    prefixes: tuple[str, ...]
    description: str = ""
    source: str = ""
    confidence: str = "certain"
    server_activity: str | None = None  # activity when the watched side is the server
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PeerNetwork:
    """A labelled peer network (a service such as a mining pool or Tor relays).
    ``category`` None names the service without implying an activity (a CDN's
    published ranges)."""

    service: str
    category: str | None
    prefixes: tuple[str, ...]
    source: str = ""
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class PortRule:
    """What a port (range) or a bare IP protocol suggests. ``protocol`` 0
    means TCP and UDP. Weak rules give low confidence."""

    protocol: int
    first_port: int
    last_port: int
    app: str | None
    activity: str | None
    weak: bool = True
    source: str = ""
    origin: Origin | None = field(default=None, compare=False)

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.protocol, self.first_port, self.last_port)

    def describe(self) -> str:
        proto = PROTOCOL_LABELS.get(self.protocol, str(self.protocol))
        if self.protocol not in TRANSPORTS:
            return proto
        ports = (
            str(self.first_port)
            if self.first_port == self.last_port
            else f"{self.first_port}-{self.last_port}"
        )
        return f"{proto}/{ports}"


@dataclass(frozen=True)
class DomainRule:
    """Domain suffixes (matched on label boundaries) naming a service."""

    service: str
    category: str
    suffixes: tuple[str, ...]
    source: str = ""
    origin: Origin | None = field(default=None, compare=False)
    #: Services whose broader suffixes these narrow on purpose (mail.qq.com
    #: under qq.com): the ruleset checker asks for the declaration.
    narrows: tuple[str, ...] = ()


AS_CONFIDENCES = ("low", "medium")
MAX_ASN = 2**32 - 1


@dataclass(frozen=True)
class AsRule:
    """What a peer's AS says: the organisation and service running it and,
    when the AS implies one, an activity. ``asns`` match AS numbers (the
    exporter's fields or an IP-to-AS table); ``as_names`` match the
    organisation names of tables that carry no numbers, exactly.
    ``confidence`` "low" (multi-tenant networks: clouds, CDNs, hosting)
    ranks the activity with weak ports, "medium" with AS-number evidence."""

    service: str
    org: str
    category: str | None
    asns: tuple[int, ...]
    as_names: tuple[str, ...] = ()
    confidence: str = "low"
    source: str = ""
    origin: Origin | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ServiceInfo:
    """Who runs a named service: the organisation (a short label shared by
    its services, such as ``google`` for YouTube, Gmail and googleapis), the
    operator's legal name and the country of its headquarters (ISO 3166-1
    alpha-2), for reports that group services by organisation or by origin
    (for example Western against Chinese services)."""

    name: str
    operator: str = ""
    country: str = ""
    source: str = ""
    origin: Origin | None = field(default=None, compare=False)
    org: str = ""


SHAPE_CONDITIONS = 9


@dataclass(frozen=True)
class FlowShapeOptions:
    """The flow-shape stage: a (src, dst, dst_port) group of TCP flows whose
    score (conditions met / 9) is at least ``threshold`` and which holds at
    least ``min_flows`` flows makes its flows ``mining_suspect``."""

    threshold: float = 7 / SHAPE_CONDITIONS
    min_flows: int = 1
    enabled: bool = True
    origin: Origin | None = field(default=None, compare=False)

    @property
    def min_conditions(self) -> int:
        """Conditions needed (1..9), or 0 when the stage is disabled."""
        if not self.enabled:
            return 0
        return max(1, math.ceil(self.threshold * SHAPE_CONDITIONS - 1e-9))


#: The DNS tunnelling score's integer thresholds and their ranges (the
#: native scorer checks the same; see csrc/include/nkclass/dns_tunnel.hpp).
DNS_TUNNEL_INT_RANGES: dict[str, tuple[int, int]] = {
    "min_conditions": (1, 6),  # conditions a tunnel zone meets
    "min_queries": (0, 2**63 - 1),  # queries a zone needs in a batch to be scored
    "name_chars": (1, 253),  # long names: mean subdomain characters per query
    "label_bytes": (1, 63),  # long labels: a subdomain label this long
    "names": (1, 2**32 - 1),  # many names: distinct names in the zone
    "queries": (1, 2**63 - 1),  # volume: queries in the zone
}
#: The entropy threshold (bits per byte of the subdomain) lies in (0, 8].
DNS_TUNNEL_MAX_ENTROPY = 8.0


@dataclass(frozen=True)
class DnsTunnelOptions:
    """The DNS tunnelling score: a query zone with at least ``min_queries``
    queries in a batch is a tunnel when it meets ``min_conditions`` of six
    conditions, one of them long names or long labels. The other fields are
    the conditions' thresholds: mean subdomain characters per query
    (``name_chars``), a label of ``label_bytes`` bytes in half the queries,
    mean subdomain entropy (``entropy_bits`` per byte), distinct names
    (``names``) and queries (``queries``) in the zone; the data-carrying
    record types need half the queries."""

    min_conditions: int = 4
    min_queries: int = 10
    name_chars: int = 40
    label_bytes: int = 24
    entropy_bits: float = 3.5
    names: int = 20
    queries: int = 100
    enabled: bool = True
    origin: Origin | None = field(default=None, compare=False)

    def native(self) -> dict[str, int | float]:
        """The thresholds as the native scorer takes them (min_conditions 0
        when the stage is disabled)."""
        values = {key: getattr(self, key) for key in DNS_TUNNEL_INT_RANGES}
        values["min_conditions"] = self.min_conditions if self.enabled else 0
        values["entropy_bits"] = float(self.entropy_bits)
        return values


@dataclass(frozen=True)
class Ruleset:
    """Watched paths, labelled networks, port and domain rules, the activity
    precedence and service metadata. Build one with :func:`nkclass.load_rules`.

    A ruleset pickles; as with any pickle, unpickling can run arbitrary code,
    so only unpickle data you trust (load rules from TOML otherwise)."""

    name: str = ""
    version: str = ""
    description: str = ""
    watched: tuple[WatchedNetwork, ...] = ()
    networks: tuple[PeerNetwork, ...] = ()
    ports: tuple[PortRule, ...] = ()
    domains: tuple[DomainRule, ...] = ()
    asns: tuple[AsRule, ...] = ()
    precedence: tuple[str, ...] = ()  # strongest first; empty = vocabulary order
    files: tuple[str, ...] = ()  # the files layered into this ruleset, in order
    flow_shape: FlowShapeOptions | None = None  # None: the defaults
    dns_tunnel: DnsTunnelOptions | None = None  # None: the defaults
    service_info: tuple[ServiceInfo, ...] = ()  # operator and country of named services
    dated_lists: tuple[DatedList, ...] = ()  # entries valid for intervals (Tor relays, ...)

    @property
    def shape(self) -> FlowShapeOptions:
        """The flow-shape options in force (the defaults when unset)."""
        return self.flow_shape if self.flow_shape is not None else FlowShapeOptions()

    @property
    def dns_tunnel_options(self) -> DnsTunnelOptions:
        """The DNS tunnelling score's options in force (the defaults when unset)."""
        return self.dns_tunnel if self.dns_tunnel is not None else DnsTunnelOptions()

    @property
    def paths(self) -> tuple[str, ...]:
        """Watched path names in code order (code 0 is "none")."""
        return ("none", *(w.name for w in self.watched))

    @property
    def services(self) -> tuple[str, ...]:
        """Service names in code order (code 0 is "none")."""
        seen: dict[str, None] = {"none": None}
        for n in self.networks:
            seen.setdefault(n.service, None)
        for d in self.domains:
            seen.setdefault(d.service, None)
        for a in self.asns:
            seen.setdefault(a.service, None)
        for lst in self.dated_lists:
            for name in lst.services:
                seen.setdefault(name, None)
        return tuple(seen)

    def about(self, service: str) -> ServiceInfo | None:
        """The [[service]] entry of ``service`` (operator, country), if any."""
        for info in self.service_info:
            if info.name == service:
                return info
        return None

    def organisations(self) -> dict[str, str]:
        """Service name -> its organisation label, for every service the
        rules name; a service without a [[service]] ``org`` is its own
        organisation."""
        orgs = {i.name: i.org for i in self.service_info if i.org}
        return {s: orgs.get(s, s) for s in self.services[1:]}

    def countries(self) -> dict[str, str]:
        """Service name -> the operator's country: the service's own
        [[service]] country, else the country another service of its
        organisation gives; services placed by neither are left out."""
        by_org: dict[str, str] = {}
        for info in self.service_info:
            if info.org and info.country:
                by_org.setdefault(info.org, info.country)
        own = {i.name: i.country for i in self.service_info if i.country}
        out = {}
        for service, org in self.organisations().items():
            country = own.get(service) or by_org.get(org)
            if country:
                out[service] = country
        return out

    def service_categories(self) -> dict[str, str]:
        """Service name -> the category its [[network]] / [[domain]] rules
        give it (a [[domain]] rule wins over a [[network]] rule), for
        colouring charts by what a service is for."""
        out = {n.service: n.category for n in self.networks}
        for lst in self.dated_lists:
            out.update({name: lst.category for name in lst.services})
        out.update({d.service: d.category for d in self.domains})
        return out

    def with_dated_lists(self, *lists: DatedList) -> Ruleset:
        """This ruleset with dated lists laid over it (a list replaces one
        of the same service, as a later ruleset file's would)."""
        return self.layered(Ruleset(dated_lists=tuple(lists)))

    def layered(self, top: Ruleset) -> Ruleset:
        """This ruleset with ``top`` laid over it: entries of ``top`` replace
        entries here with the same watched name, service name (networks,
        [[service]] entries, dated lists), port key or domain suffix;
        everything else is kept, ``top``'s new entries come after."""
        watched = {w.name: w for w in self.watched}
        watched.update({w.name: w for w in top.watched})
        top_services = {n.service for n in top.networks}
        networks = [n for n in self.networks if n.service not in top_services]
        ports = {p.key: p for p in self.ports}
        ports.update({p.key: p for p in top.ports})
        top_suffixes = {s for d in top.domains for s in d.suffixes}
        domains = []
        for d in self.domains:
            kept = tuple(s for s in d.suffixes if s not in top_suffixes)
            if kept:
                domains.append(replace(d, suffixes=kept))
        top_as_services = {a.service for a in top.asns}
        top_numbers = {n for a in top.asns for n in a.asns}
        top_names = {n for a in top.asns for n in a.as_names}
        asns = []
        for a in self.asns:
            if a.service in top_as_services:
                continue
            kept = replace(a, asns=tuple(n for n in a.asns if n not in top_numbers),
                           as_names=tuple(n for n in a.as_names if n not in top_names))
            if kept.asns or kept.as_names:
                asns.append(kept)
        info = {i.name: i for i in self.service_info}
        info.update({i.name: i for i in top.service_info})
        top_lists = {lst.services[0] for lst in top.dated_lists}
        dated = [lst for lst in self.dated_lists if lst.services[0] not in top_lists]
        return Ruleset(
            name=top.name or self.name,
            version=top.version or self.version,
            description=top.description or self.description,
            watched=tuple(watched.values()),
            networks=(*networks, *top.networks),
            ports=tuple(ports.values()),
            domains=(*domains, *top.domains),
            asns=(*asns, *top.asns),
            precedence=top.precedence or self.precedence,
            files=(*self.files, *top.files),
            flow_shape=top.flow_shape if top.flow_shape is not None else self.flow_shape,
            dns_tunnel=top.dns_tunnel if top.dns_tunnel is not None else self.dns_tunnel,
            service_info=tuple(info.values()),
            dated_lists=(*dated, *top.dated_lists),
        )
