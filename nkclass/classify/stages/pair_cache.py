"""PairCache: payload-confirmed mining pairs carried across batches."""

from __future__ import annotations

import numbers

import numpy as np

from nkclass import _core

#: Most pairs a cache may hold (each takes about 140 bytes).
MAX_CAPACITY = _core.PairCache.max_capacity
_STATE_KEYS = frozenset({"ttl_ms", "capacity", "client", "server", "confirmed_at"})


class PairCacheStateError(ValueError):
    """A pickled PairCache state is malformed or inconsistent."""

    def __init__(self, problem: str) -> None:
        super().__init__(f"invalid PairCache state: {problem}")


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _state_columns(state: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The entry columns of a state, checked: exact dtypes and shapes (never
    converted), at most `capacity` rows, no pair twice."""
    client, server, at = state["client"], state["server"], state["confirmed_at"]
    for name, arr, dtype, width in (("client", client, np.uint8, 16),
                                    ("server", server, np.uint8, 16),
                                    ("confirmed_at", at, np.int64, None)):
        shape_ok = isinstance(arr, np.ndarray) and (
            arr.shape[1:] == (width,) if width else arr.ndim == 1)
        if not shape_ok or arr.dtype != dtype:
            form = f"(n, {width}) {np.dtype(dtype)}" if width else f"1-D {np.dtype(dtype)}"
            got = (f"{arr.dtype} {arr.shape}" if isinstance(arr, np.ndarray)
                   else type(arr).__name__)
            raise PairCacheStateError(f"{name!r} must be a {form} array, got {got}")
    n = len(at)
    if len(client) != n or len(server) != n:
        raise PairCacheStateError(
            f"'client', 'server' and 'confirmed_at' differ in length "
            f"({len(client)}, {len(server)}, {n})")
    if n > state["capacity"]:
        raise PairCacheStateError(f"{n} pairs exceed the capacity of {state['capacity']}")
    pairs = np.concatenate([client, server], axis=1)
    if n and len(np.unique(pairs, axis=0)) != n:
        raise PairCacheStateError("a (client, server) pair is listed twice")
    return (np.ascontiguousarray(client), np.ascontiguousarray(server),
            np.ascontiguousarray(at))


class PairCache:
    """Remembers (client, server) pairs confirmed as mining by payload, like
    nDPI's mining "host twins" cache, so that later flows between the same
    two addresses (TLS, netflow-only) are labelled ``mining`` with evidence
    ``pair_cache`` at medium confidence.

    * The pair is (src_ip, dst_ip) of the confirming flow, in that direction:
      the reverse direction is another pair.
    * ``ttl`` is in seconds of flow time: an entry confirmed by a flow ending
      at t covers flows ending at or before t + ttl; a new confirmation moves
      t forward.
    * At most ``capacity`` pairs are kept (up to ``MAX_CAPACITY``, 2**30;
      each takes about 140 bytes); a new pair evicts the least recently
      confirmed one when full (``evictions`` counts them).
    * Thread-safe: a classify() call holds the cache for its whole batch, so
      threads sharing one cache take turns. The Classifier itself is never
      modified.
    * Pickles with its entries. As with every pickle, loading one runs code
      its author chose: unpickle only data you trust. The state itself is
      checked on loading (capacity, ttl, column types and shapes, no more
      pairs than the capacity, no pair twice), so a damaged state raises
      :class:`PairCacheStateError` instead of building a broken cache.

    >>> import numpy as np
    >>> import nkclass
    >>> cache = nkclass.PairCache(ttl=600.0, capacity=1000)
    >>> len(cache), cache.ttl, cache.capacity
    (0, 600.0, 1000)
    """

    def __init__(self, ttl: float = 3600.0, capacity: int = 100_000) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, numbers.Real) or not ttl >= 0:
            raise ValueError(
                f"The 'ttl' parameter of PairCache must be a number of seconds >= 0. "
                f"Got {ttl!r} instead."
            )
        if not _is_int(capacity) or not 1 <= capacity <= MAX_CAPACITY:
            raise ValueError(
                f"The 'capacity' parameter of PairCache must be an int in [1, 2**30]. "
                f"Got {capacity!r} instead."
            )
        ttl_ms = round(float(ttl) * 1000)
        if ttl_ms > 2**63 - 1:
            raise ValueError(f"The 'ttl' parameter of PairCache is too large. Got {ttl!r} instead.")
        self._native = _core.PairCache(int(capacity), ttl_ms)

    @property
    def ttl(self) -> float:
        """Seconds of flow time an entry stays live after its confirmation."""
        return self._native.ttl_ms / 1000

    @property
    def capacity(self) -> int:
        return self._native.capacity

    @property
    def evictions(self) -> int:
        """Pairs dropped to make room since this cache was made (or unpickled)."""
        return self._native.evictions

    def __len__(self) -> int:
        return len(self._native)

    def clear(self) -> None:
        """Forget every pair."""
        self._native.clear()

    def entries(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(client, server, confirmed_at): (n, 16) uint8 addresses (IPv4 as
        ``::ffff:a.b.c.d``) and int64 ms, least recently confirmed first."""
        return self._native.entries()

    def __repr__(self) -> str:
        return f"PairCache(ttl={self.ttl!r}, capacity={self.capacity!r}) with {len(self)} pairs"

    def __getstate__(self) -> dict:
        client, server, at = self.entries()
        return {"ttl_ms": self._native.ttl_ms, "capacity": self.capacity,
                "client": client, "server": server, "confirmed_at": at}

    def __setstate__(self, state: dict) -> None:
        if not isinstance(state, dict) or set(state) != _STATE_KEYS:
            keys = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise PairCacheStateError(f"expected the keys {sorted(_STATE_KEYS)}, got {keys}")
        capacity, ttl_ms = state["capacity"], state["ttl_ms"]
        if not _is_int(capacity) or not 1 <= capacity <= MAX_CAPACITY:
            raise PairCacheStateError(f"capacity must be an int in [1, 2**30], got {capacity!r}")
        if not _is_int(ttl_ms) or not 0 <= ttl_ms <= 2**63 - 1:
            raise PairCacheStateError(f"ttl_ms must be an int in [0, 2**63 - 1], got {ttl_ms!r}")
        columns = _state_columns(state)
        native = _core.PairCache(int(capacity), int(ttl_ms))
        native.confirm(*columns)
        self._native = native
