"""``nkclass bench``: a quick throughput self-check on generated flows."""

from __future__ import annotations

import argparse
import time

import numpy as np

from nkclass.cli.classify import add_asn_options, classifier_from_args
from nkclass.cli.options import positive


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("bench", help="measure classification throughput on this machine")
    parser.add_argument("--flows", type=positive, default=5_000_000, help="flows per batch")
    parser.add_argument("--repeat", type=positive, default=3)
    parser.add_argument("--rules", action="append", default=[], metavar="FILE")
    add_asn_options(parser)
    parser.set_defaults(run=run)


def synthetic_flows(n: int, seed: int = 7) -> dict[str, np.ndarray]:
    """Seeded IPv4 flows: a tenth touch the default watched paths."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, 2**32, n, dtype=np.uint32)
    dst = rng.integers(0, 2**32, n, dtype=np.uint32)
    watched = rng.random(n) < 0.1
    src[watched] = 0xAF2DB000 + rng.integers(0, 1024, int(watched.sum()), dtype=np.uint32)
    ports = np.array([443, 80, 53, 22, 3333, 8333, 1194, 9001, 6881, 25], dtype=np.uint16)
    return {
        "src_ip": src,
        "dst_ip": dst,
        "src_port": rng.integers(1024, 65536, n, dtype=np.uint16),
        "dst_port": rng.choice(ports, n),
        "protocol": rng.choice(np.array([6, 17], dtype=np.uint8), n, p=[0.8, 0.2]),
    }


def run(args: argparse.Namespace) -> int:
    classifier = classifier_from_args(args)
    flows = synthetic_flows(args.flows)
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = classifier.classify(flows)
        best = min(best, time.perf_counter() - start)
    watched = int((result.path != 0).sum())
    print(
        f"classify: {args.flows:,} flows in {best:.3f} s = {args.flows / best / 1e6:.1f} M flows/s "
        f"(best of {args.repeat}, one core); {watched:,} touch a watched path"
    )
    return 0
