"""Top talkers: the outside peers, watched hosts or services with the most
flows or bytes, over any number of classified batches."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from nkclass.addresses import format_addresses, to_ipv6_rows
from nkclass.labels import SIDES
from nkclass.report import _kernel
from nkclass.report.aggregate import _Labelled

TOP_BY = ("peer", "host", "service")


class _AddressKeys:
    """int64 keys for addresses: IPv4 as its value, IPv6 as -(1 + its
    number in this registry) (IPv6 is rare; one dict entry per address)."""

    def __init__(self) -> None:
        self.ids: dict[bytes, int] = {}

    def keys(self, addrs: np.ndarray) -> np.ndarray:
        if addrs.dtype == np.uint32:
            return addrs.astype(np.int64)
        v4 = np.empty(len(addrs), np.uint32)
        is_v4 = np.empty(len(addrs), np.uint8)
        _kernel.ipv4_of_rows(addrs, v4, is_v4)
        keys = v4.astype(np.int64)
        v6 = np.flatnonzero(is_v4 == 0)
        if v6.size:
            uniq, inverse = np.unique(addrs[v6].copy().view("V16").ravel(), return_inverse=True)
            ids = np.array([self.ids.setdefault(bytes(u), len(self.ids)) for u in uniq])
            keys[v6] = -1 - ids[inverse]
        return keys

    def label(self, key: int) -> str:
        if key >= 0:
            return format_addresses(np.array([key], np.uint32)).to_pylist()[0]
        raw = list(self.ids)[-1 - key]
        return format_addresses(np.frombuffer(raw, np.uint8).reshape(1, 16)).to_pylist()[0]


def top(
    results: Iterable[object],
    by: str = "peer",
    metric: str = "flows",
    n: int = 10,
    watched_only: bool = True,
) -> list[tuple[str, int, int]]:
    """The ``n`` largest (label, flows, bytes) by ``metric`` over classified
    results or classified tables. ``peer`` is the endpoint outside the
    watched network, ``host`` the watched one."""
    if by not in TOP_BY:
        raise ValueError(f"by must be one of {', '.join(TOP_BY)}, got {by!r}")
    if metric not in ("flows", "bytes"):
        raise ValueError("metric must be 'flows' or 'bytes'")
    parts_keys, parts_flows, parts_bytes = [], [], []
    services_key: dict[str, int] = {}
    addresses = _AddressKeys()
    for item in results:
        view = _Labelled(item, "service" if by == "service" else None)
        keep = view.side != 0 if watched_only else np.ones(view.n, bool)
        if not keep.any():
            continue
        nbytes = view.bytes[keep]
        if by == "service":
            # service codes differ between rulesets and tables: key by name
            remap = np.array(
                [services_key.setdefault(name, len(services_key)) for name in view.extra_names],
                np.int64,
            )
            keys = remap[view.extra[keep].astype(np.int64)]
        else:
            dst_is_host = view.side[keep] == SIDES.index("dst")
            src, dst = view.src[keep], view.dst[keep]
            if src.dtype != dst.dtype:  # one column IPv4, the other 16-byte rows
                src = to_ipv6_rows(src) if src.dtype == np.uint32 else src
                dst = to_ipv6_rows(dst) if dst.dtype == np.uint32 else dst
            pick_dst = dst_is_host if by == "host" else ~dst_is_host
            mask = pick_dst[:, None] if src.ndim == 2 else pick_dst
            keys = addresses.keys(np.where(mask, dst, src))
        group_of = np.empty(len(keys), np.int64)
        group_keys = np.empty(len(keys), np.int64)
        g = _kernel.group_ids(np.ascontiguousarray(keys), group_of, group_keys)
        sums = [np.empty(g, np.uint64) for _ in range(3)]
        _kernel.sum_by_group(group_of, g, nbytes, np.zeros(len(keys), np.uint64), *sums)
        parts_keys.append(group_keys[:g])
        parts_flows.append(sums[0])
        parts_bytes.append(sums[1])
    if not parts_keys:
        return []
    keys = np.concatenate(parts_keys)
    group_of = np.empty(len(keys), np.int64)
    group_keys = np.empty(len(keys), np.int64)
    g = _kernel.group_ids(keys, group_of, group_keys)
    flows = np.bincount(
        group_of, weights=np.concatenate(parts_flows).astype(np.float64), minlength=g
    )
    nbytes = np.bincount(
        group_of, weights=np.concatenate(parts_bytes).astype(np.float64), minlength=g
    )
    score = flows if metric == "flows" else nbytes
    order = np.argsort(-score, kind="stable")[:n]
    names = list(services_key)
    label = names.__getitem__ if by == "service" else addresses.label
    return [(label(int(group_keys[i])), int(flows[i]), int(nbytes[i])) for i in order]
