"""Time and memory of the pivot at scale (a plain script; the pytest
benchmark against a pandas baseline is benchmarks/test_bench_pivot.py).

    python benchmarks/pivot_scale.py [FLOWS] [CANDIDATES]

Random flows (default 10M) in batches of 1M: 30% from 260 watched hosts,
the rest from CANDIDATES (default 100k) outside hosts, to 2M peers of
Zipf-like popularity; classified, gathered into HostEvidence, then ranked.
Prints the time of each step and the peak resident memory.
"""

from __future__ import annotations

import pickle
import resource
import sys
import time

import numpy as np

import nkclass
from nkclass.report.pivot import HostEvidence, pivot

BATCH = 1_000_000
T2019 = 1_546_300_800_000


def main(flows: int = 10_000_000, candidates: int = 100_000) -> None:
    rng = np.random.default_rng(1)
    watched = (0xAF2DB000 + rng.choice(1024, 260, replace=False)).astype(np.uint32)
    outside = rng.integers(0x01000000, 0x60000000, candidates, dtype=np.uint32)
    peers = rng.integers(0x60000000, 0xDF000000, 2_000_000, dtype=np.uint32)
    popularity = np.cumsum(1.0 / np.arange(1, len(peers) + 1) ** 0.9)
    popularity /= popularity[-1]
    clf = nkclass.Classifier(asn=False)
    evidence = HostEvidence()
    classify_s = add_s = 0.0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for start in range(0, flows, BATCH):
        n = min(BATCH, flows - start)
        from_watched = rng.random(n) < 0.3
        batch = {
            "src_ip": np.where(
                from_watched,
                watched[rng.integers(0, len(watched), n)],
                outside[rng.integers(0, candidates, n)],
            ),
            "dst_ip": peers[np.minimum(np.searchsorted(popularity, rng.random(n)), len(peers) - 1)],
            "src_port": rng.integers(1024, 65535, n).astype(np.uint16),
            "dst_port": rng.choice(np.array([443, 80, 3333, 1194, 22, 53], np.uint16), n),
            "protocol": np.full(n, 6, np.uint8),
            "ts_start": T2019 + rng.integers(0, 365 * 86_400_000, n),
        }
        t0 = time.perf_counter()
        result = clf.classify(batch)
        t1 = time.perf_counter()
        evidence.add(result)
        classify_s += t1 - t0
        add_s += time.perf_counter() - t1
    t0 = time.perf_counter()
    ranked = pivot(evidence, 50)
    pivot_s = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hosts = len(np.unique(evidence.counts.hour_keys >> np.uint64(8)))
    print(
        f"{flows:,} flows, {hosts:,} hosts ({len(evidence.watched)} watched), "
        f"{len(evidence.pairs):,} host-peer pairs"
    )
    print(
        f"classify {classify_s:.1f} s; evidence {add_s:.1f} s ({flows / add_s / 1e6:.2f} M "
        f"flows/s); pivot {pivot_s:.1f} s; top score {ranked[0].score}"
    )
    print(
        f"peak RSS {peak / 1024:.0f} MB (before the flows {before / 1024:.0f} MB); "
        f"evidence pickled {len(pickle.dumps(evidence)) / 1e6:.0f} MB"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
