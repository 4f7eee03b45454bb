"""The canonical flow batch schema: the one shape every reader produces and
the classifier consumes.

Addresses are 16-byte binary in network byte order, IPv4 as IPv4-mapped IPv6
(``::ffff:a.b.c.d``), so one column holds both families. The classifier also
accepts IPv4 as ``uint32`` (host order) and addresses as text.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("ms", tz="UTC")
ADDRESS = pa.binary(16)

#: Columns every flow batch carries, in order.
REQUIRED = (
    pa.field("ts_start", TIMESTAMP, nullable=False),
    pa.field("ts_end", TIMESTAMP, nullable=False),
    pa.field("src_ip", ADDRESS, nullable=False),
    pa.field("dst_ip", ADDRESS, nullable=False),
    pa.field("src_port", pa.uint16(), nullable=False),
    pa.field("dst_port", pa.uint16(), nullable=False),
    pa.field("protocol", pa.uint8(), nullable=False),
    pa.field("packets", pa.uint64(), nullable=False),
    pa.field("bytes", pa.uint64(), nullable=False),
)

#: Columns a reader adds when its source has them.
OPTIONAL = (
    pa.field("tcp_flags", pa.uint8()),  # OR of the TCP flags of all packets
    pa.field("src_as", pa.uint32()),
    pa.field("dst_as", pa.uint32()),
    pa.field("src_payload", pa.binary()),  # first bytes the initiator sent
    pa.field("dst_payload", pa.binary()),  # first bytes the responder sent
    pa.field("app_hint", pa.string()),  # a reader's own protocol name (Zeek's service)
    pa.field("tunnel", pa.string()),  # the tunnel a decapsulated flow came out of (null: none)
    # Stratum mining counters over the whole flow (metered captures; see
    # nkclass.report.hashrate): share submissions, the pool's latest share
    # difficulty (null: none seen) and its dialect (stratum_v1, cryptonote).
    pa.field("stratum_submits", pa.uint64()),
    pa.field("stratum_difficulty", pa.float64()),
    pa.field("stratum_algo", pa.string()),
)

FLOW_SCHEMA = pa.schema(REQUIRED)
ALL_FIELDS = {f.name: f for f in (*REQUIRED, *OPTIONAL)}
