"""IP-to-AS tables compiled into the native longest-prefix-match table."""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nkclass import _core
from nkclass.addresses import lookup_native, parse_addresses
from nkclass.asn import cache as cache_file
from nkclass.asn.formats import AsDataError, AsRows, read_country_rows, read_rows

#: Bumped whenever compiling a source would give a different table.
COMPILER_VERSION = 1


class AsDatabase:
    """Addresses to AS numbers and organisation names, by longest prefix.

    The table's labels are entry ids: entry ``i`` is AS ``asns[i]`` run by
    ``orgs[i]`` (entry 0 means "not in the table"). Sources that name only
    the organisation (geoip2fast's GeoLite2 extract) give AS number 0 with
    a name. Overlapping prefixes resolve to the most specific one; the same
    prefix listed twice is an error naming both places.

    >>> import nkclass.asn
    >>> db = nkclass.asn.AsDatabase.from_prefixes(
    ...     ["8.8.8.0/24", "8.8.0.0/16"], [15169, 3356], ["GOOGLE", "LEVEL3"])
    >>> db.lookup(["8.8.8.8", "8.8.9.9", "1.1.1.1"]).tolist()
    [15169, 3356, 0]
    >>> db.org_names(["8.8.8.8"])
    ['GOOGLE']
    """

    __slots__ = ("_native", "asns", "orgs", "source")

    def __init__(self, compiled: cache_file.CompiledAs) -> None:
        self.asns = compiled.asns
        self.orgs = compiled.orgs
        self.source = compiled.source
        try:
            self._native = _core.PrefixTable(
                np.ascontiguousarray(compiled.v4_network),
                np.ascontiguousarray(compiled.v4_length),
                np.ascontiguousarray(compiled.v4_label),
                np.ascontiguousarray(compiled.v6_network),
                np.ascontiguousarray(compiled.v6_length),
                np.ascontiguousarray(compiled.v6_label),
                False,
            )
        except _core.BuildError as exc:
            row, reason = exc.args
            raise AsDataError(f"prefix row {row}: {reason}",
                              str(compiled.source.get("path", "<table>"))) from None

    @classmethod
    def open(cls, path: str | Path, format: str | None = None, *,
             cache: bool | str | Path = True) -> AsDatabase:
        """Load an IP-to-AS database file (MaxMind DB, RouteViews pfx2as,
        iptoasn TSV, geoip2fast data; ``format`` None detects it).

        With ``cache`` (True: :func:`nkclass.asn.cache.cache_dir`, or a
        folder) the compiled table is kept on disk, keyed by the source's
        SHA-256, and later opens load it instead of parsing the source. A
        damaged or foreign cache file is rebuilt, never trusted.
        """
        return cls(_compiled(path, cache, "", lambda p: read_rows(p, format)))

    @classmethod
    def from_native(cls, native: _core.PrefixTable, asns: np.ndarray, orgs: tuple[str, ...],
                    source: dict) -> AsDatabase:
        """A database over a table built elsewhere (a compiled ruleset's):
        ``native``'s labels are entry ids into ``asns`` and ``orgs``."""
        db = cls.__new__(cls)
        db._native, db.asns, db.orgs, db.source = native, asns, orgs, source
        return db

    @classmethod
    def from_prefixes(cls, prefixes: list[str], asns: list[int],
                      orgs: list[str] | None = None) -> AsDatabase:
        """A table from prefix texts, AS numbers and (optionally) names."""
        from nkclass.addresses import parse_prefixes

        parsed = parse_prefixes(prefixes, "prefixes")
        asn = np.asarray(asns, np.int64)
        names = list(orgs) if orgs is not None else [""] * len(asn)
        org_index = {"": 0}
        codes = np.array([org_index.setdefault(n, len(org_index)) for n in names], np.int64)
        org_list = sorted(org_index, key=org_index.__getitem__)
        where = np.arange(1, len(asn) + 1)
        rows = AsRows(
            "<prefixes>", "list",
            parsed.v4_network, parsed.v4_length, asn[parsed.v4_index].astype(np.uint32),
            codes[parsed.v4_index].astype(np.int32), where[parsed.v4_index],
            parsed.v6_network, parsed.v6_length, asn[parsed.v6_index].astype(np.uint32),
            codes[parsed.v6_index].astype(np.int32), where[parsed.v6_index],
            org_list, "row",
        )
        return cls(compile_rows(rows, {"path": "<prefixes>", "format": "list"}))

    def __reduce__(self):
        # Pickles as its compiled arrays (rebuilt on load; builds are fast).
        t = self._native.__getstate__()
        compiled = cache_file.CompiledAs(t[0], t[1], t[2], t[3], t[4], t[5], self.asns,
                                         self.orgs, self.source)
        return (AsDatabase, (compiled,))

    @property
    def native(self) -> _core.PrefixTable:
        return self._native

    def __len__(self) -> int:
        """Number of entries (AS numbers or organisations), without entry 0."""
        return len(self.asns) - 1

    def lookup_ids(self, addresses: object) -> np.ndarray:
        """Entry ids (uint32, 0 = none) for ``addresses`` (uint32 IPv4 host
        order, 16-byte IPv6 rows, or text)."""
        arr = addresses if isinstance(addresses, np.ndarray) else None
        if arr is None or arr.dtype.kind in "OU":
            arr = parse_addresses(addresses, "addresses")
        return lookup_native(self._native, arr, "addresses")

    def lookup(self, addresses: object) -> np.ndarray:
        """AS numbers (uint32, 0 = unknown) for ``addresses``."""
        return self.asns[self.lookup_ids(addresses)]

    def org_names(self, addresses: object) -> list[str]:
        """Organisation names ("" = unknown) for ``addresses``."""
        return [self.orgs[i] for i in self.lookup_ids(addresses).tolist()]

    @property
    def prefix_count(self) -> tuple[int, int]:
        """(IPv4, IPv6) prefix rows in the table."""
        state = self._native.__getstate__()
        return len(state[0]), len(state[3])

    def __repr__(self) -> str:
        v4, v6 = self.prefix_count
        return (f"AsDatabase({self.source.get('format', '?')}: {v4:,} IPv4 + {v6:,} IPv6 "
                f"prefixes, {len(self):,} entries)")


def _compiled(path: str | Path, cache: bool | str | Path, kind: str,
              read: Callable[[Path], AsRows]) -> cache_file.CompiledAs:
    """The table ``read`` makes of ``path``, through the on-disk cache (keyed
    by the source's SHA-256 and ``kind``) when ``cache`` is on."""
    p = Path(path)
    try:
        content = p.read_bytes()
    except OSError as exc:
        raise AsDataError(f"cannot read: {exc.strerror}", str(p)) from None
    digest = hashlib.sha256(content).hexdigest()
    del content
    where = None
    if cache:
        folder = cache_file.cache_dir() if cache is True else Path(cache)
        where = folder / "asn" / f"{digest[:40]}{kind}-v{COMPILER_VERSION}.nkas"
        try:
            data = where.read_bytes()
        except OSError:
            data = None
        if data is not None:
            try:
                compiled = cache_file.decode(data, str(where))
                if compiled.source.get("sha256") == digest:
                    return compiled
            except AsDataError:
                pass  # damaged or foreign: rebuilt below
    rows = read(p)
    stat = p.stat()
    compiled = compile_rows(rows, {
        "path": str(p.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
        "sha256": digest, "format": rows.format + kind,
    })
    if where is not None:
        try:
            cache_file.write_atomic(where, cache_file.encode(compiled))
        except OSError:
            pass  # an unwritable cache folder only costs the next load time
    return compiled


def compile_rows(rows: AsRows, source: dict) -> cache_file.CompiledAs:
    """Entry ids for the rows of one source; a repeated prefix is an error
    naming both of its places."""
    _check_ties(rows)
    asn = np.concatenate([rows.v4_asn, rows.v6_asn]).astype(np.int64)
    org = np.concatenate([rows.v4_org, rows.v6_org]).astype(np.int64)
    # One entry per AS number; per organisation name where no number is given.
    key = np.where(asn > 0, asn, -org)
    unique, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    asns = np.zeros(len(unique) + 1, np.uint32)
    asns[1:] = np.where(unique > 0, unique, 0)
    # An AS's name: the first non-empty one given with it.
    names = [""] * (len(unique) + 1)
    named = np.flatnonzero(org > 0)
    order = named[np.argsort(key[named], kind="stable")]
    seen_keys, pick = np.unique(key[order], return_index=True)
    entry_of_key = np.searchsorted(unique, seen_keys)
    for entry, row in zip(entry_of_key.tolist(), order[pick].tolist(), strict=True):
        names[entry + 1] = rows.orgs[int(org[row])]
    del first
    labels = (inverse + 1).astype(np.uint32)
    n4 = len(rows.v4_network)
    return cache_file.CompiledAs(
        rows.v4_network, rows.v4_length, labels[:n4],
        rows.v6_network, rows.v6_length, labels[n4:],
        asns, tuple(names), source,
    )


def _check_ties(rows: AsRows) -> None:
    """The same prefix twice is an error (nested prefixes are fine: the
    most specific wins)."""
    for nets, lengths, where in (
        (rows.v4_network.astype(np.uint64)[:, None], rows.v4_length, rows.v4_where),
        (rows.v6_network, rows.v6_length, rows.v6_where),
    ):
        if len(lengths) < 2:
            continue
        keys = np.concatenate([nets.astype(np.uint64) if nets.dtype != np.uint8 else
                               nets.view(">u8").astype(np.uint64),
                               lengths.astype(np.uint64)[:, None]], axis=1)
        order = np.lexsort(keys.T[::-1])
        ordered = keys[order]
        same = (ordered[1:] == ordered[:-1]).all(axis=1)
        if same.any():
            k = int(np.flatnonzero(same)[0])
            a, b = sorted((int(where[order[k]]), int(where[order[k + 1]])))
            kind = rows.where_kind
            raise AsDataError(f"the prefix at {kind} {b} repeats the one at {kind} {a} "
                              "(equally specific prefixes are a tie)",
                              rows.path, b if kind == "line" else None)


def geoip2fast_path() -> Path | None:
    """The GeoLite2-derived IPv4+IPv6 ASN data file the ``geoip2fast``
    package ships, when it is installed."""
    spec = importlib.util.find_spec("geoip2fast")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "geoip2fast-asn-ipv6.dat.gz"
    return path if path.is_file() else None


class CountryTable:
    """Addresses to the country a geolocation database places them in
    (ISO 3166-1 alpha-2; "" = unknown), by longest prefix: the GeoLite2
    Country data of a geoip2fast data file, compiled into the native table
    and cached on disk like an AS table.

    >>> import nkclass.asn
    >>> nkclass.asn.default_countries().codes(["8.8.8.8", "10.0.0.1"])  # needs nkclass[asn]
    ['US', '']
    """

    __slots__ = ("_table",)

    def __init__(self, table: AsDatabase) -> None:
        self._table = table

    @classmethod
    def open(cls, path: str | Path, *, cache: bool | str | Path = True) -> CountryTable:
        """Load the country prefixes of a geoip2fast data file (``cache`` as
        for :meth:`AsDatabase.open`)."""
        return cls(AsDatabase(_compiled(path, cache, "-country", read_country_rows)))

    def codes(self, addresses: object) -> list[str]:
        """Country codes ("" = unknown) for ``addresses`` (uint32 IPv4 host
        order, 16-byte IPv6 rows, or text)."""
        return self._table.org_names(addresses)

    @property
    def source(self) -> dict:
        return self._table.source

    def __repr__(self) -> str:
        v4, v6 = self._table.prefix_count
        return f"CountryTable({v4:,} IPv4 + {v6:,} IPv6 prefixes)"


@functools.lru_cache(maxsize=1)
def default_database() -> AsDatabase | None:
    """The out-of-the-box AS table (from the ``nkclass[asn]`` extra), or
    None when it is not installed. Loaded once per process, from the
    on-disk cache after the first time."""
    path = geoip2fast_path()
    return None if path is None else AsDatabase.open(path, "geoip2fast")


@functools.lru_cache(maxsize=1)
def default_countries() -> CountryTable | None:
    """The GeoLite2 Country table of the ``nkclass[asn]`` extra's data file
    (geoip2fast ships country and AS data in one file), or None when the
    extra is not installed. Loaded once per process."""
    path = geoip2fast_path()
    return None if path is None else CountryTable.open(path)
