"""The DNS tunnelling score (iodine, dnscat2 style), per query zone over a batch.

Six conditions on the zone's queries: long names, long labels, high-entropy
names, data-carrying record types (TXT, NULL, CNAME, ...), many distinct names
and many queries; the contract (zones, bounds, how a flow's queries count) is
in ``csrc/include/nkclass/dns_tunnel.hpp``. The classifier uses them itself
(activity ``dns_tunnel``, evidence ``dns_score``); this module exposes them
for inspection and tests.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from nkclass import _core
from nkclass.errors import RuleError, SchemaValueError
from nkclass.flows.batch import FlowBatch
from nkclass.rules.check import check_dns_tunnel
from nkclass.rules.model import DnsTunnelOptions

#: Condition names in bit order (bit 0 first), with the DnsTunnelOptions
#: field that sets each threshold (defaults in brackets).
TUNNEL_CONDITIONS: tuple[str, ...] = (
    "long_names",  # >= name_chars [40] subdomain characters per query on average
    "long_labels",  # half the queries hold a subdomain label of >= label_bytes [24]
    "encoded",  # mean subdomain entropy >= entropy_bits [3.5] bits per byte
    "data_types",  # half the queries ask for CNAME, NULL, MX, TXT, SRV or private types
    "many_names",  # >= names [20] distinct names
    "volume",  # >= queries [100] queries
)
#: Set in a mask when the flow's zone was scored (enough queries).
TUNNEL_MEMBER = 0x80
#: A zone is a tunnel with at least this many conditions, one of them
#: long_names or long_labels (the default; rulesets set it in [dns_tunnel]).
TUNNEL_MIN_CONDITIONS = DnsTunnelOptions().min_conditions


def dns_tunnel_conditions(batch: object, options: DnsTunnelOptions | None = None, *,
                          min_queries: int | None = None) -> np.ndarray:
    """uint8 per flow: the condition bits its query's zone meets under
    ``options`` (a ruleset's ``dns_tunnel_options``; the defaults when
    None), ORed with :data:`TUNNEL_MEMBER`, or 0 when the flow carries no
    DNS query or its zone has fewer than ``min_queries`` queries (which,
    given, replaces the options' own).

    >>> import numpy as np
    >>> query = (b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00"
    ...          b"\\x3f" + b"a" * 63 + b"\\x07example\\x02kp\\x00\\x00\\x10\\x00\\x01")
    >>> masks = dns_tunnel_conditions({
    ...     "src_ip": ["10.0.0.1"], "dst_ip": ["192.0.2.53"], "src_port": np.array([50000]),
    ...     "dst_port": np.array([53]), "protocol": np.array([17]),
    ...     "src_payload": [query]}, min_queries=1)
    >>> [name for bit, name in enumerate(TUNNEL_CONDITIONS) if masks[0] >> bit & 1]
    ['long_names', 'long_labels', 'data_types']
    """
    flows = batch if isinstance(batch, FlowBatch) else FlowBatch.from_any(batch)
    if flows.src_payload is None and flows.dst_payload is None:
        raise SchemaValueError(
            "the DNS tunnelling score needs a payload column (src_payload or dst_payload)")
    if options is None:
        options = DnsTunnelOptions()
    if min_queries is not None:
        if not isinstance(min_queries, int) or isinstance(min_queries, bool) or min_queries < 0:
            raise ValueError(
                f"The 'min_queries' parameter must be an int >= 0. Got {min_queries!r} instead."
            )
        options = dataclasses.replace(options, min_queries=min_queries)
    try:
        check_dns_tunnel(options)
    except RuleError as exc:
        raise ValueError(f"The 'options' parameter is invalid: {exc}") from None
    kwargs = flows.payload_arguments()
    return _core.dns_tunnel_conditions(
        flows.n, flows.src_port, flows.dst_port, flows.protocol, packets=flows.packets,
        thresholds=options.native(), **kwargs,
    )
