// Core value types shared by every nkclass component.
//
// Byte order and units live in the type names: an `ipv4_host_t` is an IPv4
// address as a 32-bit integer in host byte order (1.2.3.4 == 0x01020304);
// an `ipv6_net_t` is 16 bytes in network byte order, exactly as on the wire.
// No header in csrc/include includes Python.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace nkclass {

using ipv4_host_t = std::uint32_t;

struct ipv6_net_t {
    std::uint8_t bytes[16];
};
static_assert(sizeof(ipv6_net_t) == 16, "ipv6_net_t must be 16 packed bytes");

// A label attached to a prefix. 0 is the "no match" sentinel returned by
// every lookup; real labels are 1 .. kMaxLabel.
using label_t = std::uint32_t;
inline constexpr label_t kNoLabel = 0;
inline constexpr label_t kMaxLabel = 0x7fffffffu;

// 128-bit unsigned integer view of an IPv6 address (most significant byte
// first, so integer order == address order).
using u128 = unsigned __int128;

inline u128 to_u128(const ipv6_net_t& a) noexcept {
    std::uint64_t hi, lo;  // big-endian halves
    std::memcpy(&hi, a.bytes, 8);
    std::memcpy(&lo, a.bytes + 8, 8);
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_BIG_ENDIAN__
    hi = __builtin_bswap64(hi);
    lo = __builtin_bswap64(lo);
#endif
    return (u128(hi) << 64) | lo;
}

inline ipv6_net_t from_u128(u128 v) noexcept {
    ipv6_net_t a;
    for (int i = 15; i >= 0; --i) {
        a.bytes[i] = static_cast<std::uint8_t>(v & 0xff);
        v >>= 8;
    }
    return a;
}

// True when `a` is an IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291
// section 2.5.5.2); `*v4` then receives the embedded IPv4 address.
inline bool ipv4_mapped(const ipv6_net_t& a, ipv4_host_t* v4) noexcept {
    static const std::uint8_t kPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(a.bytes, kPrefix, 12) != 0) return false;
    *v4 = (ipv4_host_t(a.bytes[12]) << 24) | (ipv4_host_t(a.bytes[13]) << 16) |
          (ipv4_host_t(a.bytes[14]) << 8) | ipv4_host_t(a.bytes[15]);
    return true;
}

inline ipv6_net_t map_ipv4(ipv4_host_t v4) noexcept {
    ipv6_net_t a{};
    a.bytes[10] = 0xff;
    a.bytes[11] = 0xff;
    a.bytes[12] = static_cast<std::uint8_t>(v4 >> 24);
    a.bytes[13] = static_cast<std::uint8_t>(v4 >> 16);
    a.bytes[14] = static_cast<std::uint8_t>(v4 >> 8);
    a.bytes[15] = static_cast<std::uint8_t>(v4);
    return a;
}

// Outcome of a fallible build step: `ok` or the index of the offending
// input row and a human-readable reason. Builders never throw.
struct BuildStatus {
    bool ok = true;
    std::size_t index = 0;   // row of the input that caused the failure
    const char* reason = ""; // static string, never freed
    static BuildStatus success() { return {}; }
    static BuildStatus failure(std::size_t i, const char* why) { return {false, i, why}; }
};

}  // namespace nkclass
