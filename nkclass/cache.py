"""PairCache: payload-confirmed mining pairs carried across batches."""

from __future__ import annotations

import numbers

import numpy as np

from nkclass import _core


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
    * At most ``capacity`` pairs are kept; a new pair evicts the least
      recently confirmed one when full (``evictions`` counts them).
    * Thread-safe: a classify() call holds the cache for its whole batch, so
      threads sharing one cache take turns. The Classifier itself is never
      modified. Pickles with its entries; as with any pickle, unpickling can
      run arbitrary code, so only unpickle caches from a source you trust.

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
        if isinstance(capacity, bool) or not isinstance(capacity, numbers.Integral) or capacity < 1:
            raise ValueError(
                f"The 'capacity' parameter of PairCache must be an int >= 1. "
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
        self._native = _core.PairCache(state["capacity"], state["ttl_ms"])
        self._native.confirm(
            np.ascontiguousarray(state["client"], np.uint8),
            np.ascontiguousarray(state["server"], np.uint8),
            np.ascontiguousarray(state["confirmed_at"], np.int64),
        )
