"""Stubs for the private Cython aggregation kernel (nkclass/report/_kernel.pyx)."""

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
U8 = npt.NDArray[np.uint8]

def group_ids(keys: I64, group_of: I64, group_keys: I64) -> int: ...
def sum_by_group(
    group_of: I64, n_groups: int, nbytes: U64, packets: U64, flows_out: U64, bytes_out: U64,
    packets_out: U64,
) -> None: ...
def ipv4_of_rows(rows: U8, v4_out: U32, is_v4_out: U8) -> None: ...
