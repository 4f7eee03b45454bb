// The flow-shape score for pool miners (Vesely & Zadnik 2019, after CESNET
// Nemea miner_detector; DOMAIN.md section 3.5), computed from flow records
// alone.
//
// The batch's TCP flows (protocol 6, packets > 0) are grouped by
// (src_ip, dst_ip, dst_port); IPv4 given as uint32 and as IPv4-mapped IPv6
// fall in the same group. Over each group G, with F flows, P packets and
// B bytes in total, and D = max(ts_end) - min(ts_start) in ms (0 when
// negative), the nine conditions are (all bounds inclusive, all comparisons
// exact integer arithmetic):
//
//   bit 0  bytes per packet B / P in 35..80 or 105..110
//   bit 1  packets per flow P / F outside 5..40
//   bit 2  packets per minute P * 60000 / D in 2..8 or 40..5300 (never met when D == 0)
//   bit 3  duration D > 300000 ms
//   bit 4  share of flows with ACK and PSH  > 90%
//   bit 5  share of flows with SYN          <  5%
//   bit 6  share of flows with RST          <  1%
//   bit 7  share of flows with FIN          <  5%
//   bit 8  share of flows with src_port > dst_port > 90%
//
// tcp_flags is the OR of the flags of all the flow's packets, so "share of
// flows with X" is the share of flows whose OR has X. One complete TCP
// session exported as one flow has SYN and FIN; a long session exported in
// pieces by the meter's active timeout has SYN only in its first piece and
// FIN only in its last, which is what the SYN and FIN conditions measure.
// B and P are summed as the flows give them (bytes of both directions).
//
// The score is (conditions met) / 9; a flow passes when its group meets at
// least `min_conditions` of them.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nkclass/classifier.hpp"

namespace nkclass {

inline constexpr unsigned kShapeConditions = 9;
inline constexpr std::uint16_t kShapeConditionMask = (1u << kShapeConditions) - 1;
// Set in a flow's mask when it took part in the stage (its group was scored).
inline constexpr std::uint16_t kShapeMember = 1u << 15;

// TCP flag bits as in the TCP header.
inline constexpr std::uint8_t kTcpFin = 0x01, kTcpSyn = 0x02, kTcpRst = 0x04, kTcpPsh = 0x08,
                              kTcpAck = 0x10;

// Writes, for each flow i in [0, cols.n), the condition bits of its group
// ORed with kShapeMember, or 0 when the flow takes no part: not TCP, no
// packets, or a group of fewer than `min_flows` flows. Needs
// cols.has_shape_columns() (otherwise writes zeros). O(n) time; allocates a
// group table of O(number of TCP flows) and may throw std::bad_alloc;
// touches nothing else. Returns the number of groups. Batches of
// 2^32 - 1 flows or more are not grouped (all zeros).
std::size_t flow_shape_conditions(const FlowColumns& cols, std::uint32_t min_flows,
                                  std::uint16_t* out);

}  // namespace nkclass
