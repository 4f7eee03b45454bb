# Stub for nkclass._core.FlowMeter, to be merged into nkclass/_core.pyi.
from typing import Literal, TypedDict

import numpy as np
import numpy.typing as npt
from typing_extensions import Buffer

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
    # (data, offsets): row i is data[offsets[i]:offsets[i + 1]]
    src_payload: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]
    dst_payload: tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]

class FlowMeter:
    def __init__(
        self,
        payload_bytes: int = 512,
        idle_timeout_ms: int = 120000,
        active_timeout_ms: int = 1800000,
        max_flows: int = 1000000,
    ) -> None: ...
    def feed(self, buffer: Buffer) -> None: ...
    def drain(self, max_flows: int) -> FlowColumns: ...
    def finish(self) -> MeterStatus: ...
    def counters(self) -> MeterCounters: ...
