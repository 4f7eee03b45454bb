"""Small data files in geoip2fast's layout (data version 120: a gzipped
pickle of the version, an info dict, the network count and parallel lists),
for the readers' tests."""

from __future__ import annotations

import gzip
import ipaddress
import pickle
from pathlib import Path


def _lists(networks: list[tuple[str, str]], names: list[str]) -> tuple[list, list, list, list]:
    """(index, first addresses, name ids, lengths), one chunk, in address
    order: IPv4 as 32-bit values, IPv6 (after them) as 128-bit values."""
    rows = sorted(
        (net.version, int(net.network_address), net.prefixlen, names.index(name))
        for net, name in ((ipaddress.ip_network(p), n) for p, n in networks)
    )
    firsts = [first for _, first, _, _ in rows]
    return [firsts[0]], [firsts], [[i for *_, i in rows]], [[length for _, _, length, _ in rows]]


def write_geoip2fast(
    path: Path, countries: list[tuple[str, str]], orgs: list[tuple[str, str]] | None = None
) -> Path:
    """A data file with ``countries`` ((prefix, "CC:Country name")) and, when
    given, ``orgs`` ((prefix, AS organisation name)): the country-only
    layout (5 lists) or the country-and-AS one (10 lists)."""
    country_names = sorted({name for _, name in countries})
    c_index, c_first, c_ids, c_len = _lists(countries, country_names)
    if orgs is None:
        db = [c_index, country_names, c_first, c_ids, c_len]
    else:
        org_names = ["<unknown>", *sorted({name for _, name in orgs})]
        a_index, a_first, a_ids, a_len = _lists(orgs, org_names)
        db = [c_index, a_index, country_names, org_names, c_first, a_first, c_ids, a_ids,
              c_len, a_len]
    info = {"info": "test", "country": True, "city": False, "asn": orgs is not None,
            "ipv6": True}
    path.write_bytes(gzip.compress(pickle.dumps((120, info, len(countries), db))))
    return path
