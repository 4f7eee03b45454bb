"""Stubs for the private native module (see csrc/bindings/). Arrays are
taken without conversion: wrong dtypes raise TypeError."""

import numpy as np
import numpy.typing as npt

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
    ) -> tuple[U16, U8, U32, U8, U8, U16, U8]: ...
