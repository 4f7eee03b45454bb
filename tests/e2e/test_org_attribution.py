"""On the real captures: the share of flows whose organisation nkclass names
correctly, with and without the payload, with the AS stage on and off.

The truth (tests/data/pcap/peer_orgs.csv) comes from the server names the
captures carry and from registry facts about the peer's address block, not
from the IP-to-AS table; flows whose peer organisation could not be
established that way (private addresses, pool hosts of unknown ownership)
are left out of the share. A flow names its organisation when the truth's
pattern matches its ``service`` or ``peer_org``.
"""

from __future__ import annotations

import csv
import ipaddress
import re
from pathlib import Path

import pyarrow as pa
import pytest

import nkclass

PCAPS = Path(__file__).parent.parent / "data" / "pcap"
with open(PCAPS / "peer_orgs.csv", encoding="utf-8") as fh:
    TRUTH = {row["peer_ip"]: row for row in csv.DictReader(fh)}
PAYLOAD = ("src_payload", "dst_payload")


def text(raw: bytes) -> str:
    addr = ipaddress.IPv6Address(raw)
    return str(addr.ipv4_mapped or addr)


def org_shares(payload: bool, asn: bool) -> tuple[int, int]:
    """(flows named correctly, flows with a known peer organisation)."""
    clf = nkclass.Classifier(asn=None if asn else False)
    right = total = 0
    for pcap in sorted(PCAPS.glob("*.pcap")):
        for batch in nkclass.read(pcap):
            table = pa.Table.from_batches([batch])
            if not payload:
                table = table.drop_columns([c for c in PAYLOAD if c in table.column_names])
            labelled = clf.classify(table).to_arrow().to_pylist()
            for row in labelled:
                side = row["side"]
                peer = row["src_ip"] if side == "dst" else row["dst_ip"]
                truth = TRUTH.get(text(peer))
                if truth is None:
                    continue
                total += 1
                named = f"{row['service']} {row.get('peer_org') or ''}".lower()
                right += re.search(truth["pattern"], named) is not None
    return right, total


@pytest.fixture(scope="module")
def shares():
    return {(payload, asn): org_shares(payload, asn)
            for payload in (False, True) for asn in (False, True)}


def test_every_truth_address_occurs_in_the_captures(shares):
    assert shares[(False, False)][1] >= len(TRUTH)


def test_as_attribution_names_most_organisations_without_payload(shares):
    right, total = shares[(False, True)]
    assert right / total >= 0.9, shares


def test_without_the_as_stage_only_published_lists_name_an_organisation(shares):
    right_off, total = shares[(False, False)]
    right_on, _ = shares[(False, True)]
    assert right_off < right_on and right_off / total <= 0.5, shares


def test_payload_names_never_lose_an_organisation_the_as_names(shares):
    assert shares[(True, True)][0] >= shares[(False, True)][0] - 1, shares
