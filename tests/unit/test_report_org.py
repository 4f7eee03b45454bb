"""Reports grouped by organisation: a by-service report rolled up with the
rules' [[service]] org labels (Report.by_organisation, report --by org)."""

from __future__ import annotations

import csv
import io
import pickle
from pathlib import Path

import pytest

import nkclass
from nkclass.cli import main
from nkclass.demo.synth import generate
from nkclass.report import Report, aggregate

NAMES = Path(__file__).parent.parent / "data" / "pcap" / "names"


@pytest.fixture(scope="module")
def by_service():
    clf = nkclass.Classifier()
    report = Report("month", "service")
    for batch in generate(flows=30_000, seed=7):
        report.merge_in(aggregate(clf.classify(batch), bucket="month", by="service"),
                        consume=True)
    return report


def test_organisation_totals_are_the_sums_of_their_services(by_service):
    orgs = nkclass.load_rules().organisations()
    by_org = by_service.by_organisation(orgs)
    assert by_org.by == "org"
    for metric in ("flows", "bytes", "packets"):
        assert by_org.total(metric) == by_service.total(metric)
    members = {}
    for service in {key[3] for key in by_service.groups}:
        members.setdefault(orgs.get(service, service), []).append(service)
    assert len(members["google"]) >= 2 and len(members["tencent"]) >= 3
    for org, services in members.items():
        for metric in ("flows", "bytes", "hosts", "peers"):
            assert by_org.total(metric, org=org) == by_service.total(metric, service=services)
    assert pickle.loads(pickle.dumps(by_org)) == by_org


def test_an_org_report_is_sliced_by_org_only(by_service):
    by_org = by_service.by_organisation({})
    assert by_org.total("flows", org="youtube") == by_service.total("flows", service="youtube")
    with pytest.raises(ValueError, match="not by service"):
        by_org.total("flows", service="youtube")
    with pytest.raises(ValueError, match="needs a report made with by='service'"):
        by_org.by_organisation({})


def test_report_by_org_groups_a_capture_by_organisation(capsys):
    assert main(["report", str(NAMES / "webminer-authedmine-wss-tls.pcap"), "--by", "org",
                 "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    flows = {}
    for row in rows:
        flows[row["org"]] = flows.get(row["org"], 0) + int(row["flows"])
    # Firefox's update, settings and telemetry hosts, and its OCSP checks
    assert flows["mozilla"] >= 15 and flows["digicert"] == 3
    assert "google-apis" not in flows and flows["google"] >= 2
