"""Reading one batch ahead on a background thread (nkclass.flows.readahead)
and through nkclass.read: same batches in the same order, errors at their
place, bounded look-ahead, and a clean stop part-way."""

from __future__ import annotations

import gc
import threading
import time
from pathlib import Path

import pytest

import nkclass
from nkclass import InputError
from nkclass.flows.readahead import ReadAhead

FLOWS = Path(__file__).parent.parent / "data" / "flows"


class Produced:
    """A generator's progress, seen from the test: how many items it has
    started and whether its finally block ran."""

    def __init__(self) -> None:
        self.started = 0
        self.closed = threading.Event()

    def items(self, n: int, fail_at: int | None = None):
        try:
            for i in range(n):
                self.started += 1
                if i == fail_at:
                    raise InputError(f"bad record {i}", "flows.csv")
                yield i
        finally:
            self.closed.set()


def wait_for(condition, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_items_arrive_in_order_and_the_stream_ends():
    produced = Produced()
    ahead = ReadAhead(produced.items(50))
    assert list(ahead) == list(range(50))
    assert next(ahead, "end") == "end"
    assert produced.closed.is_set()


def test_an_error_is_raised_at_its_place_with_its_traceback():
    produced = Produced()
    ahead = ReadAhead(produced.items(10, fail_at=3))
    assert [next(ahead) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(InputError, match="bad record 3") as raised:
        next(ahead)
    assert any(frame.name == "items" for frame in raised.traceback)
    assert next(ahead, "end") == "end"


@pytest.mark.parametrize("depth", [1, 3])
def test_the_reader_runs_at_most_depth_items_ahead(depth):
    produced = Produced()
    ahead = ReadAhead(produced.items(100), depth)
    assert next(ahead) == 0
    # The consumer holds item 0; the thread may start `depth` more, never more.
    assert wait_for(lambda: produced.started == 1 + depth)
    time.sleep(0.2)
    assert produced.started == 1 + depth
    ahead.close()


def test_nothing_is_read_before_the_first_next():
    produced = Produced()
    ahead = ReadAhead(produced.items(5))
    time.sleep(0.1)
    assert produced.started == 0
    ahead.close()
    assert produced.started == 0


def test_close_part_way_stops_the_thread_and_runs_the_generators_finally():
    produced = Produced()
    ahead = ReadAhead(produced.items(1000))
    assert next(ahead) == 0
    ahead.close()
    assert produced.closed.is_set()
    assert not any(t.name == "nkclass-read-ahead" and t.is_alive()
                   for t in threading.enumerate() if t is ahead._thread)
    assert next(ahead, "end") == "end"


def test_an_abandoned_read_ahead_stops_its_thread():
    produced = Produced()
    ahead = ReadAhead(produced.items(1000))
    next(ahead)
    thread = ahead._thread
    del ahead
    gc.collect()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert produced.closed.is_set()


def test_depth_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        ReadAhead(iter(()), 0)


@pytest.mark.parametrize("value", [-1, True, 1.5, "1"])
def test_read_refuses_a_readahead_that_is_not_a_count(value):
    with pytest.raises(ValueError, match="readahead must be an int of at least 0"):
        nkclass.read(FLOWS / "zeek-conn.log", readahead=value)


def test_read_gives_the_same_batches_and_stats_with_and_without_readahead():
    inputs = [FLOWS / name for name in ("zeek-conn.log", "zeek-conn.json", "nfdump-monero.csv",
                                        "goflow2.jsonl", "pmacct-monero.jsonl")]
    runs, stats = [], []
    for readahead in (0, 1, 2):
        reader = nkclass.read(inputs, batch_size=2, errors="skip", readahead=readahead)
        runs.append(list(reader))
        stats.append(reader.stats.summary())
    assert len(runs[0]) > 5
    for run in runs[1:]:
        assert len(run) == len(runs[0])
        assert all(a.equals(b) for a, b in zip(run, runs[0], strict=True))
    assert stats[1] == stats[0] and stats[2] == stats[0]


def test_read_raises_a_bad_input_after_the_batches_before_it(tmp_path):
    good = FLOWS / "zeek-conn.log"
    bad = tmp_path / "broken.log"
    lines = good.read_text().splitlines(keepends=True)
    last = max(i for i, line in enumerate(lines) if not line.startswith("#"))
    lines[last] = "garbage\n"
    bad.write_text("".join(lines))
    expected = sum(batch.num_rows for batch in nkclass.read(good, readahead=0))
    for readahead in (0, 1):
        rows = 0
        with pytest.raises(InputError, match=r"broken\.log"):
            for batch in nkclass.read([good, bad], batch_size=1, readahead=readahead):
                rows += batch.num_rows
        assert rows == expected


def test_closing_a_reader_part_way_closes_its_inputs(tmp_path):
    reader = nkclass.read(FLOWS / "zeek-conn.log", batch_size=1)
    next(reader)
    reader.close()
    assert reader._batches._thread is None
    assert all(source._raw is None for source in reader.sources)


def test_captures_are_read_on_the_callers_thread_and_flow_logs_ahead():
    # The meter hands on a capture's flows in whole batches at its end: a
    # reader thread would have nothing to overlap (see Reader.reads_ahead).
    capture = nkclass.read(Path(__file__).parent.parent / "data" / "export" / "ipfix.pcap",
                           format="netflow")
    assert sum(batch.num_rows for batch in capture) > 0
    assert not isinstance(capture._batches, ReadAhead)
    log = nkclass.read(FLOWS / "zeek-conn.log")
    next(log)
    assert isinstance(log._batches, ReadAhead)
    log.close()


def test_an_unreadable_first_input_is_refused_by_the_reading(tmp_path):
    path = tmp_path / "flows.bin"
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError, match="cannot tell the format"):
        next(nkclass.read(path))
