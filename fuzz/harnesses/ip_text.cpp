// Fuzzes the address and prefix text parsers: no read outside the given
// bytes, only canonical-alphabet text accepted, and every accepted text
// round-trips through the formatter to the same value.
#include <cstdint>

#include "fuzz_input.hpp"
#include "nkclass/ip_text.hpp"

namespace {

bool address_alphabet(const char* s, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        const char c = s[i];
        const bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
                        (c >= 'A' && c <= 'F') || c == ':' || c == '.';
        if (!ok) return false;
    }
    return true;
}

void round_trip(nkclass::IpFamily fam, nkclass::ipv4_host_t v4, const nkclass::ipv6_net_t& v6) {
    char text[64];
    nkclass::ipv4_host_t v4b = 0;
    nkclass::ipv6_net_t v6b{};
    if (fam == nkclass::IpFamily::kV4) {
        const std::size_t n = nkclass::format_ipv4(v4, text);
        fuzz::check(n <= 15, "IPv4 text fits 15 bytes");
        fuzz::check(nkclass::parse_ip(text, n, &v4b, &v6b) == nkclass::IpFamily::kV4 && v4b == v4,
                    "IPv4 text round-trips");
    } else {
        const std::size_t n = nkclass::format_ipv6(v6, text);
        fuzz::check(n <= 45, "IPv6 text fits 45 bytes");
        fuzz::check(nkclass::parse_ip(text, n, &v4b, &v6b) == nkclass::IpFamily::kV6 &&
                        std::memcmp(v6b.bytes, v6.bytes, 16) == 0,
                    "IPv6 text round-trips");
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = fuzz::exact_copy(data, size);
    const char* s = reinterpret_cast<const char*>(bytes.get());
    nkclass::ipv4_host_t v4 = 0;
    nkclass::ipv6_net_t v6{};
    const nkclass::IpFamily fam = nkclass::parse_ip(s, size, &v4, &v6);
    if (fam != nkclass::IpFamily::kInvalid) {
        fuzz::check(address_alphabet(s, size), "an accepted address is hex digits, ':' and '.'");
        round_trip(fam, v4, v6);
    }
    std::uint8_t length = 0;
    const nkclass::IpFamily pfam = nkclass::parse_prefix(s, size, &v4, &v6, &length);
    if (pfam != nkclass::IpFamily::kInvalid) {
        fuzz::check(length <= (pfam == nkclass::IpFamily::kV4 ? 32 : 128), "length in range");
        const char* slash = static_cast<const char*>(std::memchr(s, '/', size));
        fuzz::check(address_alphabet(s, slash ? std::size_t(slash - s) : size),
                    "an accepted prefix address is hex digits, ':' and '.'");
        round_trip(pfam, v4, v6);
    }
    return 0;
}
