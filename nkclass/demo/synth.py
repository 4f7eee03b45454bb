"""Seeded synthetic flows of the watched paths, 2017-2019, following DOMAIN.md 1.

The dataset plants the public figures of the Recorded Future reports
(:data:`PLANTED`) in flows that look like what a flow exporter sees: the
activities are NOT written into the data. Flows carry the ports, peer
addresses, TLS ClientHello SNIs, HTTP Host headers, DNS queries and stratum
logins from which the real classifier (default ruleset) derives them; but
like the bulk flow telemetry analysts buy, about 85% of the flows are records
without payload (:attr:`Planted.payload_share`), and only the kp_range
exporter fills in AS fields. Those flows are named by the DNS answers and
server names seen earlier (learned names), the peers' AS and the ports.

How it is built, in one vectorised pass per time slice:

1. A daily expected rate per *component* (gaming, streaming, Western and
   Chinese services, mining, ... and background traffic) from piecewise-linear
   anchors, a weekly pattern and total growth; one seeded multinomial draw
   turns the rates into exact per-day counts that sum to ``flows``.
2. Days are grouped into slices of at most ``SLICE_FLOWS`` flows; each slice
   has its own generator (``default_rng([seed, first day])``), so the output
   does not depend on ``batch_size``.
3. Per component: watched host (Zipf-weighted elite users), peer (each service
   keeps a few server addresses), ports, hour of day, sizes, upstream AS and
   payload template; payloads are templates copied with numpy and patched
   with per-flow random bytes (TLS random and session id, DNS id).

Times are UTC; local time in Pyongyang is taken as UTC+9 for the daily
pattern.

>>> batches = list(generate(flows=20_000, seed=1))
>>> sum(b.num_rows for b in batches)
20000
>>> batches[0].schema.names[:4]
['ts_start', 'ts_end', 'src_ip', 'dst_ip']
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date

import numpy as np
import pyarrow as pa

from nkclass.demo import payloads as pl
from nkclass.demo.world import (
    AS_CHINA_UNICOM,
    AS_TRANSTELEKOM,
    NK_SERVERS,
    PATH_UPSTREAM,
    RESERVED,
    SERVICES,
    WATCHED_HOSTS,
)
from nkclass.flows.schema import ADDRESS, ALL_FIELDS, REQUIRED, TIMESTAMP

#: The schema of every batch :func:`generate` yields.
SYNTH_SCHEMA = pa.schema(
    [
        *REQUIRED,
        *(ALL_FIELDS[n] for n in ("tcp_flags", "src_as", "dst_as", "src_payload", "dst_payload")),
    ]
)

#: Upper bound on the flows generated at once (memory bound; whole days).
SLICE_FLOWS = 1 << 19

DAY_MS = 86_400_000
_EPOCH = date(1970, 1, 1)


def _day(text: str) -> int:
    return (date.fromisoformat(text) - _EPOCH).days


@dataclass(frozen=True)
class Planted:
    """The figures planted in the synthetic dataset (DOMAIN.md 1), so tests
    and the demo report can compare what they recover.

    ``growth`` is RF 2020's "300% increase in the volume of activity since
    2017", read as x4 (300% more): 2019's flows and bytes are 4x 2017's, for
    the watched traffic and for the background alike. Shares are of watched
    flows (flows touching a watched prefix) unless named otherwise.
    """

    #: 2019 total (flows and bytes) / 2017 total; "300% increase" read as x4.
    growth: float = 4.0
    #: Flows that touch no watched prefix, as a share of all flows.
    background_share: float = 0.40
    #: Gaming + streaming share of watched flows in 2017 (RF 2017: "over 65%").
    gaming_streaming_2017: float = 0.70
    #: Western social/search/ecommerce (facebook, google, instagram, amazon)
    #: give way to Chinese ones (baidu, alibaba, taobao, qq, weibo) between
    #: these dates (RF 2018, data window Dec 2017 - Mar 2018).
    west_to_china: tuple[str, str] = ("2017-12-01", "2018-03-01")
    #: Bitcoin node traffic starts (RF 2017: "Beginning on May 17").
    bitcoin_start: str = "2017-05-17"
    #: Monero pool mining starts (RF 2018: mining seen from 24 Jan 2018).
    monero_start: str = "2018-01-24"
    #: Mining flows per day jump by this factor on this date (RF 2020: "at
    #: least tenfold ... since May 2019"); more miners, not longer sessions.
    mining_jump_date: str = "2019-05-01"
    mining_jump: float = 15.0
    #: The data looks like bulk flow telemetry (NetFlow/IPFIX): most flows
    #: are records without payload. These shares of the flows that would
    #: carry one (TLS ClientHello, HTTP request, stratum login; DNS) keep it,
    #: as if a sensor captured them; with the background's DNS this leaves
    #: about 85% of all flows without payload.
    payload_share: float = 0.10
    stratum_payload_share: float = 0.10
    dns_payload_share: float = 0.60
    #: Obfuscation (VPN, Tor, proxy) flows per day, Dec 2017 - mid-Mar 2018,
    #: over the Apr - Jul 2017 rate (RF 2018: "up 1,200%"), declining after.
    obfuscation_peak: float = 12.0
    obfuscation_peak_window: tuple[str, str] = ("2017-12-01", "2018-03-15")
    #: Obfuscation share of watched flows, Apr - Jul 2017 (RF 2017: "less
    #: than 1%"); the 12-fold rise starts mid-August 2017.
    obfuscation_2017: float = 0.005
    #: Weekend-day over mean-day factor of leisure traffic (gaming, streaming,
    #: social, P2P) in 2017 and 2019; business traffic (email, news, work
    #: web, NK servers) has 0.4 on weekends throughout (RF Oct 2018, 2020).
    leisure_weekend_2017: float = 1.8
    leisure_weekend_2019: float = 1.1
    #: kp_range flows carry the watched side's upstream AS (AS4837 China
    #: Unicom or AS20485 TransTelekom) and the peer's origin AS in
    #: src_as/dst_as, i.e. their exporter is configured for peer-AS; the
    #: other paths' and the background's exporters give no AS fields (0).
    #: TTK carries traffic from ``ttk_start``; its share is 36% at the start
    #: of 2018 (flat through Q1) and 45% in 2019 (RF 2020).
    ttk_start: str = "2017-10-01"
    ttk_share_q1_2018: float = 0.36
    ttk_share_2019: float = 0.45
    upstream_as: dict[str, int] = field(
        default_factory=lambda: {"china_unicom": AS_CHINA_UNICOM, "transtelekom": AS_TRANSTELEKOM}
    )

    def as_dict(self) -> dict:
        return asdict(self)


PLANTED = Planted()

#: The demo's services keep their server addresses for the whole period, so
#: the demo's name cache holds a learned name for a week past its DNS TTL
#: (NameCache's default grace is a day; operators choose their own).
NAME_GRACE = 7 * 86_400.0


# ---------------------------------------------------------------- components


@dataclass(frozen=True)
class _Variant:
    payload: str | None  # tls | http | dns | stratum | None
    protocol: int
    ports: tuple[int, ...]
    weight: float
    peer: str = "service"  # service | random


@dataclass(frozen=True)
class _Component:
    name: str
    activity: str  # what the flows are meant to be (ground truth, not in the data)
    anchors: tuple[tuple[str, float], ...]  # (date, share of watched main volume)
    services: tuple[tuple[str, float], ...]
    variants: tuple[_Variant, ...]
    size: tuple[float, float, float]  # median bytes, log sigma, bytes per packet
    duration: tuple[float, float]  # median seconds, log sigma
    profile: str  # leisure | business | flat | background
    hosts: str = "users"  # users | miners | inbound | background
    absolute: bool = False  # anchors are absolute rates (x the 2017-01-01 daily volume)
    scaled: bool = True  # bytes follow the planted byte growth


def _a(*pairs: float) -> tuple[tuple[str, float], ...]:
    """Anchors at the five standard dates."""
    dates = ("2017-01-01", "2017-12-01", "2018-03-01", "2019-01-01", "2020-01-01")
    return tuple(zip(dates, pairs, strict=True))


_TLS = _Variant("tls", 6, (443,), 1.0)
_WEB_TLS_HTTP = (_Variant("tls", 6, (443,), 0.8), _Variant("http", 6, (80,), 0.2))
_P2P_PORTS = tuple(range(6881, 6890))
_L = PLANTED.mining_jump
_MINING_LOW = 0.02  # mining flows/day before the jump, x the 2017-01-01 daily volume

COMPONENTS: tuple[_Component, ...] = (
    _Component(
        "gaming",
        "gaming",
        _a(0.37, 0.37, 0.25, 0.13, 0.12),
        (
            ("steam", 0.4),
            ("wargaming", 0.35),
            ("blizzard", 0.1),
            ("tencent-games", 0.1),
            ("nexon", 0.05),
        ),
        (_Variant("tls", 6, (443,), 0.9), _Variant("http", 6, (80,), 0.1)),
        (4e6, 0.9, 200),
        (1200, 0.9),
        "leisure",
    ),
    _Component(
        "streaming",
        "streaming",
        _a(0.36, 0.36, 0.27, 0.15, 0.14),
        (
            ("youtube", 0.25),
            ("youku", 0.3),
            ("itunes", 0.2),
            ("iqiyi", 0.15),
            ("tencent-video", 0.05),
            ("netflix", 0.05),
        ),
        (
            _Variant("tls", 6, (443,), 0.8),
            _Variant("http", 6, (80,), 0.1),
            _Variant(None, 6, (1935,), 0.1),
        ),
        (3e7, 1.0, 1300),
        (600, 0.9),
        "leisure",
    ),
    _Component(
        "western",
        "social",
        _a(0.09, 0.09, 0.01, 0.01, 0.01),
        (("facebook", 0.4), ("google", 0.3), ("instagram", 0.15), ("amazon", 0.15)),
        _WEB_TLS_HTTP,
        (1.5e5, 1.0, 700),
        (20, 1.0),
        "leisure",
    ),
    _Component(
        "chinese",
        "social",
        _a(0.04, 0.04, 0.13, 0.16, 0.16),
        (("baidu", 0.3), ("qq", 0.25), ("alibaba", 0.15), ("taobao", 0.15), ("weibo", 0.15)),
        _WEB_TLS_HTTP,
        (1.5e5, 1.0, 700),
        (20, 1.0),
        "leisure",
    ),
    _Component(
        "email",
        "email",
        _a(0.04, 0.04, 0.06, 0.10, 0.10),
        (("netease-mail", 0.5), ("gmail", 0.3), ("qq-mail", 0.2)),
        (
            _Variant("tls", 6, (443,), 0.3),
            _Variant("tls", 6, (993,), 0.25),
            _Variant(None, 6, (25, 465, 587), 0.25),
            _Variant(None, 6, (993, 995, 143), 0.2),
        ),
        (6e4, 1.0, 600),
        (5, 1.0),
        "business",
    ),
    _Component(
        "news",
        "news",
        _a(0.03, 0.03, 0.04, 0.05, 0.05),
        (("xinhua", 0.35), ("peoples-daily", 0.3), ("nytimes", 0.2), ("reuters", 0.15)),
        (_Variant("tls", 6, (443,), 0.6), _Variant("http", 6, (80,), 0.4)),
        (2e5, 0.9, 800),
        (15, 1.0),
        "business",
    ),
    _Component(
        "work_web",
        "web_other",
        _a(0.02, 0.02, 0.05, 0.10, 0.11),
        (("web-misc", 1.0),),
        (
            _Variant("tls", 6, (443,), 0.6),
            _Variant("http", 6, (80,), 0.15),
            _Variant(None, 6, (443,), 0.05),
            _Variant(None, 6, (22,), 0.1, "random"),
            _Variant(None, 6, (21,), 0.05, "random"),
            _Variant(None, 6, (3389,), 0.05, "random"),
        ),
        (1e5, 1.0, 700),
        (10, 1.0),
        "business",
    ),
    _Component(
        "nk_hosted",
        "nk_hosted_service",
        _a(0.02, 0.02, 0.04, 0.08, 0.08),
        (),
        (),
        (5e4, 1.0, 600),
        (3, 1.0),
        "business",
        hosts="inbound",
    ),
    _Component(
        "dns",
        "infrastructure",
        _a(0.03, 0.03, 0.04, 0.05, 0.05),
        (),
        (_Variant("dns", 17, (53,), 1.0),),
        (0, 0, 0),
        (0.03, 0.5),
        "flat",
    ),
    _Component(
        "p2p",
        "p2p_filesharing",
        _a(0.02, 0.02, 0.03, 0.02, 0.02),
        (("openbittorrent", 1.0),),
        (
            _Variant(None, 6, _P2P_PORTS, 0.6, "random"),
            _Variant(None, 17, _P2P_PORTS, 0.3, "random"),
            _Variant("http", 6, (80,), 0.1),
        ),
        (5e6, 1.0, 1100),
        (300, 1.0),
        "leisure",
    ),
    _Component(
        "crypto_exchange",
        "crypto_exchange",
        (
            ("2017-01-01", 0.0),
            ("2017-05-01", 0.0),
            ("2017-11-01", 0.01),
            ("2018-03-01", 0.02),
            ("2020-01-01", 0.02),
        ),
        (("bithumb", 0.35), ("upbit", 0.25), ("coinone", 0.15), ("korbit", 0.1), ("binance", 0.15)),
        (_TLS,),
        (1.2e5, 1.0, 700),
        (30, 1.0),
        "business",
    ),
    _Component(
        "crypto_p2p",
        "crypto_p2p",
        (("2017-01-01", 0.0), ("2017-05-16", 0.0), ("2017-05-17", 0.01), ("2020-01-01", 0.01)),
        (),
        (
            _Variant(None, 6, (8333,), 0.7, "random"),
            _Variant(None, 6, (18080,), 0.2, "random"),
            _Variant(None, 6, (9333,), 0.1, "random"),
        ),
        (2e4, 1.0, 150),
        (600, 1.0),
        "flat",
    ),
    _Component(
        "vps",
        "vps_hosting",
        _a(0.002, 0.002, 0.015, 0.02, 0.02),
        (("aws", 0.6), ("alibaba-cloud", 0.4)),
        (_Variant("tls", 6, (443,), 0.5), _Variant(None, 6, (22,), 0.5)),
        (1e5, 1.0, 700),
        (60, 1.0),
        "business",
    ),
    # absolute rates: x the 2017-01-01 daily watched volume
    _Component(
        "mining",
        "mining",
        (
            ("2017-01-01", 0.0),
            ("2018-01-23", 0.0),
            ("2018-01-24", _MINING_LOW),
            ("2019-04-30", _MINING_LOW),
            ("2019-05-01", _MINING_LOW * _L),
            ("2020-01-01", _MINING_LOW * _L),
        ),
        (("supportxmr", 0.5), ("minexmr", 0.3), ("moneroocean", 0.2)),
        (_Variant("stratum", 6, (3333, 5555, 14444), 1.0),),
        (0, 0, 0),
        (3600, 0.8),
        "flat",
        hosts="miners",
        absolute=True,
        scaled=False,
    ),
    _Component(
        "obfuscation",
        "vpn",
        (
            ("2017-01-01", 0.0045),
            ("2017-08-15", 0.0045),
            ("2017-12-01", 0.054),
            ("2018-03-15", 0.054),
            ("2018-09-01", 0.025),
            ("2020-01-01", 0.03),
        ),
        (("nordvpn", 0.5), ("expressvpn", 0.3), ("torproject", 0.2)),
        (
            _Variant(None, 17, (1194,), 0.3, "random"),
            _Variant(None, 6, (1194,), 0.05, "random"),
            _Variant(None, 17, (51820,), 0.1, "random"),
            _Variant(None, 17, (500, 4500), 0.1, "random"),
            _Variant(None, 6, (9001, 9030), 0.15, "random"),
            _Variant("tls", 6, (443,), 0.15),
            _Variant(None, 6, (1080, 3128), 0.1, "random"),
            _Variant(None, 6, (1723,), 0.05, "random"),
        ),
        (2e6, 1.0, 900),
        (900, 1.0),
        "flat",
        absolute=True,
    ),
)

#: Background (no watched side): shares of the background volume.
BACKGROUND: tuple[_Component, ...] = (
    _Component(
        "bg_web",
        "web_other",
        (("2017-01-01", 0.70), ("2020-01-01", 0.70)),
        (
            ("google", 0.2),
            ("facebook", 0.15),
            ("youtube", 0.15),
            ("amazon", 0.1),
            ("baidu", 0.1),
            ("qq", 0.1),
            ("web-misc", 0.2),
        ),
        (
            _Variant("tls", 6, (443,), 0.45),
            _Variant("http", 6, (80,), 0.1),
            _Variant(None, 6, (443,), 0.3, "random"),
            _Variant(None, 6, (80, 8080), 0.15, "random"),
        ),
        (8e4, 1.1, 800),
        (8, 1.0),
        "background",
        hosts="background",
    ),
    _Component(
        "bg_dns",
        "infrastructure",
        (("2017-01-01", 0.22), ("2020-01-01", 0.22)),
        (),
        (_Variant("dns", 17, (53,), 1.0),),
        (0, 0, 0),
        (0.03, 0.5),
        "background",
        hosts="background",
    ),
    _Component(
        "bg_other",
        "infrastructure",
        (("2017-01-01", 0.08), ("2020-01-01", 0.08)),
        (),
        (
            _Variant(None, 17, (123,), 0.4, "random"),
            _Variant(None, 6, (22,), 0.2, "random"),
            _Variant(None, 6, (25,), 0.2, "random"),
            _Variant(None, 6, (993,), 0.2, "random"),
        ),
        (2e4, 1.0, 300),
        (5, 1.0),
        "background",
        hosts="background",
    ),
)

ALL_COMPONENTS = COMPONENTS + BACKGROUND

# Hour-of-day weights, Pyongyang local time (UTC+9).
_HOURS = np.arange(24)
_LEISURE_HOURS = np.array(
    [4, 2, 1, 1, 1, 1, 1, 2, 3, 4, 4, 5, 6, 5, 5, 5, 6, 7, 9, 11, 12, 12, 10, 7], float
)
_BUSINESS_HOURS = np.array(
    [1, 0.5, 0.3, 0.3, 0.3, 0.5, 1, 3, 8, 11, 12, 11, 8, 11, 12, 11, 10, 8, 4, 3, 2, 2, 1.5, 1],
    float,
)
_BACKGROUND_HOURS = 6 + 3 * np.sin((_HOURS - 8) / 24 * 2 * np.pi)


def _cdf(weights: np.ndarray) -> np.ndarray:
    c = np.cumsum(weights, dtype=float)
    return c / c[-1]


def _local_to_utc(cdf_local: np.ndarray) -> np.ndarray:
    # A UTC hour h is local hour h + 9: roll the weights.
    w = np.diff(np.concatenate(([0.0], cdf_local)))
    return _cdf(np.roll(w, -9))


_HOUR_CDF = {
    "leisure": _local_to_utc(_cdf(_LEISURE_HOURS)),
    "business": _local_to_utc(_cdf(_BUSINESS_HOURS)),
    "flat": _cdf(np.ones(24)),
    "background": _cdf(_BACKGROUND_HOURS),
}


# ---------------------------------------------------------------- the world


def _cidr_range(cidr: str) -> tuple[int, int]:
    net = ipaddress.IPv4Network(cidr)
    return int(net.network_address), net.num_addresses


def _hosts_in(rng: np.random.Generator, cidr: str, k: int, avoid=()) -> np.ndarray:
    base, size = _cidr_range(cidr)
    if size <= 2:
        return np.array([base], np.uint32)
    pool = np.setdiff1d(np.arange(1, size - 1, dtype=np.int64) + base, np.asarray(avoid, np.int64))
    return np.sort(rng.choice(pool, min(k, len(pool)), replace=False)).astype(np.uint32)


def random_public(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` unicast public IPv4 addresses (host order) outside special-purpose
    ranges and the watched prefixes."""
    bad = np.array([_cidr_range(c) for c in RESERVED], np.int64)
    out = np.empty(0, np.uint32)
    while len(out) < n:
        x = rng.integers(0x01000000, 0xE0000000, n, dtype=np.int64)
        ok = np.ones(n, bool)
        for base, size in bad:
            ok &= (x < base) | (x >= base + size)
        out = np.concatenate((out, x[ok].astype(np.uint32)))
    return out[:n]


class _Templates:
    def __init__(self) -> None:
        self.items: list[pl.Template] = []
        self._index: dict[bytes, int] = {}

    def add(self, t: pl.Template) -> int:
        key = t.data + repr(t.patches).encode()
        if key not in self._index:
            self._index[key] = len(self.items)
            self.items.append(t)
        return self._index[key]

    def pack(self) -> None:
        self.length = np.array([len(t.data) for t in self.items], np.int64)
        self.start = np.concatenate(([0], np.cumsum(self.length)[:-1])).astype(np.int64)
        self.buf = np.frombuffer(b"".join(t.data for t in self.items), np.uint8)
        # up to two patch spans per template: (template offset, nonce offset, length)
        self.array = pa.array([t.data for t in self.items], pa.binary())
        self.patch = np.zeros((len(self.items), 2, 3), np.int64)
        for i, t in enumerate(self.items):
            for j, span in enumerate(t.patches):
                self.patch[i, j] = span


class _World:
    """Addresses, names and payload templates derived from the seed."""

    def __init__(self, seed: int) -> None:
        rng = np.random.default_rng([seed, 0x5EED])
        self.tpl = _Templates()
        names = list(SERVICES)
        self.svc = {n: i for i, n in enumerate(names)}
        addrs, starts, counts, asns = [], [], [], []
        host_names: list[str] = []
        self.host_start, self.host_count = [], []
        for name in names:
            asn, cidrs, hosts = SERVICES[name]
            picked = np.concatenate([_hosts_in(rng, c, 3) for c in cidrs])
            starts.append(sum(len(a) for a in addrs))
            counts.append(len(picked))
            addrs.append(picked)
            asns.append(asn)
            self.host_start.append(len(host_names))
            self.host_count.append(len(hosts))
            host_names.extend(hosts)
        self.svc_addr = np.concatenate(addrs)
        self.svc_start = np.array(starts, np.int64)
        self.svc_count = np.array(counts, np.int64)
        self.svc_asn = np.array(asns, np.uint32)
        self.host_start = np.array(self.host_start, np.int64)
        self.host_count = np.array(self.host_count, np.int64)
        # host name -> service (for DNS answers) and its templates
        host_svc = np.repeat(np.arange(len(names)), self.host_count)
        self.tls = np.array([self.tpl.add(pl.tls_client_hello(h)) for h in host_names], np.int32)
        self.http = np.array([self.tpl.add(pl.http_request(h)) for h in host_names], np.int32)
        self.dns_q = np.array([self.tpl.add(pl.dns_query(h)) for h in host_names], np.int32)
        # answers list every server address of the service, as CDNs' do
        self.dns_r = np.array(
            [
                self.tpl.add(pl.dns_response(h, *self.svc_addr[
                    self.svc_start[s]: self.svc_start[s] + self.svc_count[s]].tolist()))
                for h, s in zip(host_names, host_svc, strict=True)
            ],
            np.int32,
        )
        self.server_hello = self.tpl.add(pl.tls_server_hello())
        self.http_ok = self.tpl.add(pl.http_response())
        named = [i for i, n in enumerate(names) if self.host_count[i] and n != "resolvers"]
        self.named_services = np.array(named, np.int64)
        # clients look up what they connect to: DNS questions follow each
        # service's mean share of the traffic (a floor keeps rare ones asked)
        use = dict.fromkeys(names, 0.0)
        for comp in COMPONENTS:
            mean = float(np.mean([v for _, v in comp.anchors]))
            for name, weight in comp.services:
                use[name] += mean * weight
        asked = np.array([use[names[i]] for i in named])
        self.lookup_cdf = _cdf(np.maximum(asked, asked.max() / 200))
        # watched client hosts per path, Zipf-weighted (a few heavy users)
        nk_servers = [int(ipaddress.IPv4Address(a)) for a, _, _ in NK_SERVERS]
        self.paths = []
        for i, (cidr, k) in enumerate(WATCHED_HOSTS):
            ips = _hosts_in(rng, cidr, k + (12 if i == 0 else 0), avoid=nk_servers)
            rng.shuffle(ips)
            if i == 0:
                self.miners, ips = ips[:12], ips[12:]
            weights = 1.0 / np.arange(1, len(ips) + 1) ** 1.1
            self.paths.append((ips, _cdf(weights)))
        self.wallets = [self.tpl.add(pl.stratum_login(pl.monero_wallet(i))) for i in range(3)]
        self.jobs = [self.tpl.add(pl.stratum_job(int(rng.integers(1 << 62)))) for _ in range(8)]
        # NK servers: address, port, and request templates
        self.nk_addr = np.array(nk_servers, np.uint32)
        self.nk_port = np.array([p for _, p, _ in NK_SERVERS], np.uint16)
        nk_tpl = []
        for addr, port, name in NK_SERVERS:
            if port == 80:
                nk_tpl.append((self.tpl.add(pl.http_request(name)), self.http_ok))
            elif port == 443:
                nk_tpl.append((self.tpl.add(pl.tls_client_hello(name)), self.server_hello))
            elif port == 53:
                q = self.tpl.add(pl.dns_query(name))
                r = self.tpl.add(pl.dns_response(name, int(ipaddress.IPv4Address(addr))))
                nk_tpl.append((q, r))
            else:
                nk_tpl.append((-1, -1))
        self.nk_tpl = np.array(nk_tpl, np.int32)
        self.public = random_public(rng, 50_000)
        self.clients = self.public[:20_000]  # background/inbound initiators
        self.peers = self.public[20_000:]  # random servers and P2P peers
        self.tpl.pack()


# ---------------------------------------------------------------- rates


def _interp(days: np.ndarray, anchors) -> np.ndarray:
    x = np.array([_day(d) for d, _ in anchors], float)
    y = np.array([v for _, v in anchors], float)
    return np.interp(days, x, y)


_D2017, _D2018, _D2019, _D2020 = (_day(f"{y}-01-01") for y in (2017, 2018, 2019, 2020))
_K = np.log(PLANTED.growth) / (_D2019 - _D2017)  # daily growth rate of the volume


def _weekend_factor(days: np.ndarray, profile: str) -> np.ndarray:
    """Per-day weekly factor (mean 1 over a week)."""
    if profile == "leisure":
        we = _interp(
            days,
            (
                ("2017-01-01", PLANTED.leisure_weekend_2017),
                ("2017-11-01", PLANTED.leisure_weekend_2017),
                ("2019-01-01", PLANTED.leisure_weekend_2019),
                ("2020-01-01", PLANTED.leisure_weekend_2019),
            ),
        )
    elif profile == "business":
        we = np.full(len(days), 0.4)
    else:
        return np.ones(len(days))
    weekend = (days + 3) % 7 >= 5  # 1970-01-01 was a Thursday
    return np.where(weekend, we, (7 - 2 * we) / 5)


def _business_mix(days: np.ndarray) -> np.ndarray:
    """Share of leisure flows following business hours (professionalisation)."""
    return _interp(
        days, (("2017-01-01", 0.1), ("2017-11-01", 0.1), ("2019-01-01", 0.6), ("2020-01-01", 0.6))
    )


def _ttk_share(days: np.ndarray) -> np.ndarray:
    p = _interp(
        days,
        (
            ("2017-09-30", 0.0),
            (PLANTED.ttk_start, 0.25),
            ("2017-12-01", PLANTED.ttk_share_q1_2018),
            ("2018-03-31", PLANTED.ttk_share_q1_2018),
            ("2018-12-31", PLANTED.ttk_share_2019),
            ("2020-01-01", PLANTED.ttk_share_2019),
        ),
    )
    return np.where(days < _day(PLANTED.ttk_start), 0.0, p)


def _path_share(days: np.ndarray) -> np.ndarray:
    """(days, 3) probabilities of kp_range, unicom, satgate for user flows."""
    kp = _interp(days, (("2017-01-01", 0.70), ("2019-01-01", 0.80), ("2020-01-01", 0.80)))
    uni = _interp(days, (("2017-01-01", 0.20), ("2019-01-01", 0.13), ("2020-01-01", 0.13)))
    return np.stack([kp, uni, 1 - kp - uni], axis=1)


def _mean_bytes(c: _Component) -> float:
    if c.name in ("dns", "bg_dns"):
        return 220.0
    if c.name == "mining":
        return c.duration[0] * np.exp(c.duration[1] ** 2 / 2) / 10 * 90
    return c.size[0] * np.exp(c.size[1] ** 2 / 2)


def _rates(days: np.ndarray) -> np.ndarray:
    """(days, components) expected flows per day, up to one constant."""
    volume = np.exp(_K * (days - _D2017))
    main = np.stack([_interp(days, c.anchors) for c in COMPONENTS if not c.absolute], axis=1)
    main /= main.sum(axis=1, keepdims=True)
    special = np.stack([_interp(days, c.anchors) for c in COMPONENTS if c.absolute], axis=1)
    budget = 1 - special.sum(axis=1) / volume
    out = np.empty((len(days), len(ALL_COMPONENTS)))
    mi = si = 0
    for j, c in enumerate(COMPONENTS):
        if c.absolute:
            out[:, j] = special[:, si]
            si += 1
        else:
            out[:, j] = main[:, mi] * budget * volume * _weekend_factor(days, c.profile)
            mi += 1
    bg_total = volume * PLANTED.background_share / (1 - PLANTED.background_share)
    for j, c in enumerate(BACKGROUND, start=len(COMPONENTS)):
        out[:, j] = bg_total * _interp(days, c.anchors)
    return out


def _byte_growth(days: np.ndarray, rates: np.ndarray) -> float:
    """Daily log-rate of per-flow byte growth of the scaled watched components
    that makes 2019's watched bytes ``growth`` x 2017's."""
    in17 = (days >= _D2017) & (days < _D2018)
    in19 = (days >= _D2019) & (days < _D2020)
    if not in17.any() or not in19.any():
        return 0.0
    mean = np.array([_mean_bytes(c) for c in COMPONENTS])
    scaled = np.array([c.scaled for c in COMPONENTS])
    w = rates[:, : len(COMPONENTS)] * mean

    def ratio(k: float) -> float:
        g = np.where(scaled, np.exp(k * (days - _D2017))[:, None], 1.0)
        b = (w * g).sum(axis=1)
        return b[in19].sum() / b[in17].sum()

    lo, hi = -0.01, 0.01
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ratio(mid) < PLANTED.growth else (lo, mid)
    return (lo + hi) / 2


# ---------------------------------------------------------------- flows


def _pick(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


class _Slice:
    """Columns of one component's flows, concatenated later."""

    __slots__ = (
        "bytes",
        "comp",
        "day",
        "dport",
        "dst",
        "dst_as",
        "dtpl",
        "dur",
        "flags",
        "packets",
        "proto",
        "sport",
        "src",
        "src_as",
        "stpl",
        "ts",
    )


def _component_flows(
    w: _World,
    ci: int,
    day: np.ndarray,
    rng: np.random.Generator,
    byte_k: float,
    component: _Component | None = None,
) -> _Slice:
    """Flows of component ``ci`` (or of ``component``, labelled ``ci``)."""
    c = ALL_COMPONENTS[ci] if component is None else component
    n = len(day)
    out = _Slice()
    out.day, out.comp = day, np.full(n, ci, np.uint8)
    stpl = np.full(n, -1, np.int32)
    dtpl = np.full(n, -1, np.int32)
    # services and variants
    if c.hosts == "inbound":
        which = rng.integers(0, len(w.nk_addr), n)
        peer = w.nk_addr[which]
        dport = w.nk_port[which]
        proto = np.where(dport == 53, 17, 6).astype(np.uint8)
        stpl, dtpl = w.nk_tpl[which, 0].copy(), w.nk_tpl[which, 1].copy()
        svc_asn = np.zeros(n, np.uint32)
    else:
        if c.services:
            names, weights = zip(*c.services, strict=True)
            svc_ids = np.array([w.svc[s] for s in names])
            svc = svc_ids[_pick(rng, _cdf(np.array(weights)), n)]
        else:
            svc = w.named_services[_pick(rng, w.lookup_cdf, n)]
        host = w.host_start[svc] + (rng.random(n) * np.maximum(w.host_count[svc], 1)).astype(int)
        peer = w.svc_addr[w.svc_start[svc] + (rng.random(n) * w.svc_count[svc]).astype(int)]
        svc_asn = w.svc_asn[svc].copy()
        v = _pick(rng, _cdf(np.array([x.weight for x in c.variants])), n)
        dport = np.zeros(n, np.uint16)
        proto = np.zeros(n, np.uint8)
        for vi, var in enumerate(c.variants):
            m = v == vi
            k = int(m.sum())
            if not k:
                continue
            ports = np.array(var.ports, np.uint16)
            dport[m] = ports[rng.integers(0, len(ports), k)]
            proto[m] = var.protocol
            if var.peer == "random":
                peer[m] = w.peers[rng.integers(0, len(w.peers), k)]
                svc_asn[m] = 0
            if var.payload == "tls":
                stpl[m], dtpl[m] = w.tls[host[m]], w.server_hello
            elif var.payload == "http":
                stpl[m], dtpl[m] = w.http[host[m]], w.http_ok
            elif var.payload == "dns":
                r = w.svc["resolvers"]
                peer[m] = w.svc_addr[w.svc_start[r] + rng.integers(0, w.svc_count[r], k)]
                svc_asn[m] = 0
                stpl[m], dtpl[m] = w.dns_q[host[m]], w.dns_r[host[m]]
            elif var.payload == "stratum":
                carry = m & (rng.random(n) < PLANTED.stratum_payload_share)
                kc = int(carry.sum())
                stpl[carry] = np.array(w.wallets)[rng.integers(0, len(w.wallets), kc)]
                dtpl[carry] = np.array(w.jobs)[rng.integers(0, len(w.jobs), kc)]
    # most flows are records without payload (a sensor captured the rest)
    keep = np.where(dport == 53, PLANTED.dns_payload_share, PLANTED.payload_share)
    if c.name != "mining":  # stratum_payload_share applied above
        bare = (stpl >= 0) & (rng.random(n) >= keep)
        stpl[bare] = dtpl[bare] = -1
    # the watched (or background client) side
    up_as = np.zeros(n, np.uint32)
    if c.hosts == "users":
        shares = _path_share(day.astype(float))
        u = rng.random(n)
        path = (u >= shares[:, 0]).astype(np.int64) + (u >= shares[:, 0] + shares[:, 1])
        local = np.empty(n, np.uint32)
        for p, (ips, cdf) in enumerate(w.paths):
            m = path == p
            local[m] = ips[_pick(rng, cdf, int(m.sum()))]
            up_as[m] = PATH_UPSTREAM[p]
        kp = path == 0
    elif c.hosts == "miners":
        # 3 machines before the jump, 12 after (more, higher-capacity miners)
        active = np.where(day < _day(PLANTED.mining_jump_date), 3, 12)
        local = w.miners[(rng.random(n) * active).astype(int)]
        up_as[:] = AS_CHINA_UNICOM
        kp = np.ones(n, bool)
    else:
        local = w.clients[rng.integers(0, len(w.clients), n)]
        kp = np.zeros(n, bool)
        if c.hosts == "inbound":
            up_as[:] = AS_CHINA_UNICOM
            kp = np.ones(n, bool)
    if kp.any():
        ttk = kp & (rng.random(n) < _ttk_share(day.astype(float)))
        up_as[ttk] = AS_TRANSTELEKOM
    # only the kp_range exporter fills in AS fields
    out.src, out.dst = local, peer
    if c.hosts == "inbound":
        out.src_as, out.dst_as = np.zeros(n, np.uint32), up_as
    else:
        out.src_as = np.where(kp, up_as, 0).astype(np.uint32)
        out.dst_as = np.where(kp, svc_asn, 0).astype(np.uint32)
    out.sport = rng.integers(32768, 61000, n).astype(np.uint16)
    out.dport, out.proto = dport, proto
    out.stpl, out.dtpl = stpl, dtpl
    # time of day
    profile = c.profile
    hour = _pick(rng, _HOUR_CDF[profile], n)
    if profile == "leisure":
        office = rng.random(n) < _business_mix(day.astype(float))
        hour[office] = _pick(rng, _HOUR_CDF["business"], int(office.sum()))
    out.ts = day.astype(np.int64) * DAY_MS + hour * 3_600_000 + rng.integers(0, 3_600_000, n)
    # sizes
    dur_s = np.minimum(c.duration[0] * np.exp(c.duration[1] * rng.standard_normal(n)), 43200.0)
    if c.name in ("dns", "bg_dns"):
        packets = np.full(n, 2, np.int64)
        nbytes = rng.integers(120, 321, n).astype(np.int64)
    elif c.name == "mining":
        packets = np.maximum(8, (dur_s / 10).astype(np.int64))
        nbytes = packets * rng.integers(60, 121, n)
    else:
        med, sigma, per_packet = c.size
        nbytes = med * np.exp(sigma * rng.standard_normal(n))
        if c.scaled and c.hosts != "background":
            nbytes *= np.exp(byte_k * (day - _D2017))
        packets = np.maximum(4, np.ceil(nbytes / per_packet))
        packets = packets.astype(np.int64)
        nbytes = np.maximum(nbytes.astype(np.int64), packets * 60)
    udp_dns = proto == 17
    out.dur = np.where(
        udp_dns & (packets <= 2), rng.integers(1, 80, n), (dur_s * 1000).astype(np.int64)
    )
    out.packets, out.bytes = packets.astype(np.uint64), nbytes.astype(np.uint64)
    out.flags = np.where(proto == 6, 0x1B, 0).astype(np.uint8)
    return out


def _payload_column(tpl: _Templates, k: np.ndarray, nonce: np.ndarray, row: np.ndarray) -> pa.Array:
    """Binary column from template ids ``k`` (-1: null); ``nonce[row[i]]``
    holds flow i's random bytes."""
    n = len(k)
    has = k >= 0
    taken = tpl.array.take(pa.array(k, mask=~has))
    offsets = np.frombuffer(taken.buffers()[1], np.int32, n + 1, taken.offset * 4).astype(np.int64)
    data_buf = taken.buffers()[2]
    data = (
        np.frombuffer(data_buf, np.uint8).copy() if data_buf is not None else np.zeros(0, np.uint8)
    )
    kk = np.where(has, k, 0)
    for j in range(2):
        span = tpl.patch[kk, j]
        for length in np.unique(span[has, 2]):
            if length == 0:
                continue
            m = has & (span[:, 2] == length)
            ramp = np.arange(length)
            dst = (offsets[:-1][m] + span[m, 0])[:, None] + ramp
            src = (row[m].astype(np.int64) * pl.NONCE_BYTES + span[m, 1])[:, None] + ramp
            data[dst] = nonce.reshape(-1)[src]
    validity = taken.buffers()[0]
    return pa.Array.from_buffers(
        pa.binary(),
        n,
        [validity, pa.py_buffer((offsets - offsets[0]).astype(np.int32)), pa.py_buffer(data)],
        null_count=int(n - has.sum()),
    )


def _segments(starts: np.ndarray, lengths: np.ndarray, total: int | None = None) -> np.ndarray:
    """Concatenated ranges starts[i] .. starts[i] + lengths[i]."""
    if total is None:
        total = int(lengths.sum())
    ends = np.cumsum(lengths)
    return np.repeat(starts - (ends - lengths), lengths) + np.arange(total)


def _address_array(ip: np.ndarray) -> pa.Array:
    n = len(ip)
    raw = np.zeros((n, 16), np.uint8)
    raw[:, 10:12] = 0xFF
    raw[:, 12:] = ip.astype(">u4").view(np.uint8).reshape(n, 4)
    return pa.FixedSizeBinaryArray.from_buffers(ADDRESS, n, [None, pa.py_buffer(raw)])


def _dedupe_ports(s: dict, rng: np.random.Generator) -> None:
    """Re-draw the ephemeral port of flows repeating another flow's 5-tuple
    within the slice, so each flow is its own connection (and a pcap of the
    slice meters back into the same flows). Keys are hashed: a collision
    only costs a needless re-draw."""
    for _ in range(8):
        key = s["src"].astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)
        key ^= s["dst"].astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
        key ^= (
            (s["sport"].astype(np.uint64) << np.uint64(24))
            | (s["dport"].astype(np.uint64) << np.uint64(8))
            | s["proto"].astype(np.uint64)
        ) * np.uint64(0x165667B19E3779F9)
        _, first = np.unique(key, return_index=True)
        dup = np.ones(len(key), bool)
        dup[first] = False
        if not dup.any():
            return
        s["sport"][dup] = rng.integers(32768, 61000, int(dup.sum())).astype(np.uint16)


def generate(
    flows: int = 2_000_000,
    seed: int = 2020,
    start: str = "2017-01-01",
    end: str = "2020-01-01",
    batch_size: int = 262144,
    truth: bool = False,
) -> Iterator[pa.RecordBatch]:
    """Yield ``flows`` synthetic flows from ``start`` (inclusive) to ``end``
    (exclusive) as RecordBatches of at most ``batch_size`` rows in
    :data:`SYNTH_SCHEMA`, sorted by ``ts_start``. The same arguments give
    the same flows (``batch_size`` only changes the cut).

    ``truth=True`` appends a ``synth_component`` column (dictionary string:
    the component that made each flow, e.g. ``gaming``, ``mining``,
    ``bg_web``): ground truth for tests, outside the canonical schema.

    >>> first = next(generate(flows=1000, seed=3, batch_size=10))
    >>> first.num_rows, first.schema == SYNTH_SCHEMA
    (10, True)
    """
    for name, value in (("flows", flows), ("batch_size", batch_size), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool) or value < (name != "seed"):
            raise ValueError(
                f"The {name!r} parameter of generate must be an int >= {int(name != 'seed')}. "
                f"Got {value!r} instead."
            )
    d0, d1 = _day(start), _day(end)
    if d1 <= d0:
        raise ValueError(f"end ({end}) must be after start ({start})")
    days = np.arange(d0, d1)
    rates = _rates(days.astype(float))
    byte_k = _byte_growth(days.astype(float), rates)
    p = rates.ravel() / rates.sum()
    counts = np.random.default_rng([seed, 0xC0]).multinomial(flows, p).reshape(rates.shape)
    world = _World(seed)
    per_day = counts.sum(axis=1)
    names = pa.array([c.name for c in ALL_COMPONENTS], pa.string())
    i = 0
    while i < len(days):
        j = i + 1
        total = int(per_day[i])
        while j < len(days) and total + per_day[j] <= SLICE_FLOWS:
            total += int(per_day[j])
            j += 1
        table = _make_slice(world, days[i:j], counts[i:j], seed, byte_k)
        i = j
        if table is None:
            continue
        if truth:
            comp = table.pop("comp")
            cols = table.pop("arrays")
            cols.append(pa.DictionaryArray.from_arrays(pa.array(comp.astype(np.int32)), names))
            batch = pa.RecordBatch.from_arrays(
                cols, schema=SYNTH_SCHEMA.append(pa.field("synth_component", cols[-1].type))
            )
        else:
            batch = pa.RecordBatch.from_arrays(table["arrays"], schema=SYNTH_SCHEMA)
        for at in range(0, batch.num_rows, batch_size):
            yield batch.slice(at, batch_size)


def _make_slice(w: _World, days: np.ndarray, counts: np.ndarray, seed: int, byte_k: float):
    if counts.sum() == 0:
        return None
    rng = np.random.default_rng([seed, int(days[0]) + 100_000])
    parts = []
    for ci in range(counts.shape[1]):
        n = counts[:, ci]
        if n.sum():
            parts.append(_component_flows(w, ci, np.repeat(days, n), rng, byte_k))
    return assemble(w, parts, rng)


def assemble(w: _World, parts: list[_Slice], rng: np.random.Generator) -> dict:
    """The columns of flows made by :func:`_component_flows`, in time order,
    with their payloads: ``{"arrays": [... in SYNTH_SCHEMA order], "comp":
    component of each flow}``."""
    s = {k: np.concatenate([getattr(p, k) for p in parts]) for k in _Slice.__slots__}
    order = np.argsort(s["ts"], kind="stable")
    s = {k: v[order] for k, v in s.items()}
    _dedupe_ports(s, rng)
    n = len(order)
    has = (s["stpl"] >= 0) | (s["dtpl"] >= 0)
    row = np.cumsum(has) - 1
    nonce = rng.integers(0, 256, (int(has.sum()), pl.NONCE_BYTES), dtype=np.uint8)
    ts = s["ts"]
    arrays = [
        pa.array(ts, pa.int64()).view(TIMESTAMP),
        pa.array(ts + s["dur"], pa.int64()).view(TIMESTAMP),
        _address_array(s["src"]),
        _address_array(s["dst"]),
        pa.array(s["sport"], pa.uint16()),
        pa.array(s["dport"], pa.uint16()),
        pa.array(s["proto"], pa.uint8()),
        pa.array(s["packets"], pa.uint64()),
        pa.array(s["bytes"], pa.uint64()),
        pa.array(s["flags"], pa.uint8()),
        pa.array(s["src_as"], pa.uint32()),
        pa.array(s["dst_as"], pa.uint32()),
        _payload_column(w.tpl, s["stpl"], nonce, row),
        _payload_column(w.tpl, s["dtpl"], nonce, row),
    ]
    assert all(len(a) == n for a in arrays)
    return {"arrays": arrays, "comp": s["comp"]}


def write_synth(
    path,
    flows: int = 2_000_000,
    format: str = "parquet",
    seed: int = 2020,
    **options,
) -> int:
    """Generate ``flows`` flows (:func:`generate`, extra ``options`` go to
    it) and write them to ``path`` as ``parquet``, ``csv`` (through
    :class:`nkclass.flows.write.FlowWriter`; CSV leaves payloads out) or
    ``pcap`` (real packets, see :mod:`nkclass.demo.pcap`). Returns the flows
    written."""
    batches = generate(flows=flows, seed=seed, **options)
    if format == "pcap":
        from nkclass.demo.pcap import write_pcap

        return write_pcap(path, batches, seed=seed)[0]
    if format not in ("parquet", "csv"):
        raise ValueError(
            f"The 'format' parameter of write_synth must be 'parquet', 'csv' or 'pcap'. "
            f"Got {format!r} instead."
        )
    from nkclass.flows.write import FlowWriter

    with FlowWriter(path, format) as writer:
        for batch in batches:
            writer.write(batch)
    return writer.rows
