"""Seeded, realistic benchmark inputs."""

from __future__ import annotations

import numpy as np

# Share of each prefix length in the IPv4 routing table (about 1M prefixes):
# ~60% /24, 12% /22, 10% /23, 4-5% /21 and /20, 2.5% /19, 1-1.5% /16-/18,
# under 1% /15 and shorter, ~0.5% /25-/32.
IPV4_LENGTH_MIX = {
    8: 0.0001,
    9: 0.0001,
    10: 0.0003,
    11: 0.0008,
    12: 0.0015,
    13: 0.003,
    14: 0.005,
    15: 0.008,
    16: 0.013,
    17: 0.011,
    18: 0.014,
    19: 0.025,
    20: 0.045,
    21: 0.045,
    22: 0.12,
    23: 0.10,
    24: 0.598,
    25: 0.0012,
    26: 0.0012,
    27: 0.0008,
    28: 0.0008,
    29: 0.0005,
    30: 0.0004,
    31: 0.0001,
    32: 0.0008,
}


def sorted_unique(a: np.ndarray) -> np.ndarray:
    """np.unique without its cost (sort plus mask)."""
    a = np.sort(a)
    if a.size == 0:
        return a
    keep = np.empty(a.size, bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def ipv4_routing_table(n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """About ``n`` distinct IPv4 prefixes with the routing table's length mix:
    (networks uint32, lengths uint8, labels uint32)."""
    rng = np.random.default_rng(seed)
    lengths = np.array(list(IPV4_LENGTH_MIX), np.uint8)
    probs = np.array(list(IPV4_LENGTH_MIX.values()))
    lens = rng.choice(lengths, size=int(n * 1.02), p=probs / probs.sum())
    nets = rng.integers(1 << 24, 224 << 24, size=lens.size, dtype=np.uint64)  # unicast space
    mask = (np.uint64(0xFFFFFFFF) << (32 - lens.astype(np.uint64))) & np.uint64(0xFFFFFFFF)
    nets = (nets & mask).astype(np.uint32)
    key = sorted_unique((nets.astype(np.uint64) << np.uint64(8)) | lens.astype(np.uint64))[:n]
    rng.shuffle(key)
    nets = (key >> np.uint64(8)).astype(np.uint32)
    lens = (key & np.uint64(0xFF)).astype(np.uint8)
    labels = rng.integers(1, 65536, size=nets.size, dtype=np.uint32)
    return nets, lens, labels


def ipv6_routing_table(n: int, seed: int = 2) -> tuple[list[str], np.ndarray]:
    """About ``n`` IPv6 prefixes inside 2000::/3 shaped like the global
    table: allocations (/29-/36) with more-specifics (/40-/48) below them."""
    import ipaddress

    rng = np.random.default_rng(seed)
    n_alloc = n // 4
    alloc_len = rng.choice([29, 32, 32, 32, 33, 36], n_alloc)
    top = (np.uint64(1) << np.uint64(61)) | rng.integers(0, 2**61, n_alloc, dtype=np.uint64)
    prefixes = set()
    for hi, length in zip(top.tolist(), alloc_len.tolist(), strict=True):
        hi &= ((1 << 64) - 1) ^ ((1 << (64 - length)) - 1)
        prefixes.add((hi, length))
    allocs = list(prefixes)
    more_len = rng.choice([40, 44, 46, 47, 48, 48, 48, 48], n - len(allocs))
    parents = rng.integers(0, len(allocs), n - len(allocs))
    bits = rng.integers(0, 2**63, n - len(allocs), dtype=np.uint64)
    for p, length, b in zip(parents.tolist(), more_len.tolist(), bits.tolist(), strict=True):
        hi, plen = allocs[p]
        span = ((1 << (64 - plen)) - 1) & ~((1 << (64 - length)) - 1)
        prefixes.add((hi | (b & span), length))
    texts = [str(ipaddress.IPv6Network((h << 64, length))) for h, length in prefixes]
    labels = rng.integers(1, 65536, len(texts), dtype=np.uint32)
    return texts, labels


def ipv6_queries(prefixes: list[str], n: int, seed: int = 3) -> np.ndarray:
    """Half inside random table prefixes, half random in 2000::/3: (n, 16) uint8."""
    import ipaddress

    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(prefixes), n // 2)
    nets = [ipaddress.IPv6Network(prefixes[i]) for i in picks.tolist()]
    rows = np.empty((n, 16), np.uint8)
    inside = np.array([int(net.network_address) >> 64 for net in nets], np.uint64)
    rows[: n // 2, :8] = inside.astype(">u8").view(np.uint8).reshape(-1, 8)
    rows[: n // 2, 8:] = rng.integers(0, 256, (n // 2, 8), dtype=np.uint8)
    rest = n - n // 2
    hi = (np.uint64(1) << np.uint64(61)) | rng.integers(0, 2**61, rest, dtype=np.uint64)
    rows[n // 2 :, :8] = hi.astype(">u8").view(np.uint8).reshape(-1, 8)
    rows[n // 2 :, 8:] = rng.integers(0, 256, (rest, 8), dtype=np.uint8)
    return rows[rng.permutation(n)]


def numpy_flat24(
    nets: np.ndarray, lens: np.ndarray, labels: np.ndarray, dtype=np.uint32
) -> np.ndarray:
    """The best plain-numpy LPM: a flat /24 table painted shortest prefix
    first (prefixes longer than /24 are folded into their /24, the usual
    trade-off of this approach)."""
    table = np.zeros(1 << 24, dtype)
    order = np.argsort(lens, kind="stable")
    lens_sorted = lens[order].astype(np.int64)
    for length in np.unique(lens_sorted):  # a few dozen lengths
        sel = order[lens_sorted == length]
        first = (nets[sel] >> 8).astype(np.int64)
        span = 1 << max(24 - int(length), 0)
        idx = (first[:, None] + np.arange(span)[None, :]).ravel()
        table[idx] = np.repeat(labels[sel].astype(dtype), span)
    return table
