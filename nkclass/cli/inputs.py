"""Reading flows for the commands: any format nkclass.read knows, or
nkclass's own classified output (whose labels are used as they are)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator

from nkclass.classify import Classifier, label_batch
from nkclass.cli.classify import classifier_from_args, learned_names, open_inputs, save_names
from nkclass.flows.read import FlowReader


class Progress:
    """A one-line flow counter on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.flows = 0
        self.last = 0.0

    def add(self, n: int) -> None:
        self.flows += n
        now = time.monotonic()
        if self.enabled and now - self.last > 0.2:
            print(f"\r{self.flows:,} flows", end="", file=sys.stderr, flush=True)
            self.last = now

    def done(self) -> None:
        if self.enabled:
            print("\r" + " " * 30 + "\r", end="", file=sys.stderr, flush=True)


def labelled_batches(
    args: argparse.Namespace, classifier: Classifier | None = None
) -> tuple[Iterator[object], FlowReader]:
    """Classified results (or already-classified tables) for every input
    batch, and the reader whose stats describe what was read; ``classifier``
    (default: the one the arguments describe) labels them."""
    classifier = classifier or classifier_from_args(args)
    reader = open_inputs(args)
    names = learned_names(args, reader)
    progress = Progress()

    def batches() -> Iterator[object]:
        for batch in reader:
            progress.add(batch.num_rows)
            yield label_batch(classifier, batch, names)
        progress.done()
        save_names(args, names)

    return batches(), reader


def print_read_summary(reader: FlowReader) -> None:
    print(f"nkclass: {reader.stats.summary()}", file=sys.stderr)
