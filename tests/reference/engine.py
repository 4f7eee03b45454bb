"""Slow, obviously-correct references the native code is checked against.

Plain ``ipaddress`` objects and dictionaries: no cleverness, so a mismatch
points at the native code.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from nkclass.labels import ACTIVITIES, EVIDENCE
from nkclass.rules import Ruleset

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address


def as_address(value: object) -> IPAddr:
    """An address from text, an int (IPv4, host order) or 16 bytes (IPv6);
    IPv4-mapped IPv6 becomes the IPv4 address it maps (nkclass's policy)."""
    if isinstance(value, bytes | bytearray):
        addr = ipaddress.IPv6Address(bytes(value))
    elif isinstance(value, int):
        addr = ipaddress.IPv4Address(value)
    else:
        addr = ipaddress.ip_address(value)
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def as_network(text: str) -> IPNet:
    """A prefix; IPv6 prefixes inside ::ffff:0:0/96 (length >= 96) become IPv4."""
    net = ipaddress.ip_network(text, strict=True)
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96:
        mapped = net.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.IPv4Network((mapped, net.prefixlen - 96))
    return net


class ReferenceLpm:
    """Longest-prefix match by scanning every prefix."""

    def __init__(self, prefixes: list[str], labels: list[int]) -> None:
        self.rows: dict[IPNet, int] = {}
        for text, label in zip(prefixes, labels, strict=True):
            self.rows[as_network(text)] = label  # later rows win

    def lookup(self, address: object) -> int:
        addr = as_address(address)
        best, best_len = 0, -1
        for net, label in self.rows.items():
            if net.version == addr.version and addr in net and net.prefixlen > best_len:
                best, best_len = label, net.prefixlen
        return best


@dataclass
class RefLabels:
    path: str
    side: str
    service: str
    app: str
    activity: str
    evidence: set[str]
    confidence: str


RANK = {"weak": 1, "asn": 2, "named": 3, "payload": 4}
CONFIDENCE = {0: "none", 1: "low", 2: "medium", 3: "medium", 4: "high"}


class ReferenceClassifier:
    """The classifier's address, port and list stages, one flow at a time.

    It models batches without payload or measurement columns and without a
    pair cache; the flow-shape score has its own reference
    (tests/reference/flow_shape.py)."""

    def __init__(self, rules: Ruleset) -> None:
        self.rules = rules
        self.paths = ReferenceLpm(
            [p for w in rules.watched for p in w.prefixes],
            [i for i, w in enumerate(rules.watched, 1) for _ in w.prefixes],
        )
        services = rules.services
        self.service_names = services
        self.services = ReferenceLpm(
            [p for n in rules.networks for p in n.prefixes],
            [services.index(n.service) for n in rules.networks for _ in n.prefixes],
        )
        self.category = {services.index(n.service): n.category for n in rules.networks}
        order = list(rules.precedence) + [a for a in ACTIVITIES[1:] if a not in rules.precedence]
        self.precedence = {name: i for i, name in enumerate(order)}

    def port_rule(self, protocol: int, sport: int, dport: int):
        def matching(port: int | None):
            best = None
            for rule in self.rules.ports:  # narrowest range wins, later wins ties
                if port is None:
                    ok = rule.protocol == protocol and protocol not in (0, 6, 17)
                else:
                    ok = (
                        rule.protocol in (0, protocol) and rule.first_port <= port <= rule.last_port
                    )
                if ok and (
                    best is None
                    or rule.last_port - rule.first_port <= best.last_port - best.first_port
                ):
                    best = rule
            return best

        if protocol in (6, 17):
            return matching(dport) or matching(sport)
        return matching(None)

    def classify(
        self, src: object, dst: object, sport: int, dport: int, protocol: int
    ) -> RefLabels:
        ps, pd = self.paths.lookup(src), self.paths.lookup(dst)
        side = {(0, 0): "none", (1, 0): "src", (0, 1): "dst", (1, 1): "both"}[(ps > 0, pd > 0)]
        ss, sd = self.services.lookup(src), self.services.lookup(dst)
        service = {"src": sd, "dst": ss}.get(side, sd or ss)
        candidates = []  # (rank, app, activity, evidence)
        if service:
            candidates.append((RANK["named"], None, self.category[service], "ip_list"))
        if pd and self.rules.watched[pd - 1].server_activity:
            candidates.append(
                (RANK["weak"], None, self.rules.watched[pd - 1].server_activity, "watched")
            )
        rule = self.port_rule(protocol, sport, dport)
        if rule is not None:
            candidates.append(
                (RANK["weak"] if rule.weak else RANK["asn"], rule.app, rule.activity, "port")
            )
        app, app_rank, app_ev = "unknown", 0, set()
        act, act_rank, act_ev = "unknown", 0, set()
        for rank, c_app, c_act, ev in candidates:
            if c_app:
                if rank > app_rank:
                    app, app_rank, app_ev = c_app, rank, {ev}
                elif rank == app_rank and c_app == app:
                    app_ev.add(ev)
            if c_act:
                better = rank > act_rank or (
                    rank == act_rank and self.precedence[c_act] < self.precedence.get(act, 1 << 16)
                )
                if better:
                    act, act_rank, act_ev = c_act, rank, {ev}
                elif rank == act_rank and c_act == act:
                    act_ev.add(ev)
        path_code = ps or pd
        return RefLabels(
            path=self.rules.paths[path_code],
            side=side,
            service=self.service_names[service],
            app=app,
            activity=act,
            evidence=app_ev | act_ev,
            confidence=CONFIDENCE[act_rank],
        )


def evidence_set(text: str) -> set[str]:
    return set(text.split("|")) - {""} if text else set()


assert set(EVIDENCE) >= {"ip_list", "port", "watched"}
