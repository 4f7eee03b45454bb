"""The pivot on the demo world with planted operators abroad and decoys
(nkclass.demo.abroad), end to end through ``nkclass pivot --format json``:
precision at k and recall of the planted operators."""

from __future__ import annotations

import json

import pytest

from nkclass.cli import main
from nkclass.demo.abroad import generate_abroad
from nkclass.demo.synth import generate
from nkclass.flows.write import FlowWriter

OPERATORS = DECOYS = 20


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    extra, truth = generate_abroad(
        seed=2020, operators=OPERATORS, decoys=DECOYS, flows_per_host=100
    )
    path = tmp_path_factory.mktemp("abroad") / "flows.parquet"
    with FlowWriter(path, "parquet") as writer:
        for batch in [*generate(flows=300_000, seed=2020), *extra]:
            writer.write(batch)
    return path, truth


def test_planted_operators_rank_first_and_decoys_below_them(world, capsys):
    path, truth = world
    assert main(["pivot", str(path), "-n", "50", "--format", "json", "--no-asn"]) == 0
    out = json.loads(capsys.readouterr().out)
    ranked = [c["host"] for c in out["candidates"]]
    scores = [c["score"] for c in out["candidates"]]
    assert scores == sorted(scores, reverse=True) and len(ranked) == 50
    operators = set(truth.operators)
    precision_at_20 = sum(h in operators for h in ranked[:20]) / 20
    recall_at_50 = sum(h in operators for h in ranked) / OPERATORS
    assert precision_at_20 >= 0.9 and recall_at_50 == 1.0
    last_operator = max(ranked.index(h) for h in operators)
    decoys = [ranked.index(h) for h in truth.decoys if h in ranked]
    assert all(rank > last_operator for rank in decoys)
    first = out["candidates"][0]
    assert first["shared_peers"] >= 10 and first["rare_shared"][0]["hosts"] >= 2
    assert (
        out["watched_hosts"] == 260 and out["ipv6_flows_left_out"] == 0
    )  # 240 users, 12 miners, 8 servers
    miners = [c for c in out["candidates"] if c["host"] in truth.miners]
    assert miners and all(
        "mining_suspect" in c["activities"] or "mining" in c["activities"] for c in miners
    )
