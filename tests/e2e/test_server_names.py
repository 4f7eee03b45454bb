"""On real captures with payload: the TLS and HTTP flows whose server name
is visible (SNI, Host) get the service the name belongs to, from the names
alone (the AS stage off) and when AS numbers would guess otherwise.

``python -m tests.e2e.test_server_names`` prints how many TLS, HTTP and QUIC
flows of every capture in tests/data (the shared fixtures and the protocol
captures) show a server name and get a service (the rules README's table)."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

import nkclass
from tests.reference.sni_ref import client_hello_sni

PCAPS = Path(__file__).parent.parent / "data" / "pcap"
CAPTURES = sorted(PCAPS.glob("*.pcap")) + sorted((PCAPS / "names").glob("*.pcap"))
#: Every capture with payload: the shared fixtures and the protocol captures.
ALL_CAPTURES = CAPTURES + sorted((PCAPS.parent / "protocols").glob("*.pcap*"))
WEB_APPS = ("tls", "http", "quic")
HOST_RE = re.compile(rb"\r\nHost:[ \t]*([^\r\n:]+)", re.IGNORECASE)
#: Names no service list should claim: the Zeek project's site in an HTTP
#: test, Tor's random cover names and a loopback host.
NOBODY = re.compile(r"^(bro\.org|www\.[a-z0-9]+\.com|localhost)$")


def server_name(payload: bytes | None) -> str | None:
    if not payload:
        return None
    name = client_hello_sni(payload)
    if name is None and (m := HOST_RE.search(payload[:4096])):
        name = m.group(1).decode("latin-1").lower()
    return name


def named_flows(asn: bool) -> list[tuple[str, str]]:
    """(server name, service) of every TLS/HTTP flow showing a name."""
    clf = nkclass.Classifier(asn=None if asn else False)
    out = []
    for pcap in CAPTURES:
        for batch in nkclass.read(pcap):
            for row in clf.classify(pa.Table.from_batches([batch])).to_arrow().to_pylist():
                if row["app"] not in ("tls", "http"):
                    continue
                name = server_name(row["src_payload"]) or server_name(row["dst_payload"])
                if name is not None:
                    out.append((name, row["service"]))
    return out


@pytest.fixture(scope="module")
def by_names():
    return named_flows(asn=False)


def test_every_visible_name_of_a_known_operator_gets_a_service(by_names):
    assert len(by_names) >= 35
    missed = sorted({name for name, service in by_names if service == "none"})
    assert all(NOBODY.match(name) for name in missed), missed


def test_background_names_get_their_operators_service(by_names):
    named = dict(by_names)
    assert named["versioncheck-bg.addons.mozilla.org"] == "mozilla"
    assert named["detectportal.firefox.com"] == "mozilla"
    assert named["ocsp.digicert.com"] == "digicert"
    assert named["ocsp.pki.goog"] == "google-trust-services"
    assert named["safebrowsing.googleapis.com"] == "google-apis"
    assert load_org(named["safebrowsing.googleapis.com"]) == "google"


def load_org(service: str) -> str:
    return nkclass.load_rules().organisations()[service]


def test_a_visible_name_beats_the_guess_of_the_peer_as(by_names):
    with_as = named_flows(asn=True)
    assert [name for name, _ in with_as] == [name for name, _ in by_names]
    changed = [(a, b) for a, b in zip(by_names, with_as, strict=True)
               if a[1] != "none" and a[1] != b[1]]
    assert changed == []


def service_shares(rules: nkclass.Ruleset | None = None, asn: bool = False,
                   captures: list[Path] = ALL_CAPTURES) -> dict[str, tuple[int, int, int, int]]:
    """Per app (tls, http, quic): flows, flows showing a server name (SNI or
    Host), flows with a service, and flows showing a name that get a service."""
    clf = nkclass.Classifier(rules, asn=None if asn else False)
    counts = {app: [0, 0, 0, 0] for app in WEB_APPS}
    for pcap in captures:
        for batch in nkclass.read(pcap):
            rows = clf.classify(pa.Table.from_batches([batch]), server_names=True).to_arrow()
            for row in rows.select(["app", "service", "sni", "host"]).to_pylist():
                if row["app"] not in counts:
                    continue
                named = row["sni"] is not None or row["host"] is not None
                served = row["service"] != "none"
                tally = counts[row["app"]]
                tally[0] += 1
                tally[1] += named
                tally[2] += served
                tally[3] += named and served
    return {app: tuple(tally) for app, tally in counts.items()}


def test_measured_names_and_services_agree_with_the_reference_parsers(by_names):
    # the table counts the classifier's own sni/host columns; the reference
    # SNI and Host parsers above must find the same named flows and services
    shares = service_shares(captures=CAPTURES)
    named = shares["tls"][1] + shares["http"][1]
    named_served = shares["tls"][3] + shares["http"][3]
    assert named == len(by_names)
    assert named_served == sum(service != "none" for _, service in by_names)


def table(rules: nkclass.Ruleset | None = None) -> str:
    lines = ["| app | flows | server name shown | service named | of those showing a name |",
             "|---|---|---|---|---|"]
    for app, (flows, named, served, named_served) in service_shares(rules).items():
        share = f"{named_served} / {named} ({named_served / named:.0%})" if named else "-"
        lines.append(f"| {app} | {flows} | {named} | {served} ({served / max(flows, 1):.0%}) "
                     f"| {share} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
