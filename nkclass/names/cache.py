"""NameCache: server names learned on the wire, carried across batches,
files and runs."""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from nkclass import _core
from nkclass.addresses import format_addresses, parse_addresses, to_ipv6_rows
from nkclass.errors import InputError

#: Most entries a cache may hold (2**28).
MAX_CAPACITY = _core.NameCache.max_capacity
ORIGINS = ("", "dns", "sni", "host")  # code -> name; 0 is unused
#: The saved form: an Arrow IPC file with exactly these columns, one row per
#: entry from least to most recently learned, and the schema metadata keys
#: below (format name and version, capacity, grace in ms).
STATE_SCHEMA = pa.schema(
    [
        pa.field("address", pa.binary(16), nullable=False),
        pa.field("port", pa.uint16(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("first_seen", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("expires", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("origin", pa.string(), nullable=False),
    ]
)
FORMAT_NAME = b"nkclass-learned-names"
FORMAT_VERSION = b"1"


class NameStateError(InputError):
    """A saved or pickled NameCache state is malformed; names the file."""


def _ms(values: object, n: int, what: str) -> np.ndarray:
    """int64 ms since the epoch from ints (ms), numpy datetime64 or a
    pyarrow timestamp column; a scalar applies to every row."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if isinstance(values, pa.Array):
        if pa.types.is_timestamp(values.type):
            values = values.cast(pa.timestamp("ms", tz=values.type.tz)).cast(pa.int64())
        values = values.to_numpy(zero_copy_only=False)
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        arr = arr.astype("datetime64[ms]").astype(np.int64)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.dtype.kind not in "iu" or arr.shape != (n,):
        raise ValueError(f"{what}: expected {n} times as int ms or datetime64, got {arr.dtype} "
                         f"with shape {arr.shape}")
    return np.ascontiguousarray(arr, np.int64)


def _seconds_ms(values: object, n: int, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,) or not np.all(np.isfinite(arr)) or (arr < 0).any():
        raise ValueError(f"{what}: expected {n} finite numbers of seconds >= 0")
    return np.ascontiguousarray(np.minimum(np.round(arr * 1000), 2**62), np.int64)


def _rows(addresses: object, n_hint: int | None = None) -> np.ndarray:
    if isinstance(addresses, np.ndarray) and addresses.dtype == np.uint8 and addresses.ndim == 2:
        rows = addresses
    elif isinstance(addresses, np.ndarray) and addresses.dtype == np.uint32:
        rows = to_ipv6_rows(addresses)
    else:
        parsed = parse_addresses(addresses, "addresses")
        rows = to_ipv6_rows(parsed) if parsed.dtype == np.uint32 else parsed
    return np.ascontiguousarray(rows, np.uint8)


def _ports(port: object, n: int) -> np.ndarray:
    if port is None:
        return np.zeros(n, np.uint16)
    arr = np.asarray(port)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if arr.dtype.kind not in "iu" or arr.shape != (n,) or (arr < 0).any() or (arr > 65535).any():
        raise ValueError(f"port: expected {n} port numbers 0..65535")
    return np.ascontiguousarray(arr, np.uint16)


class NameCache:
    """Address (and port) -> server name mappings learned from DNS answers
    and from the TLS SNI / HTTP Host of earlier flows, so that flow records
    without payload are named through the ruleset's domain rules (evidence
    ``dns_learned``, medium confidence).

    * Learned by the classifier as it goes (``clf.classify(batch,
      names=cache)``: DNS responses on port 53 in the payload columns, and
      each flow's own SNI / Host), from Zeek ``dns.log`` files
      (:meth:`learn_dns_log`) or given directly (:meth:`learn`).
    * A DNS answer maps (address, any port) to the question's name; an SNI
      or Host maps (server address, server port). A flow's peer (the
      unwatched side, else the destination) is looked up with its port
      first, then with any port.
    * Time is flow time. An answer seen at t with TTL s holds for flows
      starting in [t, t + s + ``grace``]: addresses of named services change
      slowly, and flows behind caching resolvers, long connections and
      lookups the capture missed would otherwise go unnamed (``grace=0``
      honours TTLs strictly). The same name learned again widens the
      interval; another name for the same key replaces it when at least as
      recent.
    * At most ``capacity`` entries (each about 100 bytes plus its name,
      names shared); when full, learning a new key evicts the least
      recently learned one. :attr:`stats` counts learned, refreshed,
      replaced, stale, evicted (still live), expired and refused entries.
    * Saved and loaded as a documented Arrow IPC file (:meth:`save`,
      :meth:`load`, validated on loading) and merged (:meth:`merge`);
      pickles with its entries (as with every pickle, unpickle only data
      you trust; the state is validated all the same).
    * Thread-safe: a classify() call holds the cache for its batch.

    >>> cache = NameCache(capacity=1000)
    >>> cache.learn(["192.0.2.10"], ["pool.supportxmr.com"], at=[1556668800000], ttl=300)
    1
    >>> cache.lookup(["192.0.2.10"], at=[1556668900000])
    ['pool.supportxmr.com']
    """

    def __init__(self, capacity: int = 1_000_000, grace: float = 86_400.0) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, numbers.Integral) or not (
                1 <= capacity <= MAX_CAPACITY):
            raise ValueError(
                f"The 'capacity' parameter of NameCache must be an int in 1..{MAX_CAPACITY}. "
                f"Got {capacity!r} instead.")
        if isinstance(grace, bool) or not isinstance(grace, numbers.Real) or not (
                0 <= grace <= 2**53 / 1000):
            raise ValueError(
                f"The 'grace' parameter of NameCache must be a number of seconds >= 0. "
                f"Got {grace!r} instead.")
        self._native = _core.NameCache(int(capacity), round(float(grace) * 1000))

    @property
    def capacity(self) -> int:
        return self._native.capacity

    @property
    def grace(self) -> float:
        """Seconds a learned name holds beyond its TTL."""
        return self._native.grace_ms / 1000

    @property
    def stats(self) -> dict[str, int]:
        """Counts since this cache was made (or loaded): ``learned`` (new
        keys), ``refreshed``, ``replaced``, ``stale``, ``evicted`` (dropped
        for room while live), ``expired`` (dropped for room after their
        interval), ``refused`` (not names)."""
        return self._native.stats()

    def __len__(self) -> int:
        return len(self._native)

    def __repr__(self) -> str:
        return (f"NameCache(capacity={self.capacity!r}, grace={self.grace!r}) with "
                f"{len(self)} names")

    def clear(self) -> None:
        self._native.clear()

    def learn(self, addresses: object, names: Iterable[str], at: object, ttl: object = 0.0,
              port: object = None, origin: str = "dns") -> int:
        """Learn ``addresses[i] -> names[i]`` seen at ``at[i]`` (ms since the
        epoch, or datetime64) holding ``ttl`` seconds (plus the grace);
        ``port`` None maps any port (a DNS answer); ``origin`` is ``dns``,
        ``sni`` or ``host``. Returns how many were taken (names that are not
        host names are refused and counted)."""
        if origin not in ORIGINS[1:]:
            raise ValueError(f"origin must be one of dns, sni, host; got {origin!r}")
        rows = _rows(addresses)
        names = [str(n) for n in names]
        n = len(rows)
        if len(names) != n:
            raise ValueError(f"names: expected {n} names (one per address), got {len(names)}")
        return self._native.learn(rows, _ports(port, n), names, _ms(at, n, "at"),
                                  _seconds_ms(ttl, n, "ttl"),
                                  np.full(n, ORIGINS.index(origin), np.uint8))

    def lookup(self, addresses: object, at: object, port: object = None) -> list[str | None]:
        """The name live for each address (with ``port``, then any port) at
        ``at`` (ms or datetime64), else None."""
        rows = _rows(addresses)
        n = len(rows)
        return self._native.lookup(rows, _ports(port, n), _ms(at, n, "at"))

    def learn_dns_log(self, paths, errors: str = "raise") -> int:
        """Learn the A/AAAA answers of Zeek ``dns.log`` files (TSV or JSON;
        see :mod:`nkclass.names.zeek`). Returns the answers taken; with
        ``errors="skip"`` malformed lines are skipped (see the reader's
        ``stats``)."""
        from nkclass.names.zeek import DnsLogReader

        reader = DnsLogReader(paths, errors=errors)
        taken = 0
        for batch in reader:
            taken += self.learn(batch["address"], batch["name"], batch["at"], batch["ttl"])
        return taken

    def merge(self, other: NameCache) -> None:
        """Take every entry of ``other``, as if learned here in its order
        (a key's more recent name wins; the same name widens its interval)."""
        if not isinstance(other, NameCache):
            raise TypeError(f"can only merge a NameCache, not {type(other).__name__}")
        self._native.merge(other._native)

    def entries(self) -> pa.Table:
        """The entries, least recently learned first, in :data:`STATE_SCHEMA`
        (addresses as 16 bytes, IPv4 as ``::ffff:a.b.c.d``)."""
        address, port, names, first, expires, origin = self._native.entries()
        return pa.table(
            [
                pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), len(port),
                                                     [None, pa.py_buffer(address.tobytes())]),
                pa.array(port, pa.uint16()),
                pa.array(names, pa.string()),
                pa.array(first, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                pa.array(expires, pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                pa.array(np.array(ORIGINS, object)[origin].tolist(), pa.string()),
            ],
            schema=STATE_SCHEMA,
        )

    def to_pandas(self):
        """The entries as a DataFrame with addresses as text."""
        table = self.entries()
        rows = table.column("address").combine_chunks()
        text = format_addresses(np.frombuffer(rows.buffers()[1], np.uint8).reshape(-1, 16))
        return table.set_column(0, "address", text).to_pandas()

    def _absorb(self, table: pa.Table, where: str) -> None:
        """Entries of a saved or pickled table, checked."""
        if not table.schema.remove_metadata().equals(STATE_SCHEMA):
            raise NameStateError(f"expected the columns {STATE_SCHEMA.names} with their types "
                                 f"({STATE_SCHEMA}), got {table.schema.remove_metadata()}", where)
        n = table.num_rows
        if n > self.capacity:
            raise NameStateError(f"{n} entries exceed the capacity of {self.capacity}", where)
        for name, column in zip(table.column_names, table.columns, strict=True):
            if column.null_count:
                raise NameStateError(f"column {name!r} holds nulls", where)
        address = table.column("address").combine_chunks()
        rows = np.frombuffer(address.buffers()[1], np.uint8,
                             count=16 * n, offset=16 * address.offset).reshape(-1, 16).copy()
        port = table.column("port").to_numpy()
        first = table.column("first_seen").cast(pa.int64()).to_numpy()
        expires = table.column("expires").cast(pa.int64()).to_numpy()
        origin_names = table.column("origin").to_pylist()
        if any(o not in ORIGINS[1:] for o in origin_names):
            raise NameStateError("origin must be dns, sni or host", where)
        if (first > expires).any():
            row = int(np.flatnonzero(first > expires)[0])
            raise NameStateError(f"row {row}: first_seen is after expires", where)
        keys = np.concatenate([rows, port.astype(">u2").view(np.uint8).reshape(-1, 2)], axis=1)
        if n and len(np.unique(keys, axis=0)) != n:
            raise NameStateError("an (address, port) is listed twice", where)
        origin = np.array([ORIGINS.index(o) for o in origin_names], np.uint8)
        names = table.column("name").to_pylist()
        taken = self._native.absorb(rows, np.ascontiguousarray(port, np.uint16), names,
                                    np.ascontiguousarray(first, np.int64),
                                    np.ascontiguousarray(expires, np.int64), origin)
        if taken != n:
            raise NameStateError(f"{n - taken} of {n} names are not host names", where)

    def save(self, path: str | os.PathLike) -> None:
        """Write the entries and settings to ``path`` (Arrow IPC file,
        :data:`STATE_SCHEMA` with the metadata ``format``, ``version``,
        ``capacity`` and ``grace_ms``), atomically."""
        from nkclass.flows.write import AtomicFile

        table = self.entries().replace_schema_metadata({
            b"format": FORMAT_NAME, b"version": FORMAT_VERSION,
            b"capacity": str(self.capacity).encode(), b"grace_ms": str(self._native.grace_ms
                                                                       ).encode()})
        out = AtomicFile(os.fspath(path))
        try:
            with ipc.new_file(out.file, table.schema) as writer:
                writer.write_table(table)
        except BaseException:
            out.abort()
            raise
        out.commit()

    @classmethod
    def load(cls, path: str | os.PathLike, capacity: int | None = None,
             grace: float | None = None) -> NameCache:
        """A cache saved by :meth:`save`; ``capacity``/``grace`` override the
        saved settings. A file that is not such a state (wrong format,
        version, columns, values) raises :class:`NameStateError`."""
        where = os.fspath(path)
        try:
            with open(where, "rb") as f:
                reader = ipc.open_file(f)
                table = reader.read_all()
        except FileNotFoundError:
            raise NameStateError("no such file", where) from None
        except (OSError, pa.ArrowException) as exc:
            raise NameStateError(f"not a saved NameCache (Arrow IPC file): {exc}", where
                                 ) from None
        meta = table.schema.metadata or {}
        if meta.get(b"format") != FORMAT_NAME:
            raise NameStateError("not a saved NameCache (no nkclass-learned-names marker)",
                                 where)
        if meta.get(b"version") != FORMAT_VERSION:
            raise NameStateError(f"saved by another version of the format "
                                 f"({meta.get(b'version')!r}, this is {FORMAT_VERSION!r})", where)
        try:
            saved_capacity = int(meta[b"capacity"])
            saved_grace = int(meta[b"grace_ms"]) / 1000
        except (KeyError, ValueError):
            raise NameStateError("capacity and grace_ms metadata missing or not numbers",
                                 where) from None
        try:
            cache = cls(capacity if capacity is not None else saved_capacity,
                        grace if grace is not None else saved_grace)
        except ValueError as exc:
            raise NameStateError(str(exc), where) from None
        cache._absorb(table, where)
        return cache

    def __getstate__(self) -> dict:
        return {"capacity": self.capacity, "grace_ms": self._native.grace_ms,
                "entries": self.entries()}

    def __setstate__(self, state: dict) -> None:
        where = "<pickled NameCache>"
        if not isinstance(state, dict) or set(state) != {"capacity", "grace_ms", "entries"}:
            raise NameStateError("expected the keys capacity, grace_ms and entries", where)
        capacity, grace_ms, table = state["capacity"], state["grace_ms"], state["entries"]
        if not isinstance(capacity, int) or not 1 <= capacity <= MAX_CAPACITY:
            raise NameStateError(f"capacity {capacity!r} is not in 1..{MAX_CAPACITY}", where)
        if not isinstance(grace_ms, int) or grace_ms < 0:
            raise NameStateError(f"grace_ms {grace_ms!r} is not an int >= 0", where)
        if not isinstance(table, pa.Table):
            raise NameStateError("entries must be a pyarrow Table", where)
        self._native = _core.NameCache(capacity, grace_ms)
        self._absorb(table, where)


__all__ = ["MAX_CAPACITY", "STATE_SCHEMA", "NameCache", "NameStateError"]
