"""What is labelled with and without payload, measured on the demo data and
on the real captures (the README's table; ``python -m
tests.e2e.test_payload_coverage`` prints it).

* Demo: the watched flows of the headline figures' components (gaming,
  streaming, Western and Chinese social/search/shopping, mining, Tor/VPN/
  proxy), whose activity the generator knows: the share labelled with it,
  and the share whose service is named. As generated (about 85% records
  without payload), with every payload removed, and with the AS stage and
  learned names off.
* Real captures (tests/data/pcap): every flow the independent DPI engine
  labelled, in its coarse categories (as test_fixture_labels), and the
  flows whose peer organisation is known (peer_orgs.csv, as
  test_org_attribution): with the payload, without it, without it and
  with the AS stage and learned names off.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

import nkclass
from nkclass.demo.synth import ALL_COMPONENTS, NAME_GRACE, generate
from tests.e2e.test_fixture_labels import EXPECTED, KNOWN, PCAPS, category, expected_key, text
from tests.e2e.test_org_attribution import PAYLOAD, TRUTH

DEMO_FLOWS = 100_000
#: Components of the headline figures and the activities that are right for them.
HEADLINE = {
    "gaming": {"gaming"},
    "streaming": {"streaming"},
    "western": {"social", "search_portal", "ecommerce"},
    "chinese": {"social", "search_portal", "ecommerce"},
    "mining": {"mining"},
    "obfuscation": {"vpn", "tor", "proxy"},
}
SETTINGS = {
    "as generated": (True, True),
    "payload removed": (False, True),
    "payload removed, AS and learned names off": (False, False),
}


def _drop_payload(table: pa.Table) -> pa.Table:
    return table.drop_columns([c for c in PAYLOAD if c in table.column_names])


def demo_shares(payload: bool, stages: bool, flows: int = DEMO_FLOWS) -> tuple[float, float, float]:
    """(share of flows without payload, activity right, service named) over
    the watched flows of the headline components."""
    table = pa.Table.from_batches(list(generate(flows=flows, seed=7, truth=True)))
    truth = table.column("synth_component").to_pylist()
    table = table.drop_columns(["synth_component"])
    has = [table[c].is_valid().to_numpy(zero_copy_only=False) for c in PAYLOAD]
    bare = 1 - float((has[0] | has[1]).mean())
    if not payload:
        table, bare = _drop_payload(table), 1.0
    clf = nkclass.Classifier(asn=None if stages else False)
    names = nkclass.NameCache(grace=NAME_GRACE) if stages else None
    result = clf.classify(table, names=names)
    activity = result.names("activity")
    service = result.names("service")
    right = named = total = 0
    for i in np.flatnonzero(result.side != 0).tolist():
        wanted = HEADLINE.get(truth[i])
        if wanted is None:
            continue
        total += 1
        right += activity[i] in wanted
        named += service[i] != "none"
    assert {c.name for c in ALL_COMPONENTS} >= set(HEADLINE)
    return bare, right / total, named / total


def fixture_shares(payload: bool, stages: bool) -> tuple[int, int, int, int]:
    """(flows whose category agrees with the DPI engine, flows, flows whose
    organisation is named correctly, flows with a known organisation)."""
    import re

    clf = nkclass.Classifier(asn=None if stages else False)
    names = nkclass.NameCache() if stages else None
    expected = {expected_key(row): row for row in EXPECTED}
    agree = org_right = org_total = 0
    for pcap in sorted({row["file"] for row in EXPECTED}):
        for batch in nkclass.read(PCAPS / pcap):
            table = pa.Table.from_batches([batch])
            if not payload:
                table = _drop_payload(table)
            for row in clf.classify(table, names=names).to_arrow().to_pylist():
                src, dst = text(row["src_ip"]), text(row["dst_ip"])
                key = (pcap, src, row["src_port"], dst, row["dst_port"], row["protocol"])
                want = expected.get(key)
                if want is not None:
                    got = category(row["app"], row["activity"])
                    agree += got == KNOWN.get((pcap, want["category"]), want["category"])
                truth = TRUTH.get(src if row["side"] == "dst" else dst)
                if truth is not None:
                    org_total += 1
                    named = f"{row['service']} {row.get('peer_org') or ''}".lower()
                    org_right += re.search(truth["pattern"], named) is not None
    return agree, len(expected), org_right, org_total


@pytest.fixture(scope="module")
def demo():
    return {name: demo_shares(*how) for name, how in SETTINGS.items()}


@pytest.fixture(scope="module")
def fixtures():
    return {name: fixture_shares(*how) for name, how in SETTINGS.items()}


def test_demo_is_mostly_flow_records_and_still_labelled(demo):
    bare, right, named = demo["as generated"]
    assert bare >= 0.8
    assert right >= 0.7 and named >= 0.7, demo


def test_learned_names_and_as_numbers_carry_flow_records(demo):
    # without any payload there are no DNS answers to learn from: AS numbers
    # alone still name more than nothing at all
    _, right_as, named_as = demo["payload removed"]
    _, right_off, named_off = demo["payload removed, AS and learned names off"]
    assert named_as > named_off and right_as >= right_off, demo
    assert demo["as generated"][1] > right_as, demo


def test_real_captures_without_payload(fixtures):
    agree_pl, flows, org_pl, orgs = fixtures["as generated"]
    agree_bare, _, org_bare, _ = fixtures["payload removed"]
    _, _, org_off, _ = fixtures["payload removed, AS and learned names off"]
    assert agree_bare < agree_pl <= flows  # the detectors need the payload
    assert org_bare >= 0.9 * orgs and org_off < org_bare, fixtures  # AS numbers do not
    assert org_pl >= org_bare, fixtures


def table() -> str:
    lines = ["| data | input | without payload | activity right | service named |",
             "|---|---|---|---|---|"]
    for name, (bare, right, named) in {n: demo_shares(*h, flows=300_000)
                                       for n, h in SETTINGS.items()}.items():
        lines.append(f"| demo (300k flows), headline flows | {name} | {bare:.0%} | {right:.0%} "
                     f"| {named:.0%} |")
    lines += ["", "| data | input | category agrees with DPI | organisation named |",
              "|---|---|---|---|"]
    for name, (agree, flows, org, orgs) in {n: fixture_shares(*h)
                                            for n, h in SETTINGS.items()}.items():
        shown = "with payload" if name == "as generated" else name
        lines.append(f"| real captures | {shown} | {agree} / {flows} ({agree / flows:.0%}) "
                     f"| {org} / {orgs} ({org / orgs:.0%}) |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(table())
