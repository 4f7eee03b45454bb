"""Reading one batch ahead on a background thread.

Decoding (pyarrow, the native flow meter and export decoder) and the
consumer's work (classify, aggregate: native passes) both run without the
GIL, so the next batch is read while the current one is worked on. Items
come in order; an error the reader raises is raised by ``next`` at its
place in the stream, with its traceback, and ends it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_ITEM, _END, _ERROR = range(3)
_POLL_SECONDS = 0.1  # how often a waiting reader thread checks for close()


def _fill(items: Iterator, ready: queue.SimpleQueue, wanted: threading.Semaphore,
          stop: threading.Event) -> None:
    """The reader thread: one item per permit, until the items end, fail
    or the consumer stops. Holds no reference to the ReadAhead, so an
    abandoned one is collected (and stops this thread)."""
    try:
        while True:
            while not wanted.acquire(timeout=_POLL_SECONDS):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            try:
                item = next(items)
            except StopIteration:
                ready.put((_END, None))
                return
            ready.put((_ITEM, item))
    except BaseException as exc:  # handed to the consumer, raised there
        ready.put((_ERROR, exc))
    finally:
        if stop.is_set():
            items.close()


class ReadAhead(Generic[T]):
    """An iterator over ``items`` (a generator) that reads ``depth`` items
    ahead of the consumer on a thread started by the first ``next``. At
    most ``depth`` items wait beyond the one the consumer holds.
    ``close()`` stops the thread and closes ``items``."""

    def __init__(self, items: Iterator[T], depth: int = 1) -> None:
        if depth < 1:
            raise ValueError(f"read-ahead depth must be at least 1, got {depth}")
        self._items = items
        self._depth = depth
        self._ready: queue.SimpleQueue = queue.SimpleQueue()
        self._wanted = threading.Semaphore(depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._finished = False

    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        if self._thread is None:
            self._thread = threading.Thread(
                target=_fill, args=(self._items, self._ready, self._wanted, self._stop),
                name="nkclass-read-ahead", daemon=True)
            self._thread.start()
        kind, value = self._ready.get()
        if kind == _ITEM:
            self._wanted.release()  # the consumer holds this one: read the next
            return value
        self._finished = True
        self._thread.join()
        if kind == _ERROR:
            raise value
        raise StopIteration

    def close(self) -> None:
        """Stop reading: the thread ends after the item it is reading, and
        ``items`` is closed (its ``finally`` blocks run)."""
        self._finished = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        else:
            self._items.close()

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)  # None when __init__ refused its arguments
        if stop is not None:
            stop.set()


__all__ = ["ReadAhead"]
