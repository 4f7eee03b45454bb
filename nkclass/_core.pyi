"""Stubs for the private native module (see csrc/bindings/). Arrays are
taken without conversion: wrong dtypes raise TypeError."""

from typing import Literal, TypedDict

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

APP_NAMES: tuple[str, ...]
ACTIVITY_NAMES: tuple[str, ...]
EVIDENCE_BITS: dict[str, int]
RANKS: dict[str, int]

U8 = npt.NDArray[np.uint8]
U16 = npt.NDArray[np.uint16]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

class BuildError(ValueError):
    """args: (row index, reason)."""

class PrefixTable:
    def __init__(
        self,
        v4_network: U32,
        v4_length: U8,
        v4_label: U32,
        v6_network: U8,
        v6_length: U8,
        v6_label: U32,
        last_wins: bool = False,
        first_stride: int = 0,
    ) -> None: ...
    def lookup_v4(self, addresses: U32) -> U32: ...
    def lookup_v6(self, addresses: U8) -> U32: ...
    @property
    def first_stride(self) -> int: ...
    @property
    def memory_bytes(self) -> int: ...
    @property
    def ipv6_intervals(self) -> int: ...

class PortTable:
    def __init__(
        self, protocol: U8, first_port: U16, last_port: U16, last_wins: bool = False
    ) -> None: ...
    def rules_for(self, protocol: U8, src_port: U16, dst_port: U16) -> U16: ...

class Classifier:
    def __init__(
        self,
        paths: PrefixTable,
        services: PrefixTable,
        ports: PortTable,
        port_codes: U8,
        port_evidence: U16,
        service_codes: U8,
        service_evidence: U16,
        path_server_activity: U8,
        precedence: U16,
        *,
        payload: PayloadInspector | None = None,
        shape_min_conditions: int = 7,  # 0..9; 0 disables the flow-shape stage
        shape_min_flows: int = 1,
        # DNS tunnelling thresholds keyed as DnsTunnelOptions.native() gives
        # them (every key; min_conditions 0 disables the stage); None: defaults
        dns_tunnel: dict[str, int | float] | None = None,
        # AS stage: table labels are AS entry ids; as_entry_verdict maps an
        # id to a verdict code; per code an (app, activity, rank) row, its
        # evidence bits and its service code (code 0 = no opinion)
        as_table: PrefixTable | None = None,
        as_codes: U8 | None = None,
        as_evidence: U16 | None = None,
        as_services: U32 | None = None,
        as_entry_verdict: U16 | None = None,
    ) -> None: ...
    def classify(
        self,
        n: int,
        src_v4: U32 | None,
        src_v6: U8 | None,
        dst_v4: U32 | None,
        dst_v6: U8 | None,
        src_port: U16,
        dst_port: U16,
        protocol: U8,
        src_payload: U8 | None = None,
        src_payload_offsets: I64 | None = None,
        dst_payload: U8 | None = None,
        dst_payload_offsets: I64 | None = None,
        *,
        ts_start: I64 | None = None,  # ms since the epoch
        ts_end: I64 | None = None,
        packets: npt.NDArray[np.uint64] | None = None,
        bytes: npt.NDArray[np.uint64] | None = None,
        tcp_flags: U8 | None = None,
        cache: PairCache | None = None,
        src_as: U32 | None = None,  # AS entry ids; 0 = look the address up
        dst_as: U32 | None = None,
    ) -> tuple[U16, U8, U32, U8, U8, U16, U8, U32]: ...  # ..., the peer's AS entry id

class PairCache:
    max_capacity: int  # 2**30
    def __init__(self, capacity: int, ttl_ms: int) -> None: ...
    def __len__(self) -> int: ...
    def clear(self) -> None: ...
    @property
    def capacity(self) -> int: ...
    @property
    def ttl_ms(self) -> int: ...
    @property
    def evictions(self) -> int: ...
    # (client (n, 16) uint8, server (n, 16) uint8, confirmed_at int64 ms), oldest first
    def entries(self) -> tuple[U8, U8, npt.NDArray[np.int64]]: ...
    def confirm(self, client: U8, server: U8, at: npt.NDArray[np.int64]) -> None: ...

# Condition bits 0..8 of each flow's (src, dst, dst_port) group | 1 << 15
# for members; 0 for flows that take no part (see flow_shape.hpp).
def flow_shape_conditions(
    n: int,
    src_v4: U32 | None,
    src_v6: U8 | None,
    dst_v4: U32 | None,
    dst_v6: U8 | None,
    src_port: U16,
    dst_port: U16,
    protocol: U8,
    ts_start: npt.NDArray[np.int64],
    ts_end: npt.NDArray[np.int64],
    packets: npt.NDArray[np.uint64],
    bytes: npt.NDArray[np.uint64],
    tcp_flags: U8,
    min_flows: int = 1,
) -> U16: ...

# Condition bits 0..5 of each DNS query flow's zone | 0x80 for members of
# scored zones; 0 for flows that take no part (see dns_tunnel.hpp).
def dns_tunnel_conditions(
    n: int,
    src_port: U16,
    dst_port: U16,
    protocol: U8,
    src_payload: U8 | None = None,
    src_payload_offsets: npt.NDArray[np.int64] | None = None,
    dst_payload: U8 | None = None,
    dst_payload_offsets: npt.NDArray[np.int64] | None = None,
    packets: npt.NDArray[np.uint64] | None = None,
    thresholds: dict[str, int | float] | None = None,  # as Classifier's dns_tunnel
) -> U8: ...

# ---- flow meter (csrc/bindings/flow_meter.cpp)
class MeterStatus(TypedDict):
    status: Literal["ok", "truncated", "corrupt"]
    offset: int  # byte offset of the bad or incomplete record
    reason: str  # empty when ok

class MeterCounters(TypedDict):
    packets: int
    bytes: int
    non_ip: int
    malformed: int
    ip_fragments: int
    flows_emitted: int
    flows_evicted: int
    memory_evictions: int  # of flows_evicted, forced out by max_memory_bytes
    wire_len_fixed: int  # records whose impossible wire length became the captured length
    peak_memory_bytes: int  # most flow-table memory held at once
    truncated: int

class FlowColumns(TypedDict):
    ts_start: npt.NDArray[np.int64]  # ms since the epoch, UTC
    ts_end: npt.NDArray[np.int64]
    src_ip: npt.NDArray[np.uint8]  # (n, 16), IPv4 as ::ffff:a.b.c.d
    dst_ip: npt.NDArray[np.uint8]
    src_port: npt.NDArray[np.uint16]
    dst_port: npt.NDArray[np.uint16]
    protocol: npt.NDArray[np.uint8]
    packets: npt.NDArray[np.uint64]
    bytes: npt.NDArray[np.uint64]  # wire frame lengths, both directions
    tcp_flags: npt.NDArray[np.uint8]
    tunnel: npt.NDArray[np.uint8]  # codes into TUNNEL_NAMES (0 = none)
    stratum_submits: npt.NDArray[np.uint64]  # share submissions over the flow's life
    stratum_difficulty: npt.NDArray[np.float64]  # the pool's latest (NaN = none)
    stratum_algo: npt.NDArray[np.uint8]  # codes into STRATUM_ALGO_NAMES (0 = none)
    # (data, offsets): row i is data[offsets[i]:offsets[i + 1]]
    src_payload: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]
    dst_payload: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]

TUNNEL_NAMES: tuple[str, ...]

class FlowMeter:
    def __init__(
        self,
        payload_bytes: int = 512,
        idle_timeout_ms: int = 120000,
        active_timeout_ms: int = 1800000,
        max_flows: int = 1000000,
        max_memory_bytes: int = 2147483648,
        decapsulate: bool = True,
    ) -> None: ...
    def feed(self, buffer: Buffer) -> None: ...
    def ready(self) -> int: ...
    def drain(self, max_flows: int) -> FlowColumns: ...
    def finish(self) -> MeterStatus: ...
    def counters(self) -> MeterCounters: ...

def meter_peak_flow_bytes(payload_bytes: int) -> int: ...

STRATUM_ALGO_NAMES: tuple[str, ...]

def stratum_counts(
    pieces: list[tuple[int, bytes] | tuple[int, bytes, bool]],
) -> tuple[int, float, str]: ...

# ---- payload detectors and domains (csrc/bindings/detectors.cpp)
COIN_NAMES: tuple[str, ...]

class Inspection(TypedDict):
    app: str
    activity: str
    app_code: int
    activity_code: int
    rank: int
    activity_rank: int
    evidence: int
    server_name: str | None
    name_source: str | None  # "sni" | "host" | "dns" | "socks"
    agent: str | None
    coin: str
    alpn: str | None
    candidates: list[tuple[int, int, int, int, int]]  # app, activity, rank, evidence, service

class StratumScan(TypedDict):
    coin: str
    agent: bytes | None

class DomainTable:
    def __init__(
        self,
        suffixes: list[str],
        services: npt.NDArray[np.uint32],
        activities: npt.NDArray[np.uint8],
    ) -> None: ...
    def lookup(self, names: list[str]) -> tuple[npt.NDArray[np.uint32], npt.NDArray[np.uint8]]: ...
    def __len__(self) -> int: ...

class PayloadInspector:
    def __init__(
        self,
        suffixes: list[str],
        services: npt.NDArray[np.uint32],
        activities: npt.NDArray[np.uint8],
    ) -> None: ...
    def inspect(
        self, protocol: int, src_port: int, dst_port: int, src_bytes: bytes, dst_bytes: bytes
    ) -> Inspection: ...
    def inspect_batch(
        self,
        protocol: npt.NDArray[np.uint8],
        src_port: npt.NDArray[np.uint16],
        dst_port: npt.NDArray[np.uint16],
        src_payload: npt.NDArray[np.uint8] | None = None,
        src_payload_offsets: npt.NDArray[np.int64] | None = None,
        dst_payload: npt.NDArray[np.uint8] | None = None,
        dst_payload_offsets: npt.NDArray[np.int64] | None = None,
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8], npt.NDArray[np.uint32]]: ...

def inspect_payload(
    protocol: int,
    src_port: int,
    dst_port: int,
    src_bytes: bytes,
    dst_bytes: bytes,
    inspector: PayloadInspector | None = None,
) -> Inspection: ...
def scan_stratum(data: bytes) -> StratumScan | None: ...
def tls_sni(data: bytes) -> str | None: ...

class QuicHello(TypedDict):
    server_name: str | None
    alpn: str | None
    version: int

QUIC_DECRYPTION: bool  # built with libcrypto: QUIC Initial packets are decrypted

def quic_client_hello(data: bytes) -> QuicHello | None: ...

# Compiled ruleset files (csrc/include/nkclass/ruleset_file.hpp): the image
# is a dict of the arrays the classifier is built from (see
# nkclass/rules/compile.py for its keys).
RULESET_FORMAT_VERSION: int

def encode_ruleset(image: dict[str, object]) -> bytes: ...
def load_ruleset(
    data: Buffer,
) -> tuple[dict[str, object] | None, str, int, str]: ...

# ---- report groups (csrc/bindings/aggregate.cpp)
# Groups in column form merged by (bucket, path, activity, extra): sums
# added, sets (buffer[offsets[g, k]:offsets[g, k + 1]], portable roaring
# formats) united. Returns (first input row of each merged group, sums
# (m, 3), sizes (m, 4), offsets (m, 5), buffer); raises BuildError(row,
# reason) for bounds outside the buffer, a damaged set or a sum past 2^64 - 1.
def merge_groups(
    bucket: I64,
    path: U16,
    activity: U8,
    extra: U32,
    sums: npt.NDArray[np.uint64],
    sizes: npt.NDArray[np.uint64],
    offsets: I64,
    buffer: bytes,
) -> tuple[U32, npt.NDArray[np.uint64], npt.NDArray[np.uint64], I64, bytes]: ...
