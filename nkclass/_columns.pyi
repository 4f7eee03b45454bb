"""Stubs for the private Cython column decoders (nkclass/_columns.pyx)."""

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]
I64 = npt.NDArray[np.int64]

def parse_addresses(data: U8, offsets: I64, v4_out: U32, v6_out: U8, family_out: U8) -> int: ...
def parse_prefixes(
    data: U8, offsets: I64, v4_out: U32, v6_out: U8, length_out: U8, family_out: U8
) -> int: ...
def format_ipv4_column(addrs: U32, data_out: U8, offsets_out: I64) -> int: ...
def format_ipv6_column(addrs: U8, data_out: U8, offsets_out: I64) -> int: ...
