// Link-layer, IP and transport header decoding for the flow meter (private).
#pragma once

#include <cstddef>
#include <cstdint>

#include "nkclass/types.hpp"

namespace nkclass::meter {

// LINKTYPE_* values as stored in pcap and pcapng headers.
inline constexpr std::uint32_t kLinkNull = 0;
inline constexpr std::uint32_t kLinkEthernet = 1;
inline constexpr std::uint32_t kLinkRawDlt12 = 12;  // DLT_RAW on most BSDs
inline constexpr std::uint32_t kLinkRawDlt14 = 14;  // DLT_RAW on OpenBSD
inline constexpr std::uint32_t kLinkRaw = 101;
inline constexpr std::uint32_t kLinkSll = 113;
inline constexpr std::uint32_t kLinkIpv4 = 228;
inline constexpr std::uint32_t kLinkIpv6 = 229;
inline constexpr std::uint32_t kLinkSll2 = 276;

inline constexpr std::uint8_t kTcpFin = 0x01;
inline constexpr std::uint8_t kTcpSyn = 0x02;
inline constexpr std::uint8_t kTcpRst = 0x04;
inline constexpr std::uint8_t kTcpAck = 0x10;

enum class Decoded : std::uint8_t { kIp, kNonIp, kMalformed };

// Tunnel kinds a packet was carried in (the innermost one); codes as
// nkclass::kTunnelNames.
inline constexpr std::uint8_t kTunnelNone = 0, kTunnelGre = 1, kTunnelPptp = 2,
                              kTunnelVxlan = 3, kTunnelGeneve = 4, kTunnelIpip = 5,
                              kTunnel6in4 = 6, kTunnelL2tp = 7, kTunnelL2tpv3 = 8;
// Tunnels inside tunnels are followed this deep.
inline constexpr int kMaxTunnelDepth = 4;

// One decoded packet. Pointers point into the caller's frame.
struct PacketInfo {
    ipv6_net_t src;
    ipv6_net_t dst;
    std::uint16_t src_port;  // host order; 0 when the packet has no ports
    std::uint16_t dst_port;
    std::uint8_t protocol;   // IP protocol of the transport (after IPv6 extensions)
    std::uint8_t tcp_flags;  // 0 unless TCP
    bool fragment;           // an IPv4 or IPv6 fragment, first or not
    bool complete;           // the IP length field ends inside the captured bytes
    std::uint32_t tcp_seq;   // host order, TCP only
    const std::uint8_t* payload;  // L4 payload, trimmed to the IP length
    std::uint32_t payload_len;
    std::uint8_t tunnel;          // kTunnel*: the tunnel the packet came out of
};

// Decodes `caplen` bytes of a frame of link type `link_type`. Never reads
// outside [frame, frame + caplen). `out` is fully written only for kIp.
// With `decapsulate`, packets of GRE (PPTP's enhanced GRE included),
// VXLAN (UDP 4789, 8472), Geneve (UDP 6081), L2TPv2 data messages (UDP
// 1701), L2TPv3 Ethernet pseudowires (IP protocol 115, UDP 1701), IP-in-IP
// and IPv6-in-IP whose payload is an IP packet are decoded as that inner
// packet, with `tunnel` naming the innermost tunnel; a payload that is not
// IP (PPP control, encrypted PPP) leaves the outer packet as it is.
Decoded decode_frame(std::uint32_t link_type, const std::uint8_t* frame, std::size_t caplen,
                     PacketInfo* out, bool decapsulate = false) noexcept;

}  // namespace nkclass::meter
