// Frame decoding. Every length is checked against the bytes captured before
// it is used; IP lengths trim link-layer padding (Ethernet pads to 60 bytes,
// which must not leak into payload prefixes).
#include "packet_decode.hpp"

#include <algorithm>
#include <cstring>

#include "nkclass/bytes.hpp"

namespace nkclass::meter {

namespace {

using bytes::be16;
using bytes::be32;

constexpr std::uint16_t kEtherIpv4 = 0x0800;
constexpr std::uint16_t kEtherIpv6 = 0x86dd;
constexpr std::uint16_t kEtherVlan = 0x8100;
constexpr std::uint16_t kEtherQinQ = 0x88a8;
constexpr std::uint16_t kEtherQinQLegacy = 0x9100;
constexpr int kMaxVlanTags = 4;
constexpr int kMaxIpv6ExtHeaders = 8;  // more than any sane packet carries

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;
constexpr std::uint8_t kIp6HopByHop = 0;
constexpr std::uint8_t kIp6Routing = 43;
constexpr std::uint8_t kIp6Fragment = 44;
constexpr std::uint8_t kIp6Auth = 51;
constexpr std::uint8_t kIp6DestOpts = 60;

constexpr std::uint16_t kEtherPppoeSession = 0x8864;
constexpr std::uint16_t kEtherBridging = 0x6558;   // GRE / Geneve: an Ethernet frame inside
constexpr std::uint16_t kEtherPpp = 0x880b;        // PPTP's enhanced GRE
constexpr std::uint8_t kProtoIpip = 4;
constexpr std::uint8_t kProtoIpv6 = 41;
constexpr std::uint8_t kProtoGre = 47;
constexpr std::uint8_t kProtoL2tpv3 = 115;

// Decapsulation state threaded through a packet's decoding: whether to
// look inside tunnels and how deep we are.
struct Decap {
    bool on;
    int depth;
};

Decoded decode_ipv4(const std::uint8_t* p, std::size_t len, PacketInfo* out, Decap d) noexcept;
Decoded decode_ipv6(const std::uint8_t* p, std::size_t len, PacketInfo* out, Decap d) noexcept;
Decoded decode_ethertype(const std::uint8_t* frame, std::size_t caplen, std::size_t off,
                         PacketInfo* out, Decap d) noexcept;

// Decodes the packet inside a tunnel into `out` when it is a well-formed IP
// packet (then `out->tunnel` names the innermost tunnel); leaves `out`
// untouched and returns false otherwise.
bool inner_ip(std::uint8_t kind, const std::uint8_t* p, std::size_t len, int version,
              PacketInfo* out, Decap d) noexcept {
    PacketInfo inner;
    inner.tunnel = kTunnelNone;
    const Decap next{d.on, d.depth + 1};
    Decoded r;
    if (version == 4) {
        r = decode_ipv4(p, len, &inner, next);
    } else if (version == 6) {
        r = decode_ipv6(p, len, &inner, next);
    } else if (version == 0 && len >= 14) {  // an Ethernet frame
        r = decode_ethertype(p, len, 12, &inner, next);
    } else {
        return false;
    }
    if (r != Decoded::kIp) return false;
    if (inner.tunnel == kTunnelNone) inner.tunnel = kind;
    // Completeness is the outer packet's: the frame's lengths are checked
    // against it.
    inner.complete = out->complete;
    *out = inner;
    return true;
}

// A PPP frame at p[off] (after a tunnel's own header): address/control
// ff 03 unless compressed, then a 1- or 2-byte protocol; IPv4 and IPv6 are
// decoded as the inner packet, anything else (LCP, CCP, encrypted PPP) is
// not.
bool ppp_inner(std::uint8_t kind, const std::uint8_t* p, std::size_t len, std::size_t off,
               PacketInfo* out, Decap d) noexcept {
    if (off + 2 > len) return false;
    if (p[off] == 0xff && p[off + 1] == 0x03) off += 2;
    if (off + 1 > len) return false;
    std::uint16_t proto = p[off];
    if ((proto & 1) == 0) {
        if (off + 2 > len) return false;
        proto = be16(p + off);
        off += 2;
    } else {
        off += 1;
    }
    if (proto == 0x0021) return inner_ip(kind, p + off, len - off, 4, out, d);
    if (proto == 0x0057) return inner_ip(kind, p + off, len - off, 6, out, d);
    return false;
}

// GRE (RFC 2784, 2890) and PPTP's enhanced GRE (RFC 2637, version 1: key
// and optional sequence/ack numbers, then a PPP frame).
bool gre_inner(const std::uint8_t* p, std::size_t len, PacketInfo* out, Decap d) noexcept {
    if (len < 4) return false;
    const std::uint8_t flags = p[0];
    const unsigned version = p[1] & 7;
    const std::uint16_t type = be16(p + 2);
    std::size_t off = 4;
    if (version == 0) {
        if (flags & 0x80) off += 4;  // checksum + reserved
        if (flags & 0x20) off += 4;  // key
        if (flags & 0x10) off += 4;  // sequence
        if (off > len) return false;
        if (type == 0x0800) return inner_ip(kTunnelGre, p + off, len - off, 4, out, d);
        if (type == 0x86dd) return inner_ip(kTunnelGre, p + off, len - off, 6, out, d);
        if (type == kEtherBridging) return inner_ip(kTunnelGre, p + off, len - off, 0, out, d);
        return false;
    }
    if (version != 1 || type != kEtherPpp || (flags & 0x20) == 0) return false;
    off += 4;                      // payload length + call id
    if (flags & 0x10) off += 4;    // sequence
    if (p[1] & 0x80) off += 4;     // acknowledgement
    return ppp_inner(kTunnelPptp, p, len, off, out, d);
}

// L2TPv2 data messages (RFC 2661 3.1) on UDP 1701: flags and version, then
// the optional length, tunnel and session ids, optional Ns/Nr and an
// optional offset pad, then a PPP frame. Control messages (T bit) carry no
// packets.
bool l2tp_inner(const std::uint8_t* p, std::size_t len, PacketInfo* out, Decap d) noexcept {
    if (len < 6) return false;
    const std::uint8_t flags = p[0];
    if ((flags & 0x80) != 0 || (p[1] & 0x0f) != 2) return false;
    std::size_t off = 2;
    if (flags & 0x40) {  // length of the whole message: trims what follows it
        const std::size_t total = be16(p + 2);
        if (total < 6 || total > len) return false;
        len = total;
        off += 2;
    }
    off += 4;                    // tunnel id + session id
    if (flags & 0x08) off += 4;  // Ns + Nr
    if (flags & 0x02) {          // offset size, then that many pad bytes
        if (off + 2 > len) return false;
        off += 2 + std::size_t(be16(p + off));
    }
    return ppp_inner(kTunnelL2tp, p, len, off, out, d);
}

// L2TPv3 data messages (RFC 3931 4.1) whose session id sits at
// p[session_at]: over IP the message starts with it (session id 0 marks a
// control message), over UDP after the flags and version (3, T bit clear)
// and two reserved bytes. A cookie of 0, 4 or 8 bytes and an optional
// L2-specific sublayer follow, but their lengths are session configuration,
// never on the wire: so the payload is decoded only when, after 0, 4 or 8
// bytes (a cookie, or a shorter cookie and the 4-byte default sublayer), it
// parses as an Ethernet frame carrying IPv4 or IPv6, the first such offset
// winning. Other pseudowires (PPP, HDLC, Frame Relay) stay outer flows. At a
// wrong offset, MAC address bytes would have to read as an EtherType and a
// valid IP header to be taken.
bool l2tpv3_inner(const std::uint8_t* p, std::size_t len, std::size_t session_at,
                  PacketInfo* out, Decap d) noexcept {
    if (session_at + 4 > len || be32(p + session_at) == 0) return false;
    static constexpr std::size_t kCookieBytes[] = {0, 4, 8};
    const std::size_t payload = session_at + 4;
    for (const std::size_t cookie : kCookieBytes) {
        if (payload + cookie + 14 > len) return false;
        if (inner_ip(kTunnelL2tpv3, p + payload + cookie, len - payload - cookie, 0, out, d))
            return true;
    }
    return false;
}

// UDP tunnels by their IANA ports: VXLAN (RFC 7348; 8472 is Linux's old
// default), Geneve (RFC 8926) and L2TP versions 2 and 3 (1701 on either
// side: a client's source port may be any).
bool udp_inner(std::uint16_t sport, std::uint16_t dport, const std::uint8_t* p, std::size_t len,
               PacketInfo* out, Decap d) noexcept {
    if (dport == 1701 || sport == 1701) {
        if (l2tp_inner(p, len, out, d)) return true;
        const bool l2tpv3_data = len >= 4 && (p[0] & 0x80) == 0 && (p[1] & 0x0f) == 3;
        if (l2tpv3_data && l2tpv3_inner(p, len, 4, out, d)) return true;
    }
    if (dport == 4789 || dport == 8472 || sport == 4789) {
        if (len < 8 + 14 || (p[0] & 0x08) == 0) return false;
        return inner_ip(kTunnelVxlan, p + 8, len - 8, 0, out, d);
    }
    if (dport == 6081 || sport == 6081) {
        if (len < 8 || (p[0] >> 6) != 0) return false;
        const std::size_t off = 8 + std::size_t(p[0] & 0x3f) * 4;
        if (off > len) return false;
        const std::uint16_t type = be16(p + 2);
        if (type == kEtherBridging) return inner_ip(kTunnelGeneve, p + off, len - off, 0, out, d);
        if (type == 0x0800) return inner_ip(kTunnelGeneve, p + off, len - off, 4, out, d);
        if (type == 0x86dd) return inner_ip(kTunnelGeneve, p + off, len - off, 6, out, d);
    }
    return false;
}

// `has_header` is false for non-first fragments: their bytes are the middle
// of a transport segment, so there are no ports to read.
Decoded decode_l4(std::uint8_t proto, const std::uint8_t* p, std::size_t len, bool has_header,
                  PacketInfo* out, Decap d) noexcept {
    if (d.on && has_header && d.depth < kMaxTunnelDepth) {
        if (proto == kProtoIpip && inner_ip(kTunnelIpip, p, len, 4, out, d)) return Decoded::kIp;
        if (proto == kProtoIpv6 && inner_ip(kTunnel6in4, p, len, 6, out, d)) return Decoded::kIp;
        if (proto == kProtoGre && gre_inner(p, len, out, d)) return Decoded::kIp;
        if (proto == kProtoL2tpv3 && l2tpv3_inner(p, len, 0, out, d)) return Decoded::kIp;
        if (proto == kProtoUdp && len >= 8) {
            const std::size_t udp_len = be16(p + 4);
            const std::size_t end = (udp_len >= 8 && udp_len <= len) ? udp_len : len;
            if (udp_inner(be16(p), be16(p + 2), p + 8, end - 8, out, d)) return Decoded::kIp;
        }
    }
    out->tunnel = kTunnelNone;
    out->protocol = proto;
    out->src_port = out->dst_port = 0;
    out->tcp_flags = 0;
    out->tcp_seq = 0;
    out->payload = p;
    out->payload_len = 0;
    if (!has_header) return Decoded::kIp;
    if (proto == kProtoTcp) {
        if (len < 20) return Decoded::kMalformed;
        const std::size_t doff = std::size_t(p[12] >> 4) * 4;
        if (doff < 20 || doff > len) return Decoded::kMalformed;
        out->src_port = be16(p);
        out->dst_port = be16(p + 2);
        out->tcp_seq = be32(p + 4);
        out->tcp_flags = p[13];
        out->payload = p + doff;
        out->payload_len = static_cast<std::uint32_t>(len - doff);
        return Decoded::kIp;
    }
    if (proto == kProtoUdp) {
        if (len < 8) return Decoded::kMalformed;
        out->src_port = be16(p);
        out->dst_port = be16(p + 2);
        const std::size_t udp_len = be16(p + 4);
        // A UDP length of 0 (jumbograms) or past the capture keeps what is there.
        const std::size_t end = (udp_len >= 8 && udp_len <= len) ? udp_len : len;
        out->payload = p + 8;
        out->payload_len = static_cast<std::uint32_t>(end - 8);
        return Decoded::kIp;
    }
    out->payload_len = static_cast<std::uint32_t>(len);
    return Decoded::kIp;
}

Decoded decode_ipv4(const std::uint8_t* p, std::size_t len, PacketInfo* out, Decap d) noexcept {
    if (len < 20 || (p[0] >> 4) != 4) return Decoded::kMalformed;
    const std::size_t ihl = std::size_t(p[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > len) return Decoded::kMalformed;
    const std::size_t total = be16(p + 2);
    // Total length 0 appears in captures of TCP segmentation offload.
    if (total != 0 && total < ihl) return Decoded::kMalformed;
    const std::size_t end = total == 0 ? len : std::min(total, len);
    out->complete = total != 0 && total <= len;
    out->src = map_ipv4(be32(p + 12));
    out->dst = map_ipv4(be32(p + 16));
    const std::uint16_t frag = be16(p + 6);
    const bool first_fragment = (frag & 0x1fff) == 0;
    out->fragment = (frag & 0x3fff) != 0;  // offset or more-fragments set
    return decode_l4(p[9], p + ihl, end - ihl, first_fragment, out, d);
}

Decoded decode_ipv6(const std::uint8_t* p, std::size_t len, PacketInfo* out, Decap d) noexcept {
    if (len < 40 || (p[0] >> 4) != 6) return Decoded::kMalformed;
    const std::size_t payload_len = be16(p + 4);
    const std::size_t end = payload_len == 0 ? len : std::min(40 + payload_len, len);
    out->complete = payload_len != 0 && 40 + payload_len <= len;
    std::memcpy(out->src.bytes, p + 8, 16);
    std::memcpy(out->dst.bytes, p + 24, 16);
    out->fragment = false;
    std::uint8_t next = p[6];
    std::size_t off = 40;
    for (int i = 0; i < kMaxIpv6ExtHeaders; ++i) {
        std::size_t ext_len;
        switch (next) {
            case kIp6HopByHop:
            case kIp6Routing:
            case kIp6DestOpts:
                if (off + 8 > end) return Decoded::kMalformed;
                ext_len = (std::size_t(p[off + 1]) + 1) * 8;
                break;
            case kIp6Auth:
                if (off + 8 > end) return Decoded::kMalformed;
                ext_len = (std::size_t(p[off + 1]) + 2) * 4;
                break;
            case kIp6Fragment: {
                if (off + 8 > end) return Decoded::kMalformed;
                out->fragment = true;
                const bool first_fragment = (be16(p + off + 2) & 0xfff8) == 0;
                next = p[off];
                off += 8;
                if (!first_fragment) return decode_l4(next, p + off, end - off, false, out, d);
                continue;
            }
            default:
                return decode_l4(next, p + off, end - off, true, out, d);
        }
        next = p[off];
        off += ext_len;
        if (off > end) return Decoded::kMalformed;
    }
    return Decoded::kMalformed;
}

Decoded decode_by_version(const std::uint8_t* p, std::size_t len, PacketInfo* out,
                          Decap d) noexcept {
    if (len < 1) return Decoded::kMalformed;
    switch (p[0] >> 4) {
        case 4: return decode_ipv4(p, len, out, d);
        case 6: return decode_ipv6(p, len, out, d);
        default: return Decoded::kMalformed;
    }
}

// `off` points at the 2-byte EtherType; VLAN tags in front of the real type
// are skipped.
Decoded decode_ethertype(const std::uint8_t* frame, std::size_t caplen, std::size_t off,
                         PacketInfo* out, Decap d) noexcept {
    std::uint16_t type = be16(frame + off);
    off += 2;
    for (int tags = 0; type == kEtherVlan || type == kEtherQinQ || type == kEtherQinQLegacy;
         ++tags) {
        if (tags == kMaxVlanTags || off + 4 > caplen) return Decoded::kMalformed;
        type = be16(frame + off + 2);
        off += 4;
    }
    if (type == kEtherIpv4) return decode_ipv4(frame + off, caplen - off, out, d);
    if (type == kEtherIpv6) return decode_ipv6(frame + off, caplen - off, out, d);
    if (type == kEtherPppoeSession) {
        // PPPoE session (RFC 2516): version/type 0x11, code 0, session,
        // length, then the PPP protocol (IPv4 0x0021, IPv6 0x0057).
        if (off + 8 > caplen || frame[off] != 0x11 || frame[off + 1] != 0)
            return Decoded::kMalformed;
        const std::uint16_t ppp = be16(frame + off + 6);
        if (ppp == 0x0021) return decode_ipv4(frame + off + 8, caplen - off - 8, out, d);
        if (ppp == 0x0057) return decode_ipv6(frame + off + 8, caplen - off - 8, out, d);
    }
    return Decoded::kNonIp;
}

}  // namespace

Decoded decode_frame(std::uint32_t link_type, const std::uint8_t* frame, std::size_t caplen,
                     PacketInfo* out, bool decapsulate) noexcept {
    const Decap d{decapsulate, 0};
    out->tunnel = kTunnelNone;
    switch (link_type) {
        case kLinkEthernet:
            if (caplen < 14) return Decoded::kMalformed;
            return decode_ethertype(frame, caplen, 12, out, d);
        case kLinkSll:
            if (caplen < 16) return Decoded::kMalformed;
            return decode_ethertype(frame, caplen, 14, out, d);
        case kLinkSll2:
            if (caplen < 20) return Decoded::kMalformed;
            // SLL2 puts the protocol first; the IP header starts at byte 20.
            if (be16(frame) == kEtherIpv4) return decode_ipv4(frame + 20, caplen - 20, out, d);
            if (be16(frame) == kEtherIpv6) return decode_ipv6(frame + 20, caplen - 20, out, d);
            return Decoded::kNonIp;
        case kLinkRaw:
        case kLinkRawDlt12:
        case kLinkRawDlt14:
            return decode_by_version(frame, caplen, out, d);
        case kLinkIpv4:
            return decode_ipv4(frame, caplen, out, d);
        case kLinkIpv6:
            return decode_ipv6(frame, caplen, out, d);
        case kLinkNull: {
            if (caplen < 4) return Decoded::kMalformed;
            // The address family is in the capturing host's byte order.
            const std::uint32_t le = std::uint32_t(frame[0]) | (std::uint32_t(frame[1]) << 8) |
                                     (std::uint32_t(frame[2]) << 16) |
                                     (std::uint32_t(frame[3]) << 24);
            const std::uint32_t family = le < 0x10000 ? le : be32(frame);
            if (family == 2) return decode_ipv4(frame + 4, caplen - 4, out, d);
            // AF_INET6 is 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
            if (family == 24 || family == 28 || family == 30)
                return decode_ipv6(frame + 4, caplen - 4, out, d);
            return Decoded::kNonIp;
        }
        default:
            return Decoded::kNonIp;
    }
}

}  // namespace nkclass::meter
