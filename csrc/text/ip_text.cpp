// Strict address parsing and formatting (see ip_text.hpp).
#include "nkclass/ip_text.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace nkclass {

namespace {

bool parse_v4(const char* s, std::size_t len, ipv4_host_t* out) noexcept {
    ipv4_host_t value = 0;
    std::size_t i = 0;
    for (int part = 0; part < 4; ++part) {
        if (part > 0) {
            if (i >= len || s[i] != '.') return false;
            ++i;
        }
        const std::size_t begin = i;
        unsigned octet = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9' && i - begin < 3) {
            octet = octet * 10 + unsigned(s[i] - '0');
            ++i;
        }
        const std::size_t digits = i - begin;
        if (digits == 0 || octet > 255) return false;
        if (digits > 1 && s[begin] == '0') return false;  // no octal-looking octets
        value = (value << 8) | octet;
    }
    if (i != len) return false;
    *out = value;
    return true;
}

bool parse_v6(const char* s, std::size_t len, ipv6_net_t* out) noexcept {
    // Longest valid text: 8 groups of 4 hex + 7 colons = 39, or with an
    // embedded dotted quad 45. inet_pton needs a NUL-terminated copy.
    char buf[48];
    if (len == 0 || len > 45) return false;
    // inet_pton stops at a NUL: "::1\0junk" must not parse as "::1".
    if (std::memchr(s, '\0', len) != nullptr) return false;
    std::memcpy(buf, s, len);
    buf[len] = '\0';
    return inet_pton(AF_INET6, buf, out->bytes) == 1;
}

}  // namespace

IpFamily parse_ip(const char* s, std::size_t len, ipv4_host_t* v4, ipv6_net_t* v6) noexcept {
    if (len == 0) return IpFamily::kInvalid;  // also keeps a null `s` away from memchr
    if (std::memchr(s, ':', len) != nullptr) {
        return parse_v6(s, len, v6) ? IpFamily::kV6 : IpFamily::kInvalid;
    }
    return parse_v4(s, len, v4) ? IpFamily::kV4 : IpFamily::kInvalid;
}

IpFamily parse_prefix(const char* s, std::size_t len, ipv4_host_t* v4, ipv6_net_t* v6,
                      std::uint8_t* length) noexcept {
    if (len == 0) return IpFamily::kInvalid;
    const char* slash = static_cast<const char*>(std::memchr(s, '/', len));
    const std::size_t addr_len = slash ? std::size_t(slash - s) : len;
    const IpFamily fam = parse_ip(s, addr_len, v4, v6);
    if (fam == IpFamily::kInvalid) return fam;
    const unsigned max_len = fam == IpFamily::kV4 ? 32 : 128;
    if (!slash) {
        *length = static_cast<std::uint8_t>(max_len);
        return fam;
    }
    std::size_t i = addr_len + 1;
    if (i >= len || len - i > 3) return IpFamily::kInvalid;
    if (len - i > 1 && s[i] == '0') return IpFamily::kInvalid;
    unsigned value = 0;
    for (; i < len; ++i) {
        if (s[i] < '0' || s[i] > '9') return IpFamily::kInvalid;
        value = value * 10 + unsigned(s[i] - '0');
    }
    if (value > max_len) return IpFamily::kInvalid;
    *length = static_cast<std::uint8_t>(value);
    return fam;
}

std::size_t format_ipv4(ipv4_host_t a, char* out) noexcept {
    std::size_t n = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
        unsigned octet = (a >> shift) & 0xffu;
        if (octet >= 100) out[n++] = char('0' + octet / 100);
        if (octet >= 10) out[n++] = char('0' + (octet / 10) % 10);
        out[n++] = char('0' + octet % 10);
        if (shift) out[n++] = '.';
    }
    return n;
}

std::size_t format_ipv6(const ipv6_net_t& a, char* out) noexcept {
    // RFC 5952: lowercase hex without leading zeros, the longest run of two
    // or more zero groups (the first on ties) as "::", and dotted IPv4 only
    // for IPv4-mapped addresses. (inet_ntop also dots ::a.b.c.d, which
    // RFC 5952 does not ask for.)
    ipv4_host_t v4;
    if (ipv4_mapped(a, &v4)) {
        std::memcpy(out, "::ffff:", 7);
        return 7 + format_ipv4(v4, out + 7);
    }
    unsigned groups[8];
    for (int g = 0; g < 8; ++g) groups[g] = (unsigned(a.bytes[2 * g]) << 8) | a.bytes[2 * g + 1];
    int best = -1, best_len = 0;
    for (int g = 0; g < 8;) {
        if (groups[g] != 0) { ++g; continue; }
        int end = g;
        while (end < 8 && groups[end] == 0) ++end;
        if (end - g > best_len && end - g >= 2) { best = g; best_len = end - g; }
        g = end;
    }
    static const char kHex[] = "0123456789abcdef";
    std::size_t n = 0;
    for (int g = 0; g < 8; ++g) {
        if (g == best) {
            out[n++] = ':';
            out[n++] = ':';
            g += best_len - 1;
            continue;
        }
        if (g > 0 && !(best >= 0 && g == best + best_len)) out[n++] = ':';
        bool started = false;
        for (int shift = 12; shift >= 0; shift -= 4) {
            const unsigned d = (groups[g] >> shift) & 0xfu;
            if (d || started || shift == 0) {
                out[n++] = kHex[d];
                started = true;
            }
        }
    }
    return n;
}

}  // namespace nkclass
