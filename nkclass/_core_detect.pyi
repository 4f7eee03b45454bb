# Stubs for the detector and domain parts of nkclass._core (to be merged
# into _core.pyi).
from typing import TypedDict

import numpy as np
import numpy.typing as npt

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

# Classifier.__init__ gains a keyword-only argument:
#     payload: PayloadInspector | None = None
