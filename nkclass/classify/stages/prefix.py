"""Longest-prefix-match tables (the low-level API)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from nkclass import _core
from nkclass.addresses import ParsedPrefixes, lookup_native, parse_addresses, parse_prefixes
from nkclass.errors import SchemaTypeError, SchemaValueError

MAX_LABEL = 2**31 - 1
Duplicates = Literal["error", "last"]


def _labels(labels: object, n: int) -> np.ndarray:
    arr = np.asarray(labels)
    if arr.ndim != 1 or len(arr) != n:
        raise SchemaValueError(
            f"labels: expected {n} labels, one per prefix; got shape {arr.shape}"
        )
    if n and arr.dtype.kind not in "iu":
        raise SchemaTypeError(f"labels: expected integers, got dtype {arr.dtype}")
    if n and (int(arr.min()) < 1 or int(arr.max()) > MAX_LABEL):
        bad = int(np.flatnonzero((arr < 1) | (arr > MAX_LABEL))[0])
        raise SchemaValueError(
            f"labels: row {bad} is {int(arr[bad])}; "
            f"labels run from 1 to {MAX_LABEL} (0 means no match)"
        )
    return arr.astype(np.uint32)


def _duplicates(duplicates: str) -> bool:
    if duplicates not in ("error", "last"):
        raise ValueError(f"duplicates must be 'error' or 'last', got {duplicates!r}")
    return duplicates == "last"


class PrefixTable:
    """An immutable longest-prefix-match table over IPv4 and IPv6 prefixes.

    ``prefixes`` are texts (``"175.45.176.0/22"``, ``"2001:db8::/32"``; a bare
    address is a host route) and ``labels`` integers from 1 to 2**31-1.
    :meth:`lookup` returns, per address, the label of the longest prefix that
    contains it, or 0. IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``) match
    IPv4 prefixes. Two rows with the same prefix are an error unless
    ``duplicates="last"`` (the later row wins). Tables are shared safely by
    threads and pickle; as with any pickle, unpickling can run arbitrary
    code, so only unpickle tables from a source you trust.

    >>> t = PrefixTable(["175.45.176.0/22", "175.45.176.0/24"], [1, 2])
    >>> t.lookup(["175.45.177.9", "175.45.176.71", "8.8.8.8"]).tolist()
    [1, 2, 0]
    """

    __slots__ = ("_native",)

    def __init__(
        self,
        prefixes: Sequence[str] | object,
        labels: Sequence[int] | np.ndarray,
        *,
        duplicates: Duplicates = "error",
    ) -> None:
        parsed = parse_prefixes(prefixes)
        n = len(parsed.v4_index) + len(parsed.v6_index)
        label_arr = _labels(labels, n)
        self._native = _build(parsed, label_arr, _duplicates(duplicates), prefixes)

    @classmethod
    def from_ipv4_arrays(
        cls,
        networks: np.ndarray,
        lengths: np.ndarray,
        labels: np.ndarray,
        *,
        duplicates: Duplicates = "error",
    ) -> PrefixTable:
        """Build from IPv4 columns: ``networks`` uint32 (host order),
        ``lengths`` 0..32, ``labels`` 1..2**31-1. The fast path for large
        tables (no text parsing)."""
        networks = np.asarray(networks)
        if networks.dtype != np.uint32:
            raise SchemaTypeError(f"networks: expected uint32, got {networks.dtype}")
        lengths = np.asarray(lengths)
        if lengths.shape != networks.shape or (lengths.size and lengths.max(initial=0) > 32):
            raise SchemaValueError("lengths: expected one length from 0 to 32 per network")
        label_arr = _labels(labels, len(networks))
        self = cls.__new__(cls)
        try:
            self._native = _core.PrefixTable(
                np.ascontiguousarray(networks),
                np.ascontiguousarray(lengths, dtype=np.uint8),
                label_arr,
                np.zeros((0, 16), np.uint8),
                np.zeros(0, np.uint8),
                np.zeros(0, np.uint32),
                _duplicates(duplicates),
            )
        except _core.BuildError as exc:
            row, reason = exc.args
            raise SchemaValueError(f"prefix row {row}: {reason}") from None
        return self

    def lookup(self, addresses: object) -> np.ndarray:
        """Labels (``numpy.uint32``, 0 = no match) for ``addresses``: a
        ``uint32`` array of IPv4 addresses in host order, 16-byte IPv6
        addresses in network order (``S16``/``V16`` or ``(n, 16)`` uint8),
        or address texts."""
        arr = addresses if isinstance(addresses, np.ndarray) else None
        if arr is None or arr.dtype.kind in "OU":
            arr = parse_addresses(addresses, "addresses")
        return lookup_native(self._native, arr, "addresses")

    @property
    def memory_bytes(self) -> int:
        return int(self._native.memory_bytes)

    @property
    def first_stride(self) -> int:
        """16 or 24: the bits the IPv4 table resolves in its first step."""
        return int(self._native.first_stride)


class PrefixBuildError(ValueError):
    """A native table build failed at input ``row`` (a position in the
    caller's prefix list) for ``reason``."""

    def __init__(self, row: int, reason: str) -> None:
        super().__init__(f"row {row}: {reason}")
        self.row = row
        self.reason = reason


def build_native(parsed: ParsedPrefixes, labels: np.ndarray, last_wins: bool) -> _core.PrefixTable:
    """The native table for parsed prefixes and one label per input row;
    build failures name the input row (not the native one)."""
    try:
        return _core.PrefixTable(
            parsed.v4_network,
            parsed.v4_length,
            labels[parsed.v4_index],
            parsed.v6_network,
            parsed.v6_length,
            labels[parsed.v6_index],
            last_wins,
        )
    except _core.BuildError as exc:
        native_row, reason = exc.args
        order = np.concatenate([parsed.v4_index, parsed.v6_index])
        raise PrefixBuildError(int(order[native_row]), reason) from None


def _build(
    parsed: ParsedPrefixes, labels: np.ndarray, last_wins: bool, texts: object
) -> _core.PrefixTable:
    try:
        return build_native(parsed, labels, last_wins)
    except PrefixBuildError as exc:
        text = list(texts)[exc.row] if not hasattr(texts, "__getitem__") else texts[exc.row]
        raise SchemaValueError(f"prefixes: row {exc.row} ({text!s}): {exc.reason}") from None
