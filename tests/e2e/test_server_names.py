"""On real captures with payload: the TLS and HTTP flows whose server name
is visible (SNI, Host) get the service the name belongs to, from the names
alone (the AS stage off) and when AS numbers would guess otherwise."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

import nkclass
from tests.reference.sni_ref import client_hello_sni

PCAPS = Path(__file__).parent.parent / "data" / "pcap"
CAPTURES = sorted(PCAPS.glob("*.pcap")) + sorted((PCAPS / "names").glob("*.pcap"))
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
