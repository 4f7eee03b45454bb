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

using bytes::be16;
using bytes::be24;
using bytes::be32;
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

// Family detectors. `client` is true for the initiator's bytes. Each
// returns true when it recognised the bytes and filled `out`.
bool detect_stratum(Bytes b, Detection* out) noexcept;                 // mining.cpp
bool detect_coin_p2p_tcp(Bytes b, Detection* out) noexcept;            // coin_p2p.cpp
bool detect_discv4(Bytes b, std::uint16_t sport, std::uint16_t dport,
                   Detection* out) noexcept;                            // coin_p2p.cpp
bool detect_tls(Bytes b, bool client, Detection* out) noexcept;        // tls.cpp
bool detect_quic(Bytes b, Detection* out) noexcept;                    // tls.cpp
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

}  // namespace nkclass::det
