// The DNS tunnelling score (iodine, dnscat2 and the like), per zone over a
// batch, in the manner of the flow-shape score (flow_shape.hpp).
//
// A flow takes part when it is UDP or TCP with port 53 on either side and
// its source's payload prefix, else its destination's, starts with a DNS
// standard query (QR clear, opcode 0, one question; over TCP after the
// 2-byte length). Its query name is lowercased; its zone is the name's
// registrable part, approximated without a public-suffix list as the last
// two labels, or the last three when the last label has two characters and
// the one before it at most three (example.co.uk, example.com.au); the
// labels in front of the zone are the subdomain, where a tunnel puts its
// data. Over each zone Z with F flows, N distinct names and Q queries (a
// flow counts max(1, packets / 2) queries when the batch has a packets
// column, else 1: a tunnel that keeps one socket open is one flow of many
// queries, of which the payload prefix shows the first), the six
// conditions are (exact integer comparisons but for the entropy; the
// thresholds are DnsTunnelThresholds fields, defaults in brackets):
//
//   bit 0  long names: subdomain characters (dots included) >= name_chars [40] per
//          flow on average
//   bit 1  long labels: at least half the flows' subdomains hold a label of
//          >= label_bytes [24] bytes
//   bit 2  encoded data: the mean over flows of the Shannon entropy of the subdomain's
//          bytes (dots left out; 0 for no subdomain) is >= entropy_bits [3.5] bits per byte
//   bit 3  record types: at least half the flows ask for CNAME, NULL, MX, TXT, SRV or a
//          private-use type (65280..65534), the types tunnels carry their data in
//   bit 4  many names: N >= names [20]
//   bit 5  volume: Q >= queries [100]
//
// A zone is scored when Q >= min_queries [10]; a scored zone is a tunnel when
// it meets at least min_conditions [4] conditions, one of them bit 0 or bit 1
// (ordinary zones with many names, much traffic or TXT lookups do not carry
// data in their names). Names are bytes as sent: a tunnel's binary labels
// (iodine's base128) count like printable ones.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nkclass/classifier.hpp"

namespace nkclass {

inline constexpr unsigned kDnsTunnelConditions = 6;
inline constexpr std::uint8_t kDnsTunnelConditionMask = (1u << kDnsTunnelConditions) - 1;
// Conditions of which a tunnel needs at least one: data in the names.
inline constexpr std::uint8_t kDnsTunnelContentMask = 0x3;
// Set in a flow's mask when its zone was scored.
inline constexpr std::uint8_t kDnsTunnelMember = 0x80;

// Whether a mask written by dns_tunnel_conditions() marks a tunnel.
inline bool dns_tunnel_passes(std::uint8_t mask, unsigned min_conditions) noexcept {
    return (mask & kDnsTunnelMember) != 0 && (mask & kDnsTunnelContentMask) != 0 &&
           popcount64(mask & kDnsTunnelConditionMask) >= min_conditions;
}

// Writes, for each flow i in [0, cols.n), the condition bits of its zone
// under `t` ORed with kDnsTunnelMember, or 0 when the flow takes no part or
// its zone has fewer than t.min_queries queries (t.min_conditions plays no
// part here: see dns_tunnel_passes). `t` must pass validate_dns_tunnel().
// Needs a payload column (otherwise writes zeros); uses cols.packets when
// present. O(n) time; allocates per DNS flow and may throw std::bad_alloc;
// reads payload bytes only within their lengths. Returns the number of zones.
std::size_t dns_tunnel_conditions(const FlowColumns& cols, const DnsTunnelThresholds& t,
                                  std::uint8_t* out);

}  // namespace nkclass
