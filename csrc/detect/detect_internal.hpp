// Shared helpers and the per-family detector entry points (private to
// csrc/detect). Every function takes (pointer, length) and reads nothing
// outside [p, p + len).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "nkclass/bytes.hpp"
#include "nkclass/classifier.hpp"
#include "nkclass/detectors.hpp"
#include "nkclass/vocab.hpp"

namespace nkclass::det {

struct Bytes {
    const std::uint8_t* p = nullptr;
    std::size_t n = 0;
    std::uint8_t operator[](std::size_t i) const noexcept { return p[i]; }
    bool has(std::size_t k) const noexcept { return n >= k; }
    // True when the bytes start with the literal `s` (all of it present).
    bool starts(const char* s, std::size_t k) const noexcept {
        return n >= k && std::memcmp(p, s, k) == 0;
    }
};

inline bool digit(std::uint8_t c) noexcept { return c >= '0' && c <= '9'; }
inline bool either_port(std::uint16_t sport, std::uint16_t dport, std::uint16_t port) noexcept {
    return sport == port || dport == port;
}

using bytes::be16;
using bytes::be24;
using bytes::be32;
using bytes::le16;
using bytes::le32;
using bytes::lower;

// Marks `out` as a payload-confirmed detection.
inline void hit(Detection* out, std::uint8_t app, std::uint8_t activity) noexcept {
    out->app = app;
    out->activity = activity;
    out->rank = kRankPayload;
    out->activity_rank = kRankPayload;
    out->evidence = kEvPayload;
}

// Copies a server name (lowercased) into out->name when it is 1..kMaxName
// printable bytes (0x21..0x7e); drops a trailing dot. Returns false (and
// leaves no name) otherwise.
bool set_name(Detection* out, const std::uint8_t* s, std::size_t len, std::uint8_t kind) noexcept;
// Finishes a name a parser wrote straight into out->name (len bytes,
// lowercase, printable, len <= kMaxName): drops a trailing dot, sets the
// NUL, name_len and name_kind. Returns false (no name) when nothing is left.
bool name_written(Detection* out, std::size_t len, std::uint8_t kind) noexcept;
void set_agent(Detection* out, const std::uint8_t* s, std::size_t len) noexcept;

// A ClientHello handshake message at p (type byte first, `avail` bytes of
// it present): the server name (as tls_client_hello_sni) and first ALPN.
std::size_t parse_client_hello(const std::uint8_t* p, std::size_t avail, char* name,
                               char* alpn, std::size_t* alpn_len) noexcept;

// Family detectors. `client` is true for the initiator's bytes. Each
// returns true when it recognised the bytes and filled `out`.
bool detect_stratum(Bytes b, Detection* out) noexcept;                 // mining.cpp
bool detect_coin_p2p_tcp(Bytes b, Detection* out) noexcept;            // coin_p2p.cpp
bool detect_discv4(Bytes b, std::uint16_t sport, std::uint16_t dport,
                   Detection* out) noexcept;                            // coin_p2p.cpp
bool detect_tls(Bytes b, bool client, Detection* out) noexcept;        // tls.cpp
bool detect_quic(Bytes b, bool client, std::uint16_t sport, std::uint16_t dport,
                 Detection* out) noexcept;                               // tls.cpp
bool detect_http(Bytes b, bool client, Detection* out) noexcept;       // http.cpp
bool detect_dns(Bytes b, bool tcp, std::uint16_t sport, std::uint16_t dport,
                Detection* out) noexcept;                               // dns.cpp
bool detect_banner(Bytes b, bool client, Detection* out) noexcept;     // banners.cpp (ssh, mail, ftp)
bool detect_bittorrent(Bytes b, Detection* out) noexcept;              // bittorrent.cpp
bool detect_openvpn(Bytes src, Bytes dst, bool tcp, std::uint16_t sport, std::uint16_t dport,
                    Detection* out) noexcept;                           // vpn.cpp
bool detect_wireguard(Bytes src, Bytes dst, std::uint16_t sport, std::uint16_t dport,
                      Detection* out) noexcept;                         // vpn.cpp
bool detect_ike(Bytes b, std::uint16_t sport, std::uint16_t dport,
                Detection* out) noexcept;                               // vpn.cpp
bool detect_socks(Bytes src, Bytes dst, Detection* out) noexcept;      // socks.cpp

// Infrastructure, databases, buses and industrial protocols (infra.cpp).
// TCP: the side's bytes after its first byte picked the family.
bool detect_tcp_zero(Bytes b, bool client, std::uint16_t sport, std::uint16_t dport,
                     Detection* out) noexcept;            // 00-prefixed: lengths, NBSS, MBAP
bool detect_le_length(Bytes b, bool client, Detection* out) noexcept;  // MySQL, MongoDB, Soulseek
bool detect_tpkt(Bytes b, Detection* out) noexcept;       // RDP (TPKT + COTP)
bool detect_tds(Bytes b, Detection* out) noexcept;        // MS SQL (0x10, 0x12)
bool detect_mqtt(Bytes b, Detection* out) noexcept;       // MQTT CONNECT (0x10)
bool detect_ber(Bytes b, bool tcp, std::uint16_t sport, std::uint16_t dport,
                Detection* out) noexcept;                 // LDAP, SNMP (0x30)
bool detect_kerberos(Bytes b, Detection* out) noexcept;   // KDC messages (0x6a..0x7e)
bool detect_iec104(Bytes b, std::uint16_t sport, std::uint16_t dport,
                   Detection* out) noexcept;              // 0x68
bool detect_dnp3(Bytes b, Detection* out) noexcept;       // 05 64 + header CRC
bool detect_syslog(Bytes b, Detection* out) noexcept;     // '<' PRI '>' or octet counting
bool detect_resp(Bytes b, bool client, Detection* out) noexcept;  // Redis (* $ + - :)
bool detect_text(Bytes b, bool client, bool tcp, std::uint16_t sport, std::uint16_t dport,
                 Detection* out) noexcept;                // text openings, see infra.cpp
bool detect_udp_ports(Bytes b, std::uint16_t sport, std::uint16_t dport,
                      Detection* out) noexcept;           // NTP, RADIUS, DHCP, L2TP, ... by port
bool detect_dhcp(Bytes b, std::uint16_t sport, std::uint16_t dport, Detection* out) noexcept;
bool detect_modbus(Bytes b, Detection* out) noexcept;     // MBAP (port 502 decided)

// P2P (p2p.cpp).
bool detect_edonkey(Bytes b, bool tcp, Detection* out) noexcept;      // e3 / c5 / d4 / e4 / e5
bool detect_utp(Bytes src, Bytes dst, Detection* out) noexcept;       // BEP 29 headers
bool detect_gnutella_udp(Bytes b, Detection* out) noexcept;           // GUID descriptors, GND
bool detect_syncthing_udp(Bytes b, Detection* out) noexcept;          // discovery / relay magic

// Real time, messaging and VPN datagrams (realtime.cpp).
bool detect_stun(Bytes b, bool tcp, Detection* out) noexcept;        // RFC 5389 magic cookie
bool detect_dtls(Bytes b, Detection* out) noexcept;                   // DTLS records
bool detect_rtp(Bytes b, Detection* out) noexcept;                    // RTP v2 / RTCP
bool detect_telegram(Bytes b, std::uint16_t dport, Detection* out) noexcept;  // MTProto transports
bool detect_gre(Bytes b, Detection* out) noexcept;                    // IP protocol 47
bool detect_encrypted_guess(Bytes src, Bytes dst, Detection* out) noexcept;  // Shadowsocks-like

}  // namespace nkclass::det
