"""The flow-shape score for pool miners, per (src_ip, dst_ip, dst_port) group.

The nine conditions of Vesely & Zadnik (2019), after CESNET Nemea's
miner_detector; the contract (bounds, units, how per-flow OR'ed TCP flags
count) is in ``csrc/include/nkclass/flow_shape.hpp``. The classifier uses
them itself; this module exposes them for inspection and tests.
"""

from __future__ import annotations

import numpy as np

from nkclass import _core
from nkclass.errors import SchemaValueError
from nkclass.flows.batch import MEASUREMENT_COLUMNS, FlowBatch

#: Condition names in bit order (bit 0 first).
SHAPE_CONDITIONS: tuple[str, ...] = (
    "bytes_per_packet",  # B / P in 35..80 or 105..110
    "packets_per_flow",  # P / F outside 5..40
    "packets_per_minute",  # in 2..8 or 40..5300
    "duration",  # > 300 s from the first start to the last end
    "ack_psh_share",  # > 90% of flows
    "syn_share",  # < 5%
    "rst_share",  # < 1%
    "fin_share",  # < 5%
    "src_port_above_share",  # > 90% of flows with src_port > dst_port
)
#: Set in a mask when the flow took part (TCP, packets > 0, group large enough).
SHAPE_MEMBER = 1 << 15


def shape_conditions(batch: object, min_flows: int = 1) -> np.ndarray:
    """uint16 per flow: the condition bits its group meets, ORed with
    :data:`SHAPE_MEMBER`, or 0 when it takes no part.

    >>> import numpy as np
    >>> masks = shape_conditions({
    ...     "src_ip": ["10.0.0.1"], "dst_ip": ["192.0.2.1"], "src_port": np.array([50000]),
    ...     "dst_port": np.array([3333]), "protocol": np.array([6]),
    ...     "ts_start": np.array([0]), "ts_end": np.array([1_800_000]),
    ...     "packets": np.array([120], np.uint64), "bytes": np.array([8400], np.uint64),
    ...     "tcp_flags": np.array([0x18], np.uint8)})
    >>> [name for bit, name in enumerate(SHAPE_CONDITIONS) if not masks[0] >> bit & 1]
    []
    """
    flows = batch if isinstance(batch, FlowBatch) else FlowBatch.from_any(batch)
    if not flows.has_shape_columns:
        missing = [c for c in MEASUREMENT_COLUMNS if getattr(flows, c) is None]
        raise SchemaValueError(f"the flow-shape score needs columns {', '.join(missing)}")
    if isinstance(min_flows, bool) or not 1 <= int(min_flows) <= 2**32 - 1:
        raise ValueError(
            f"The 'min_flows' parameter must be an int >= 1. Got {min_flows!r} instead."
        )
    v4 = lambda a: a if a.dtype == np.uint32 else None  # noqa: E731
    v6 = lambda a: None if a.dtype == np.uint32 else a  # noqa: E731
    return _core.flow_shape_conditions(
        flows.n, v4(flows.src_ip), v6(flows.src_ip), v4(flows.dst_ip), v6(flows.dst_ip),
        flows.src_port, flows.dst_port, flows.protocol, flows.ts_start, flows.ts_end,
        flows.packets, flows.bytes, flows.tcp_flags, int(min_flows),
    )
