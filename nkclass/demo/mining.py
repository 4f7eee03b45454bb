"""Planted miners of the demo world: a capture of stratum sessions whose
hashrate steps up at a known month, to recover with
:func:`nkclass.report.hashrate.hashrate`.

Each planted host mines Monero on one of the world's pools (XMRig's
CryptoNote stratum: login, the pool's job with a target, ``submit`` lines,
a new job every minute). Once a month each host is captured for
:attr:`PlantedMiners.session_s` seconds: its shares arrive as a Poisson
process at hashrate / difficulty, the difficulty set by the pool so that a
session holds about :attr:`PlantedMiners.shares_per_session` shares (as a
pool's vardiff aims at a steady share rate). From
:attr:`PlantedMiners.step_month` on, every host mines
:attr:`PlantedMiners.step` times faster ("higher-end, higher-capacity
machines"). The capture is real packets (Ethernet, IPv4, TCP with
consistent sequence numbers), read back by the pcap meter like any other.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from nkclass.demo.payloads import XMRIG_AGENT, monero_wallet

_PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
_MAC = b"\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02\x08\x00"


@dataclass(frozen=True)
class PlantedMiners:
    """The planted hosts, their pool and the step."""

    #: (host, hashes per second before the step); two on the KP range, one
    #: behind the satellite link.
    hosts: tuple[tuple[str, float], ...] = (
        ("175.45.176.31", 1_500.0),
        ("175.45.176.32", 4_000.0),
        ("77.94.35.40", 2_500.0),
    )
    pool: str = "198.51.100.23"  # the world's minexmr block
    port: int = 3333
    first_month: str = "2019-01"
    months: int = 12
    step_month: str = "2019-07"
    step: float = 4.0
    session_s: float = 1500.0  # under the meter's 1800 s active timeout: one record each
    shares_per_session: float = 150.0

    def month_starts(self) -> list[datetime]:
        year, month = map(int, self.first_month.split("-"))
        out = []
        for k in range(self.months):
            y, m = divmod(month - 1 + k, 12)
            out.append(datetime(year + y, m + 1, 1, tzinfo=UTC))
        return out

    def rate(self, host: int, month: datetime) -> float:
        """The planted hashes per second of host number ``host`` in ``month``."""
        base = self.hosts[host][1]
        return base * self.step if month.strftime("%Y-%m") >= self.step_month else base


PLANTED_MINERS = PlantedMiners()


class _Session:
    """One TCP connection's packets, written as pcap records."""

    def __init__(self, out: list[bytes], client: str, server: str, sport: int, dport: int):
        self.out = out
        self.addr = (bytes(map(int, client.split("."))), bytes(map(int, server.split("."))))
        self.ports = (sport, dport)
        self.seq = [1000, 900_000]

    def send(self, side: int, t: float, data: bytes = b"", flags: int = 0x18) -> None:
        src, dst = self.addr[side], self.addr[1 - side]
        sport, dport = self.ports[side], self.ports[1 - side]
        tcp = struct.pack("!HHIIBBHHH", sport, dport, self.seq[side] & 0xFFFFFFFF,
                          self.seq[1 - side] & 0xFFFFFFFF, 5 << 4, flags, 65535, 0, 0)
        total = 20 + len(tcp) + len(data)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, 1, 0x4000, 64, 6, 0, src, dst)
        frame = _MAC + ip + tcp + data
        sec = int(t)
        usec = min(round((t - sec) * 1e6), 999_999)
        self.out.append(struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame)
        self.seq[side] += len(data) + (1 if flags & 0x03 else 0)  # SYN and FIN count one


def _target_hex(difficulty: float) -> str:
    """A CryptoNote 4-byte target (little-endian hex) for ``difficulty``."""
    return max(1, min(0xFFFFFFFF, round(2**32 / difficulty))).to_bytes(4, "little").hex()


def mining_capture(planted: PlantedMiners = PLANTED_MINERS, seed: int = 7) -> bytes:
    """The planted miners' monthly stratum sessions as a classic pcap."""
    rng = np.random.default_rng(seed)
    records: list[tuple[float, int, bytes]] = []
    for month_no, month in enumerate(planted.month_starts()):
        for h, (host, _) in enumerate(planted.hosts):
            out: list[bytes] = []
            start = month.timestamp() + (9 + h) * 86_400 + 12 * 3600
            rate = planted.rate(h, month)
            difficulty = rate * planted.session_s / planted.shares_per_session
            target = _target_hex(difficulty)
            s = _Session(out, host, planted.pool, 40_000 + 97 * month_no + h, planted.port)
            s.send(0, start, flags=0x02)
            s.send(1, start + 0.05, flags=0x12)
            s.send(0, start + 0.1, (
                '{"id":1,"jsonrpc":"2.0","method":"login","params":{"login":"'
                + monero_wallet(h) + '","pass":"x","agent":"' + XMRIG_AGENT
                + '","algo":["rx/0"]}}\n').encode())
            s.send(1, start + 0.15, (
                '{"id":1,"jsonrpc":"2.0","error":null,"result":{"id":"m' + str(h)
                + '","job":{"blob":"0e0e' + f"{month_no:04x}" + '","job_id":"1","target":"'
                + target + '","algo":"rx/0"},"status":"OK"}}\n').encode())
            end = start + planted.session_s
            jobs = np.arange(start + 60.0, end, 60.0)
            n = rng.poisson(rate * planted.session_s / difficulty)
            shares = np.sort(rng.uniform(start + 0.2, end, n))
            events = sorted([(t, 1, k) for k, t in enumerate(jobs)]
                            + [(t, 0, k) for k, t in enumerate(shares)])
            for t, kind, k in events:
                if kind:
                    s.send(1, t, ('{"jsonrpc":"2.0","method":"job","params":{"blob":"0e0e'
                                  + f"{k:04x}" + '","job_id":"' + str(k + 2) + '","target":"'
                                  + target + '","algo":"rx/0"}}\n').encode())
                else:
                    s.send(0, t, ('{"id":' + str(k + 2) + ',"jsonrpc":"2.0","method":"submit",'
                                  '"params":{"id":"m' + str(h) + '","job_id":"1","nonce":"'
                                  + f"{k:08x}" + '","result":"' + "ab" * 32 + '"}}\n').encode())
                    s.send(1, t + 0.08, ('{"id":' + str(k + 2) + ',"jsonrpc":"2.0","error":null,'
                                         '"result":{"status":"OK"}}\n').encode())
            s.send(0, end + 0.5, flags=0x11)
            s.send(1, end + 0.55, flags=0x11)
            s.send(0, end + 0.6, flags=0x10)
            records.extend((start, i, r) for i, r in enumerate(out))
    records.sort(key=lambda r: (r[0], r[1]))
    return _PCAP_HEADER + b"".join(r for _, _, r in records)


@dataclass(frozen=True)
class Step:
    """A path's recovered step: mean monthly hashrate (sum of its hosts)
    before and after the step month, their ratio and its Poisson relative
    standard deviation."""

    path: str
    before: float
    after: float
    ratio: float
    rel_std: float


def recover_step(report, planted: PlantedMiners = PLANTED_MINERS) -> list[Step]:
    """Per path of ``report`` (a :class:`~nkclass.report.hashrate.HashrateReport`),
    the hashrate step across ``planted.step_month``."""
    rows = report.per_path().to_pylist()
    steps = []
    for path in sorted({r["path"] for r in rows}):
        sides = ([r for r in rows if r["path"] == path and (r["month"] >= planted.step_month)
                  == after] for after in (False, True))
        before, after = sides
        if not before or not after:
            continue
        means, rels = [], []
        for part in (before, after):
            total = sum(r["hashrate"] for r in part)
            means.append(total / len(part))
            rels.append(sum((r["hashrate"] * r["rel_std"]) ** 2 for r in part) ** 0.5 / total)
        steps.append(Step(path, means[0], means[1], means[1] / means[0],
                          (rels[0] ** 2 + rels[1] ** 2) ** 0.5))
    return steps
