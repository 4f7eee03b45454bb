"""Planted operators abroad, and decoys, for the pivot (nkclass.report.pivot).

Flows of hosts outside the watched prefixes, in the same synthetic world as
:func:`nkclass.demo.synth.generate` (same seed: the same service, pool and
peer addresses), to add to its flows:

* **operators**: behave like the watched users. They use the services the
  watched hosts use (games, streaming, Chinese sites, mail, news, exchanges,
  VPS; a third of them also mine on the same pools), with the watched users'
  daily pattern in Pyongyang time (UTC+9).
* **decoys**: keep the same hours and browse, but only services the
  background hosts use as well (Google, Facebook, YouTube, Amazon, Baidu,
  QQ): they share only common peers with the watched hosts.

Host addresses are random public addresses (nothing implied about any real
network or country).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from nkclass.addresses import format_addresses
from nkclass.demo.synth import (
    _TLS,
    _WEB_TLS_HTTP,
    ALL_COMPONENTS,
    SYNTH_SCHEMA,
    _Component,
    _component_flows,
    _day,
    _World,
    assemble,
    random_public,
)

#: Components operators draw their flows from, with weights.
OPERATOR_MIX = (
    ("gaming", 0.2),
    ("streaming", 0.2),
    ("chinese", 0.15),
    ("email", 0.1),
    ("news", 0.1),
    ("work_web", 0.1),
    ("crypto_exchange", 0.1),
    ("vps", 0.05),
)
MINING_SHARE = 0.3  # of an operator's flows, for the operators who mine

DECOY = _Component(
    "decoy_web",
    "social",
    (("2017-01-01", 1.0), ("2020-01-01", 1.0)),
    (
        ("google", 0.3),
        ("facebook", 0.2),
        ("youtube", 0.2),
        ("amazon", 0.1),
        ("baidu", 0.1),
        ("qq", 0.1),
    ),
    (*_WEB_TLS_HTTP, _TLS),
    (1.5e5, 1.0, 700),
    (20, 1.0),
    "business",
)


@dataclass(frozen=True)
class Abroad:
    """Which planted hosts are which (addresses as text)."""

    operators: tuple[str, ...]
    decoys: tuple[str, ...]
    miners: tuple[str, ...]


def generate_abroad(
    seed: int = 2020,
    operators: int = 20,
    decoys: int = 20,
    flows_per_host: int = 600,
    start: str = "2017-01-01",
    end: str = "2020-01-01",
) -> tuple[list[pa.RecordBatch], Abroad]:
    """Flows of ``operators`` planted operators and ``decoys`` decoys (about
    ``flows_per_host`` each, Poisson) in :data:`SYNTH_SCHEMA`, one batch per
    host, and the truth. ``seed`` must be the one given to
    :func:`nkclass.demo.synth.generate` for the peers to be shared."""
    for name, value in (("operators", operators), ("decoys", decoys)):
        if value < 0:
            raise ValueError(f"The {name!r} parameter must be >= 0. Got {value!r} instead.")
    if flows_per_host < 1:
        raise ValueError(f"The 'flows_per_host' parameter must be >= 1. Got {flows_per_host!r}.")
    w = _World(seed)
    rng = np.random.default_rng([seed, 0xAB20AD])
    taken = np.concatenate([w.public, *(ips for ips, _ in w.paths), w.miners])
    hosts = np.setdiff1d(random_public(rng, 4 * (operators + decoys) + 16), taken)
    hosts = rng.permutation(hosts)[: operators + decoys]
    mining = rng.random(operators) < 1 / 3
    index = {c.name: i for i, c in enumerate(ALL_COMPONENTS)}
    d0, d1 = _day(start), _day(end)
    batches = []
    for k, address in enumerate(hosts):
        n = max(1, int(rng.poisson(flows_per_host)))
        day = np.sort(rng.integers(d0, d1, n))
        if k < operators:
            names, weights = zip(*OPERATOR_MIX, strict=True)
            weights = np.array(weights) * (1 - MINING_SHARE if mining[k] else 1)
            names = (*names, "mining") if mining[k] else names
            weights = np.append(weights, MINING_SHARE) if mining[k] else weights
            pick = rng.choice(len(names), n, p=weights / weights.sum())
            parts = [
                _component_flows(w, index[name], day[pick == j], rng, 0.0)
                for j, name in enumerate(names)
                if (pick == j).any()
            ]
        else:
            parts = [_component_flows(w, index["bg_web"], day, rng, 0.0, component=DECOY)]
        for part in parts:
            part.src = np.full(len(part.src), address, np.uint32)
            part.src_as = np.zeros(len(part.src), np.uint32)
        table = assemble(w, parts, rng)
        batches.append(pa.RecordBatch.from_arrays(table["arrays"], schema=SYNTH_SCHEMA))
    text = format_addresses(hosts.astype(np.uint32)).to_pylist()
    truth = Abroad(
        operators=tuple(text[:operators]),
        decoys=tuple(text[operators:]),
        miners=tuple(t for t, m in zip(text[:operators], mining, strict=True) if m),
    )
    return batches, truth
