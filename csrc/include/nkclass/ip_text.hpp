// Text forms of addresses and prefixes: strict parsers and formatters.
//
// Parsers take a pointer and a length (no terminating NUL needed), accept
// only canonical syntax (dotted-quad IPv4 without leading zeros, RFC 4291
// IPv6 text without zone ids) and never read outside [s, s + len).
#pragma once

#include <cstddef>
#include <cstdint>

#include "nkclass/types.hpp"

namespace nkclass {

enum class IpFamily : std::uint8_t { kInvalid = 0, kV4 = 4, kV6 = 6 };

// Parses one address: exactly `len` bytes, no surrounding space, no embedded
// NUL. On kV4 `*v4` is set; on kV6 `*v6` is set (an IPv4-mapped IPv6 text
// such as ::ffff:1.2.3.4 stays kV6).
IpFamily parse_ip(const char* s, std::size_t len, ipv4_host_t* v4, ipv6_net_t* v6) noexcept;

// Parses "address/length"; a bare address means /32 or /128. Host bits are
// not checked here (the table builders refuse them).
IpFamily parse_prefix(const char* s, std::size_t len, ipv4_host_t* v4, ipv6_net_t* v6,
                      std::uint8_t* length) noexcept;

// Writes the canonical text form into `out` (at least 46 bytes) and returns
// its length; no NUL is counted.
std::size_t format_ipv4(ipv4_host_t a, char* out) noexcept;
std::size_t format_ipv6(const ipv6_net_t& a, char* out) noexcept;

}  // namespace nkclass
