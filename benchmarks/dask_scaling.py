"""Speed-up of the Dask report from one worker process to two.

    python -m benchmarks.dask_scaling [--flows 2000000] [--files 16] [--rounds 5]

Writes seeded synthetic flows as a Parquet dataset (one file per part),
starts two distributed LocalClusters (1 and 2 single-threaded worker
processes), warms both (each worker builds its classifier once), then
times nkclass.scale.dask.report on each, alternating rounds (1, 2, 2, 1, ...)
so that a burst of other load moves one round rather than the verdict, and
prints the median time of each and the median per-round speed-up, with the
single-process time (nkclass.read, classify, aggregate in this process) for
reference. Needs the dask extra; not part of the pytest benchmark suite.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write_dataset(folder: Path, flows: int, files: int) -> None:
    from nkclass.demo.synth import generate

    table = pa.Table.from_batches(list(generate(flows=flows, seed=7)))
    step = -(-table.num_rows // files)
    for k in range(files):
        pq.write_table(table.slice(k * step, step), folder / f"part-{k:03d}.parquet")


def timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=2_000_000)
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()

    import distributed

    import nkclass
    from nkclass.classify import label_batch
    from nkclass.report import aggregate
    from nkclass.scale import dask as nkdask

    clf = nkclass.Classifier()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as where:
        folder = Path(where)
        write_dataset(folder, args.flows, args.files)

        def single() -> object:
            with nkclass.read(folder) as reader:
                return aggregate((label_batch(clf, b) for b in reader), "day")

        want = single()
        clusters, clients = {}, {}
        for workers in (1, 2):
            clusters[workers] = distributed.LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True,
                dashboard_address=":0", host="127.0.0.1")
            clients[workers] = distributed.Client(clusters[workers], set_as_default=False)
        try:
            def on(workers: int):
                def run() -> object:
                    with clients[workers].as_current():
                        return nkdask.report(folder, clf, bucket="day")
                return run

            for workers in (1, 2):  # warm-up: imports and classifiers on every worker
                assert on(workers)() == want
            times = {1: [], 2: [], 0: []}
            for r in range(args.rounds):
                order = (1, 2) if r % 2 == 0 else (2, 1)
                for workers in order:
                    times[workers].append(timed(on(workers)))
                times[0].append(timed(single))
        finally:
            for workers in (1, 2):
                clients[workers].close()
                clusters[workers].close()

    ratios = [a / b for a, b in zip(times[1], times[2], strict=True)]
    print(f"{args.flows:,} flows in {args.files} Parquet files, {args.rounds} rounds; "
          f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, "
          f"on {os.cpu_count()} cores")
    for label, key in (("single process", 0), ("dask, 1 worker", 1), ("dask, 2 workers", 2)):
        median = statistics.median(times[key])
        print(f"{label:16} {median:7.2f} s  {args.flows / median / 1e6:5.2f} M flows/s  "
              f"(rounds: {', '.join(f'{t:.2f}' for t in times[key])})")
    print(f"speed-up 1 -> 2 workers: {statistics.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
