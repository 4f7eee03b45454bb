"""Compiling a Ruleset into the native tables the classifier runs on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from nkclass import _core
from nkclass.addresses import parse_prefixes
from nkclass.classify.stages.prefix import PrefixBuildError, build_native
from nkclass.errors import RuleError, SchemaValueError, describe
from nkclass.labels import ACTIVITIES, ACTIVITY_CODES, APP_CODES, EVIDENCE, RANKS
from nkclass.rules.check import check_ruleset
from nkclass.rules.model import Ruleset

if TYPE_CHECKING:
    from nkclass.asn.attribution import AsAttribution
    from nkclass.asn.database import AsDatabase

MAX_PATHS = 65535


@dataclass(frozen=True)
class CompiledRules:
    """Native tables plus the name lists that decode their codes.

    ``image`` holds every array the classifier was built from, keyed as
    ``nkclass._core.encode_ruleset`` takes them: the content of a compiled
    ruleset file (:mod:`nkclass.rules.compiled`)."""

    paths: tuple[str, ...]
    services: tuple[str, ...]
    native: _core.Classifier
    path_table: _core.PrefixTable
    service_table: _core.PrefixTable
    port_table: _core.PortTable
    domain_suffixes: tuple[str, ...]
    domain_services: np.ndarray  # uint32 service code per suffix
    domain_activities: np.ndarray  # uint8 activity code per suffix
    attribution: AsAttribution | None = None  # the AS stage, when on
    dated_prefixes: tuple[str, ...] = ()  # dated-list prefixes, by key
    image: dict = field(default_factory=dict, repr=False, compare=False)


def _prefix_table(rows: list[tuple[str, int, str]], what: str) -> _core.PrefixTable:
    """rows: (prefix text, label, owner). Later rows win over earlier ones
    with the same prefix: each file was checked for duplicates when parsed,
    so a repeat here is a later layer overriding an earlier one."""
    try:
        parsed = parse_prefixes([r[0] for r in rows], what)
    except SchemaValueError:
        for text, _, owner in rows:
            try:
                parse_prefixes([text], what)
            except SchemaValueError:
                raise RuleError(f"{owner}: {describe(text)} is not a prefix such as "
                                "175.45.176.0/22") from None
        raise
    labels = np.array([r[1] for r in rows], dtype=np.uint32)
    try:
        return build_native(parsed, labels, last_wins=True)
    except PrefixBuildError as exc:
        text, _, owner = rows[exc.row]
        raise RuleError(f"{owner}: prefix {text}: {exc.reason}") from None


def _precedence(ruleset: Ruleset) -> np.ndarray:
    """Rank per activity code: the ruleset's order first, then the
    vocabulary's for activities it does not list."""
    order = list(ruleset.precedence) + [a for a in ACTIVITIES[1:] if a not in ruleset.precedence]
    ranks = np.full(len(ACTIVITIES), 0xFFFF, dtype=np.uint16)
    for position, name in enumerate(order):
        ranks[ACTIVITY_CODES[name]] = position
    return ranks


def compile_rules(
    ruleset: Ruleset, *, as_stage: bool = False, database: AsDatabase | None = None
) -> CompiledRules:
    """Build the native classifier for ``ruleset`` (checked first: it may
    have been built by hand or unpickled rather than parsed); with
    ``as_stage`` the peer's AS (from ``database`` or the flows' AS fields)
    is evidence too."""
    check_ruleset(ruleset)
    paths = ruleset.paths
    if len(paths) > MAX_PATHS:
        raise RuleError(
            f"at most {MAX_PATHS - 1} watched paths are supported, got {len(paths) - 1}"
        )
    services = ruleset.services
    service_code = {name: code for code, name in enumerate(services)}

    path_rows = [
        (p, code, f"watched {w.name!r} ({w.origin})")
        for code, w in enumerate(ruleset.watched, start=1)
        for p in w.prefixes
    ]
    service_rows = [
        (p, service_code[n.service], f"network {n.service!r} ({n.origin})")
        for n in ruleset.networks
        for p in n.prefixes
    ]
    path_table = _prefix_table(path_rows, "watched prefixes")
    service_table = _prefix_table(service_rows, "network prefixes")

    ports = ruleset.ports
    port_table = _core.PortTable(
        np.array([p.protocol for p in ports], dtype=np.uint8),
        np.array([p.first_port for p in ports], dtype=np.uint16),
        np.array([p.last_port for p in ports], dtype=np.uint16),
        False,
    )
    port_codes = np.zeros((len(ports) + 1, 3), dtype=np.uint8)
    for i, p in enumerate(ports, start=1):
        port_codes[i] = (
            APP_CODES[p.app] if p.app else 0,
            ACTIVITY_CODES[p.activity] if p.activity else 0,
            RANKS["weak"] if p.weak else RANKS["asn"],
        )
    port_evidence = np.full(len(ports) + 1, EVIDENCE["port"], dtype=np.uint16)
    port_evidence[0] = 0

    service_codes = np.zeros((len(services), 3), dtype=np.uint8)
    service_evidence = np.zeros(len(services), dtype=np.uint16)
    for n in ruleset.networks:
        code = service_code[n.service]
        activity = ACTIVITY_CODES[n.category] if n.category else 0
        service_codes[code] = (0, activity, RANKS["named"])
        service_evidence[code] = EVIDENCE["ip_list"]

    server_activity = np.zeros(len(paths), dtype=np.uint8)
    for code, w in enumerate(ruleset.watched, start=1):
        if w.server_activity:
            server_activity[code] = ACTIVITY_CODES[w.server_activity]

    suffixes = tuple(s for d in ruleset.domains for s in d.suffixes)
    domain_services = np.array(
        [service_code[d.service] for d in ruleset.domains for _ in d.suffixes], dtype=np.uint32
    )
    domain_activities = np.array(
        [ACTIVITY_CODES[d.category] for d in ruleset.domains for _ in d.suffixes], dtype=np.uint8
    )

    try:
        inspector = _core.PayloadInspector(list(suffixes), domain_services, domain_activities)
    except _core.BuildError as exc:
        index, reason = exc.args
        owner = [d for d in ruleset.domains for _ in d.suffixes][index]
        raise RuleError(f"domain {owner.service!r} ({owner.origin}): suffix "
                        f"{suffixes[index]!r}: {reason}") from None

    from nkclass import __version__

    attribution = None
    if as_stage:
        from nkclass.asn.attribution import build_attribution

        attribution = build_attribution(ruleset, service_code, database)
    image = {
        "meta": [ruleset.name, ruleset.version, f"nkclass {__version__}"],
        "path_names": list(paths),
        "service_names": list(services),
        "paths": path_table.__getstate__(),
        "services": service_table.__getstate__(),
        "ports": port_table.__getstate__()[:3],
        "port_codes": port_codes,
        "port_evidence": port_evidence,
        "service_codes": service_codes,
        "service_evidence": service_evidence,
        "server_activity": server_activity,
        "precedence": _precedence(ruleset),
        "domain_suffixes": list(suffixes),
        "domain_services": domain_services,
        "domain_activities": domain_activities,
        "shape_min_conditions": ruleset.shape.min_conditions,
        "shape_min_flows": ruleset.shape.min_flows,
        "dns_tunnel": ruleset.dns_tunnel_options.native(),
        "as_stage": attribution is not None,
        "as_rows": None,
    }
    if attribution is not None:
        image.update(attribution.image())
        if database is not None:
            image["as_rows"] = database.native.__getstate__()
    dated_kwargs, dated_prefixes = _dated_stage(ruleset, service_code)
    image["dated"] = bool(dated_kwargs)
    if dated_kwargs:
        image.update(
            dated_rows=dated_kwargs["dated_prefixes"].__getstate__(),
            dated_intervals=dated_kwargs["dated"].rows(),
            dated_codes=dated_kwargs["dated_codes"],
            dated_evidence=dated_kwargs["dated_evidence"],
            dated_services=dated_kwargs["dated_services"],
        )
    native = _core.Classifier(
        path_table,
        service_table,
        port_table,
        port_codes,
        port_evidence,
        service_codes,
        service_evidence,
        server_activity,
        image["precedence"],
        payload=inspector,
        shape_min_conditions=ruleset.shape.min_conditions,
        shape_min_flows=ruleset.shape.min_flows,
        dns_tunnel=image["dns_tunnel"],
        **_as_arguments(attribution, database.native if database is not None else None),
        **dated_kwargs,
    )
    return CompiledRules(
        paths=paths,
        services=services,
        native=native,
        path_table=path_table,
        service_table=service_table,
        port_table=port_table,
        domain_suffixes=suffixes,
        domain_services=domain_services,
        domain_activities=domain_activities,
        attribution=attribution,
        dated_prefixes=dated_prefixes,
        image=image,
    )


def _dated_stage(ruleset: Ruleset, service_code: dict[str, int]) -> tuple[dict, tuple[str, ...]]:
    """The native dated-list stage: every list's prefixes in one prefix
    table (label = key + 1, a prefix shared by lists is one key) and the
    intervals per key, each carrying the verdict of its (list, service)."""
    if not ruleset.dated_lists:
        return {}, ()
    key_of: dict[str, int] = {}
    keys, starts, ends, verdicts = [], [], [], []
    codes = [(0, 0, 0)]
    services = [0]
    for lst in ruleset.dated_lists:
        global_key = np.array([key_of.setdefault(p, len(key_of)) for p in lst.prefixes],
                              np.uint32)
        activity = ACTIVITY_CODES[lst.category] if lst.category else 0
        first_code = len(codes)
        for name in lst.services:
            codes.append((0, activity, RANKS["named"]))
            services.append(service_code[name])
        keys.append(global_key[lst.key] if len(lst.key) else np.zeros(0, np.uint32))
        starts.append(lst.start)
        ends.append(lst.end)
        verdicts.append((lst.service.astype(np.int64) + first_code).astype(np.uint16))
    if len(codes) > 0xFFFF:
        raise RuleError(f"dated lists name {len(codes) - 1} services; at most 65534 are supported")
    prefixes = tuple(key_of)
    table = _prefix_table([(p, k + 1, "dated list") for p, k in key_of.items()], "dated lists")
    intervals = _core.DatedIntervals(
        np.ascontiguousarray(np.concatenate(keys), np.uint32),
        np.ascontiguousarray(np.concatenate(starts), np.int64),
        np.ascontiguousarray(np.concatenate(ends), np.int64),
        np.ascontiguousarray(np.concatenate(verdicts), np.uint16),
        len(prefixes),
    )
    evidence = np.full(len(codes), EVIDENCE["ip_list"], np.uint16)
    evidence[0] = 0
    return {
        "dated_prefixes": table,
        "dated": intervals,
        "dated_codes": np.array(codes, np.uint8).reshape(-1, 3),
        "dated_evidence": evidence,
        "dated_services": np.array(services, np.uint32),
    }, prefixes


def _as_arguments(attribution: AsAttribution | None, table: object) -> dict:
    """The AS stage's arguments of the native classifier (none when off)."""
    if attribution is None:
        return {}
    return {
        "as_table": table,
        "as_codes": attribution.codes,
        "as_evidence": attribution.evidence,
        "as_services": attribution.services,
        "as_entry_verdict": attribution.entry_verdict,
    }
