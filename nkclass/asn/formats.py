"""Readers for the IP-to-AS databases operators already have.

Each reader turns one file into :class:`AsRows`: prefixes split by family,
one AS number (0 when the source names only the organisation) and one
organisation name per prefix, and where each prefix was read (a 1-based line
for text formats, a record number otherwise) so that errors found later can
name it.

* MaxMind DB (``.mmdb``): GeoLite2-ASN (``autonomous_system_number``,
  ``autonomous_system_organization``) and IPinfo's ASN databases (``asn`` as
  ``"AS15169"``, ``name`` or ``as_name``), read with the ``maxminddb`` reader.
* CAIDA RouteViews prefix-to-AS (``routeviews-rv2-*.pfx2as[.gz]``): ``prefix
  TAB length TAB origin``; a multi-origin prefix (``_``-separated) or an AS
  set (``,``-separated) is attributed to its first AS.
* iptoasn (``ip2asn-v4.tsv``, ``ip2asn-v6.tsv``, ``ip2asn-combined.tsv``,
  optionally gzipped): ``first TAB last TAB asn TAB country TAB
  description``; ranges are split into prefixes; AS 0 ("Not routed") rows
  are left out.
* geoip2fast's data files (``geoip2fast-asn*.dat.gz``, GeoLite2-derived):
  prefixes with the AS organisation name only, no AS number.
"""

from __future__ import annotations

import bz2
import gzip
import io
import ipaddress
import lzma
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nkclass.addresses import parse_addresses
from nkclass.errors import InputError, NkclassError, describe

FORMATS = ("mmdb", "pfx2as", "iptoasn", "geoip2fast")
MMDB_MARKER = b"\xab\xcd\xefMaxMind.com"
MMDB_METADATA_WINDOW = 128 * 1024
MAX_ASN = 2**32 - 1
COUNTRY_CODE = re.compile("[A-Z]{2}")  # ISO 3166-1 alpha-2


class AsDataError(InputError):
    """An IP-to-AS database or a compiled AS table is malformed; names the
    file and the line or byte offset."""


@dataclass
class AsRows:
    """Prefix rows of one source. ``where`` holds each row's line (text
    formats) or record number (binary formats), for error messages."""

    path: str
    format: str
    v4_network: np.ndarray  # uint32, host order
    v4_length: np.ndarray  # uint8
    v4_asn: np.ndarray  # uint32; 0 = not given
    v4_org: np.ndarray  # int32 index into orgs
    v4_where: np.ndarray  # int64
    v6_network: np.ndarray  # (n, 16) uint8, network order
    v6_length: np.ndarray
    v6_asn: np.ndarray
    v6_org: np.ndarray
    v6_where: np.ndarray
    orgs: list[str] = field(default_factory=list)
    where_kind: str = "line"  # "line" or "record"

    @property
    def count(self) -> int:
        return len(self.v4_network) + len(self.v6_network)


class _Collector:
    """Accumulates rows; organisation names are interned."""

    def __init__(self) -> None:
        self.v4: list[tuple[int, int, int, int, int]] = []
        self.v6: list[tuple[bytes, int, int, int, int]] = []
        self.orgs: list[str] = [""]
        self._org_index: dict[str, int] = {"": 0}

    def org(self, name: str) -> int:
        index = self._org_index.get(name)
        if index is None:
            index = self._org_index[name] = len(self.orgs)
            self.orgs.append(name)
        return index

    def add(self, network: ipaddress.IPv4Network | ipaddress.IPv6Network, asn: int, org: int,
            where: int) -> None:
        if network.version == 4:
            self.v4.append((int(network.network_address), network.prefixlen, asn, org, where))
        else:
            self.v6.append((network.network_address.packed, network.prefixlen, asn, org, where))

    def rows(self, path: str, fmt: str, where_kind: str) -> AsRows:
        v4 = np.array(self.v4, dtype=np.int64).reshape(-1, 5)
        v6_net = np.frombuffer(b"".join(r[0] for r in self.v6), np.uint8).reshape(-1, 16)
        v6 = np.array([r[1:] for r in self.v6], dtype=np.int64).reshape(-1, 4)
        return AsRows(
            path, fmt,
            v4[:, 0].astype(np.uint32), v4[:, 1].astype(np.uint8), v4[:, 2].astype(np.uint32),
            v4[:, 3].astype(np.int32), v4[:, 4].copy(),
            np.ascontiguousarray(v6_net), v6[:, 0].astype(np.uint8), v6[:, 1].astype(np.uint32),
            v6[:, 2].astype(np.int32), v6[:, 3].copy(),
            self.orgs, where_kind,
        )


def _open_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip, bzip2 or xz."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise AsDataError(f"cannot read: {exc.strerror}", str(path)) from None
    try:
        if raw[:2] == b"\x1f\x8b":
            return gzip.decompress(raw)
        if raw[:3] == b"BZh":
            return bz2.decompress(raw)
        if raw[:6] == b"\xfd7zXZ\x00":
            return lzma.decompress(raw)
    except (OSError, EOFError, lzma.LZMAError, ValueError) as exc:
        raise AsDataError(f"damaged compressed data ({exc})", str(path)) from None
    return raw


def detect_format(path: str | Path) -> str:
    """One of :data:`FORMATS`, from the file's content."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - MMDB_METADATA_WINDOW))
            tail = fh.read()
    except OSError as exc:
        raise AsDataError(f"cannot read: {exc.strerror}", str(p)) from None
    if MMDB_MARKER in tail:
        return "mmdb"
    data = _open_bytes(p)
    if data[:1] == b"\x80":  # a pickle (geoip2fast's data files)
        return "geoip2fast"
    for number, line in enumerate(data[:65536].splitlines(), start=1):
        text = line.strip()
        if not text or text.startswith(b"#"):
            continue
        fields = text.split(b"\t")
        if len(fields) == 3:
            return "pfx2as"
        if len(fields) >= 4:
            return "iptoasn"
        raise AsDataError(
            "not a known IP-to-AS format (expected MaxMind DB, RouteViews pfx2as, iptoasn TSV "
            f"or a geoip2fast data file); first line is {describe(text.decode('latin-1'))}",
            str(p), number,
        )
    raise AsDataError("the file holds no prefixes", str(p))


def read_rows(path: str | Path, format: str | None = None) -> AsRows:
    """Read one IP-to-AS database (``format`` None detects it)."""
    p = Path(path)
    fmt = format or detect_format(p)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    reader = {"mmdb": _read_mmdb, "pfx2as": _read_pfx2as, "iptoasn": _read_iptoasn,
              "geoip2fast": _read_geoip2fast}[fmt]
    rows = reader(p)
    if rows.count == 0:
        raise AsDataError("the file holds no prefixes", str(p))
    return rows


# ---------------------------------------------------------------- text formats


def _lines(path: Path) -> list[str]:
    data = _open_bytes(path)
    try:
        return data.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise AsDataError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", str(path),
                          line) from None


def _asn(text: str, path: Path, line: int) -> int:
    if not text.isdigit() or int(text) > MAX_ASN:
        raise AsDataError(f"AS number {describe(text)} is not an integer from 0 to {MAX_ASN}",
                          str(path), line)
    return int(text)


def _parse_column(texts: list[str], lines: list[int], path: Path, what: str) -> np.ndarray:
    """Addresses of one text column; a bad one is an error at its line."""
    try:
        return parse_addresses(texts, what)
    except NkclassError:
        for text, line in zip(texts, lines, strict=True):
            try:
                ipaddress.ip_address(text)
            except ValueError:
                raise AsDataError(f"{what} {describe(text)} is not an IP address", str(path),
                                  line) from None
        raise


def _read_pfx2as(path: Path) -> AsRows:
    out = _Collector()
    addrs: list[str] = []
    where: list[int] = []
    lengths: list[int] = []
    asns: list[int] = []
    for number, raw in enumerate(_lines(path), start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        fields = text.split("\t")
        if len(fields) != 3:
            raise AsDataError(
                f"expected 3 tab-separated fields (prefix, length, origin AS), got {len(fields)}",
                str(path), number,
            )
        if not fields[1].isdigit() or int(fields[1]) > 128:
            raise AsDataError(f"prefix length {describe(fields[1])} is not 0..128", str(path),
                              number)
        # Multi-origin prefixes list their origins with '_', AS sets with ','.
        first = fields[2].replace(",", "_").split("_", 1)[0]
        addrs.append(fields[0])
        lengths.append(int(fields[1]))
        asns.append(_asn(first, path, number))
        where.append(number)
    parsed = _parse_column(addrs, where, path, "prefix address")
    _collect_parsed(out, parsed, np.array(lengths, np.int64), np.array(asns, np.int64),
                    np.zeros(len(asns), np.int64), np.array(where, np.int64), path)
    return out.rows(str(path), "pfx2as", "line")


def _collect_parsed(out: _Collector, parsed: np.ndarray, lengths: np.ndarray, asns: np.ndarray,
                    orgs: np.ndarray, where: np.ndarray, path: Path) -> None:
    """Rows from a parsed address column: IPv4 when uint32 or IPv4-mapped
    with a length of at least 96. Checks lengths and host bits."""
    if parsed.dtype == np.uint32:
        v4_net, v4_rows = parsed, np.arange(len(parsed))
        v4_len = lengths
        v6_rows = np.zeros(0, np.int64)
    else:
        mapped = (parsed[:, :12] == np.array([0] * 10 + [255, 255], np.uint8)).all(axis=1)
        v4_rows = np.flatnonzero(mapped)
        v6_rows = np.flatnonzero(~mapped)
        v4_net = parsed[v4_rows, 12:].copy().view(">u4").ravel().astype(np.uint32)
        v4_len = lengths[v4_rows]
    bad = np.flatnonzero(v4_len > 32)
    if len(bad):
        raise AsDataError(f"IPv4 prefix length {int(v4_len[bad[0]])} is above 32", str(path),
                          int(where[v4_rows[bad[0]]]))
    mask = np.where(v4_len == 0, 0, (0xFFFFFFFF << (32 - v4_len)) & 0xFFFFFFFF).astype(np.uint64)
    bad = np.flatnonzero(v4_net.astype(np.uint64) & ~mask & 0xFFFFFFFF)
    if len(bad):
        raise AsDataError("host bits set below the prefix length", str(path),
                          int(where[v4_rows[bad[0]]]))
    out.v4.extend(zip(v4_net.tolist(), v4_len.tolist(), asns[v4_rows].tolist(),
                      orgs[v4_rows].tolist(), where[v4_rows].tolist(), strict=True))
    for r in v6_rows.tolist():
        try:
            net = ipaddress.IPv6Network((bytes(parsed[r]), int(lengths[r])))
        except ValueError as exc:
            raise AsDataError(str(exc), str(path), int(where[r])) from None
        out.add(net, int(asns[r]), int(orgs[r]), int(where[r]))


def _read_iptoasn(path: Path) -> AsRows:
    out = _Collector()
    firsts: list[str] = []
    lasts: list[str] = []
    asns: list[int] = []
    orgs: list[int] = []
    where: list[int] = []
    for number, raw in enumerate(_lines(path), start=1):
        text = raw.rstrip("\r\n")
        if not text.strip() or text.startswith("#"):
            continue
        fields = text.split("\t")
        if len(fields) < 4:
            raise AsDataError(
                "expected tab-separated fields: first address, last address, AS number, "
                f"country, description; got {len(fields)} field(s)", str(path), number,
            )
        asn = _asn(fields[2], path, number)
        if asn == 0:  # "Not routed"
            continue
        firsts.append(fields[0])
        lasts.append(fields[1])
        asns.append(asn)
        orgs.append(out.org(fields[4].strip() if len(fields) > 4 else ""))
        where.append(number)
    first = _parse_column(firsts, where, path, "first address")
    last = _parse_column(lasts, where, path, "last address")
    if first.dtype != last.dtype:  # one IPv4 and one IPv6 column: compare as rows
        from nkclass.addresses import to_ipv6_rows

        first = to_ipv6_rows(first) if first.dtype == np.uint32 else first
        last = to_ipv6_rows(last) if last.dtype == np.uint32 else last
    asn_arr = np.array(asns, np.int64)
    org_arr = np.array(orgs, np.int64)
    where_arr = np.array(where, np.int64)
    if first.dtype == np.uint32:
        _split_v4_ranges(out, first, last, asn_arr, org_arr, where_arr, path)
        return out.rows(str(path), "iptoasn", "line")
    mapped_prefix = np.array([0] * 10 + [255, 255], np.uint8)
    both_mapped = (first[:, :12] == mapped_prefix).all(axis=1) & (
        last[:, :12] == mapped_prefix).all(axis=1)
    rows4 = np.flatnonzero(both_mapped)
    f4 = first[rows4, 12:].copy().view(">u4").ravel().astype(np.uint32)
    l4 = last[rows4, 12:].copy().view(">u4").ravel().astype(np.uint32)
    _split_v4_ranges(out, f4, l4, asn_arr[rows4], org_arr[rows4], where_arr[rows4], path)
    for r in np.flatnonzero(~both_mapped).tolist():
        lo = ipaddress.IPv6Address(bytes(first[r]))
        hi = ipaddress.IPv6Address(bytes(last[r]))
        if hi < lo:
            raise AsDataError(f"range ends ({hi}) before it starts ({lo})", str(path),
                              int(where_arr[r]))
        for net in ipaddress.summarize_address_range(lo, hi):
            out.add(net, int(asn_arr[r]), int(org_arr[r]), int(where_arr[r]))
    return out.rows(str(path), "iptoasn", "line")


def _split_v4_ranges(out: _Collector, first: np.ndarray, last: np.ndarray, asns: np.ndarray,
                     orgs: np.ndarray, where: np.ndarray, path: Path) -> None:
    """Cover each [first, last] IPv4 range with the fewest prefixes, all
    ranges at once: each round emits the largest aligned block at every
    range's start (at most 32 rounds)."""
    start = first.astype(np.int64)
    end = last.astype(np.int64)
    bad = np.flatnonzero(end < start)
    if len(bad):
        raise AsDataError("range ends before it starts", str(path), int(where[bad[0]]))
    rows = np.arange(len(start))
    while len(rows):
        span = end - start + 1
        align = np.where(start == 0, 1 << 32, start & -start)  # lowest set bit
        fit = np.left_shift(1, np.floor(np.log2(span)).astype(np.int64))  # largest 2^k <= span
        size = np.minimum(align, fit)
        length = 32 - np.log2(size).astype(np.int64)
        out.v4.extend(zip(start.tolist(), length.tolist(), asns[rows].tolist(),
                          orgs[rows].tolist(), where[rows].tolist(), strict=True))
        start = start + size
        keep = start <= end
        rows, start, end = rows[keep], start[keep], end[keep]


# ---------------------------------------------------------------- binary formats


def _read_mmdb(path: Path) -> AsRows:
    try:
        import maxminddb
        from maxminddb.errors import InvalidDatabaseError
    except ImportError:  # pragma: no cover - depends on the environment
        raise AsDataError(
            "reading MaxMind DB files needs the maxminddb package (pip install 'nkclass[asn]')",
            str(path),
        ) from None
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - MMDB_METADATA_WINDOW))
        tail = fh.read()
    at = tail.rfind(MMDB_MARKER)
    if at < 0:
        raise AsDataError(
            "no MaxMind DB metadata marker in the last 128 KiB: truncated or not a MaxMind DB",
            str(path), offset=size,
        )
    out = _Collector()
    record = 0
    try:
        with maxminddb.open_database(str(path)) as reader:
            meta = reader.metadata()
            tree_bytes = meta.node_count * meta.record_size // 4
            if tree_bytes + 16 > size:
                raise AsDataError(
                    f"the search tree needs {tree_bytes} bytes but the file has {size}",
                    str(path), offset=size,
                )
            for network, data in reader:
                record += 1
                if not isinstance(data, dict):
                    raise AsDataError(f"record for {network} is not a map", str(path),
                                      offset=None)
                asn, org = _mmdb_fields(data)
                if asn is None and not org:
                    continue
                out.add(network, asn or 0, out.org(org), record)
    except InvalidDatabaseError as exc:
        raise AsDataError(f"invalid MaxMind DB after {record} records: {exc}",
                          str(path)) from None
    except (ValueError, OSError) as exc:
        raise AsDataError(f"invalid MaxMind DB after {record} records: {exc}",
                          str(path)) from None
    return out.rows(str(path), "mmdb", "record")


def _mmdb_fields(data: dict) -> tuple[int | None, str]:
    """(AS number, organisation) of a GeoLite2-ASN or IPinfo record."""
    asn = data.get("autonomous_system_number")
    if asn is None and isinstance(data.get("asn"), str | int):
        text = str(data["asn"]).upper().removeprefix("AS")
        asn = int(text) if text.isdigit() else None
    if asn is not None and not (isinstance(asn, int) and 0 <= asn <= MAX_ASN):
        asn = None
    org = (data.get("autonomous_system_organization") or data.get("as_name")
           or data.get("name") or "")
    return asn, str(org)


class _NoObjects(pickle.Unpickler):
    """geoip2fast's data files are pickles of plain lists, ints and strings;
    anything naming a class is refused (a pickle could run code)."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load the class {module}.{name}")


def _read_geoip2fast(path: Path) -> AsRows:
    return _geoip2fast_rows(path, "asn")


def read_country_rows(path: str | Path) -> AsRows:
    """The country prefixes of a geoip2fast data file (GeoLite2 Country:
    ``geoip2fast.dat.gz``, ``geoip2fast-ipv6.dat.gz`` and the ``-asn``
    files, which carry both): rows whose "organisation" is the ISO 3166-1
    alpha-2 code, AS number 0. The package's own labels for private and
    reserved ranges are left out."""
    p = Path(path)
    rows = _geoip2fast_rows(p, "country")
    if rows.count == 0:
        raise AsDataError("the file holds no country prefixes", str(p))
    return rows


def _geoip2fast_rows(path: Path, part: str) -> AsRows:
    """The ``part`` ("asn" or "country") prefix lists of a geoip2fast data
    file. Its layout (geoip2fast 1.2, data versions 120/121) is a tuple of
    parallel lists: per part a list of names and, chunked, the networks'
    first addresses, name ids and prefix lengths."""
    data = _open_bytes(path)
    try:
        loaded = _NoObjects(io.BytesIO(data)).load()
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError) as exc:
        raise AsDataError(f"not a geoip2fast data file ({exc})", str(path)) from None
    try:
        version, info, _total, db = loaded
        has_part = bool(info.get(part))
        if version not in (120, 121) or not has_part:
            raise ValueError(f"version {version!r}, {part} {has_part}")
        # (names, first addresses, ids, lengths) by part and number of lists
        where = {
            ("asn", 10): (3, 5, 7, 9), ("asn", 11): (4, 6, 8, 10),
            ("country", 5): (1, 2, 3, 4), ("country", 10): (2, 4, 6, 8),
        }.get((part, len(db)))
        if where is None:
            raise ValueError(f"{len(db)} lists with {part} data")
        names, firsts, ids, lengths = (db[i] for i in where)
        first = [x for chunk in firsts for x in chunk]
        ident = [x for chunk in ids for x in chunk]
        length = [x for chunk in lengths for x in chunk]
        if not (len(first) == len(ident) == len(length)) or not all(
            isinstance(n, str) for n in names
        ):
            raise ValueError("network, name and length lists differ in size")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise AsDataError(f"unexpected geoip2fast data layout ({exc})", str(path)) from None
    out = _Collector()
    if part == "asn":
        # reserved ranges the package labels itself ("IANA.ORG") are left out
        labels = [str(n) if n != "IANA.ORG" else "" for n in names]
    else:
        # "CC:Country name"; private and reserved ranges have numeric codes
        labels = [n.split(":", 1)[0] if COUNTRY_CODE.fullmatch(n[:2]) and n[2:3] == ":"
                  else "" for n in names]
    org_code = np.array([out.org(label) for label in labels], np.int64)
    ident_arr = np.array(ident, np.int64)
    length_arr = np.array(length, np.int64)
    if len(ident_arr) and (ident_arr.min() < 0 or ident_arr.max() >= len(names)):
        bad = int(np.flatnonzero((ident_arr < 0) | (ident_arr >= len(names)))[0])
        raise AsDataError(f"network {bad} names entry {ident[bad]}, outside the list",
                          str(path))
    org_arr = org_code[ident_arr]
    is4 = np.array([x < 2**32 for x in first], bool)
    keep = org_arr > 0
    rows4 = np.flatnonzero(is4 & keep)
    rows6 = np.flatnonzero(~is4 & keep)
    net4 = np.array([first[r] for r in rows4.tolist()], np.uint64).astype(np.uint32)
    net6 = np.frombuffer(b"".join(first[r].to_bytes(16, "big") for r in rows6.tolist()),
                         np.uint8).reshape(-1, 16)
    rows = AsRows(
        str(path), "geoip2fast",
        net4, length_arr[rows4].astype(np.uint8), np.zeros(len(rows4), np.uint32),
        org_arr[rows4].astype(np.int32), rows4.astype(np.int64),
        np.ascontiguousarray(net6), length_arr[rows6].astype(np.uint8),
        np.zeros(len(rows6), np.uint32), org_arr[rows6].astype(np.int32), rows6.astype(np.int64),
        out.orgs, "record",
    )
    _check_host_bits(rows)
    return rows


def _check_host_bits(rows: AsRows) -> None:
    """Lengths within the family and no host bits below them."""
    for family, nets, lengths, where in (
        (4, rows.v4_network, rows.v4_length, rows.v4_where),
        (6, rows.v6_network, rows.v6_length, rows.v6_where),
    ):
        top = 32 if family == 4 else 128
        bad = np.flatnonzero(lengths > top)
        if len(bad) == 0:
            if family == 4:
                shift = (32 - lengths.astype(np.uint64))
                host = nets.astype(np.uint64) & ((np.uint64(1) << shift) - np.uint64(1))
                bad = np.flatnonzero(host)
            else:
                bits = np.unpackbits(nets, axis=1)
                bad = np.flatnonzero((bits * (np.arange(128) >= lengths[:, None])).any(axis=1))
        if len(bad):
            what = "length above the family's" if lengths[bad[0]] > top else "host bits set"
            raise AsDataError(f"{rows.where_kind} {int(where[bad[0]])}: {what} "
                              f"(prefix length {int(lengths[bad[0]])})", rows.path)
