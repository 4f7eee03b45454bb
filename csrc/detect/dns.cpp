// DNS (UDP, and TCP with its 2-byte length prefix) and multicast DNS.
//
// Structure only, no port trust beyond choosing how strict to be: on the
// DNS ports (53, 5353, 5355) a well-formed header and first name suffice;
// elsewhere the message must look like a plain recursive query (one
// question, no records but an optional EDNS one, class IN, a common type).
#include "detect_internal.hpp"
#include "nkclass/dns_wire.hpp"

namespace nkclass::det {

namespace {

bool common_qtype(std::uint16_t t) noexcept {
    switch (t) {
        case 1: case 2: case 5: case 6: case 12: case 15: case 16: case 28: case 33:
        case 35: case 43: case 46: case 48: case 52: case 64: case 65: case 255:
            return true;
        default:
            return false;
    }
}

// Parses the uncompressed name at p[i]; writes its dotted, lowercased form
// to `name` (room for kMaxName + 1 bytes) while every label byte is
// printable and not a dot and the name fits, and returns the offset after
// it, or 0 on a malformed or compressed name. `*printable` says whether
// `name[0, *name_len)` holds the whole name.
std::size_t parse_name(const std::uint8_t* p, std::size_t n, std::size_t i, char* name,
                       std::size_t* name_len, bool* printable) noexcept {
    std::size_t out = 0;
    bool ok = true;
    std::size_t total = 0;
    while (true) {
        if (i >= n) return 0;
        const std::size_t l = p[i];
        if (l == 0) {
            ++i;
            break;
        }
        if (l > 63) return 0;  // compression pointers (0xc0) and reserved forms refused
        if (i + 1 + l > n) return 0;
        total += l + 1;
        if (total > 255) return 0;
        const std::uint8_t* label = p + i + 1;
        ok = ok && out + l + 1 <= kMaxName + 1 && bytes::copy_label_lower(name + out, label, l);
        if (ok) {
            out += l;
            name[out++] = '.';
        }
        i += 1 + l;
    }
    *name_len = out > 0 ? out - 1 : 0;  // without the trailing dot
    *printable = ok && out > 0;
    return i;
}

}  // namespace

bool detect_dns(Bytes b, bool tcp, std::uint16_t sport, std::uint16_t dport,
                Detection* out) noexcept {
    const std::uint8_t* p = b.p;
    std::size_t n = b.n;
    const bool llmnr = sport == 5355 || dport == 5355;
    const bool nbns = !tcp && (sport == 137 || dport == 137);
    const bool dns_port = sport == 53 || dport == 53 || sport == 5353 || dport == 5353 || llmnr ||
                          nbns;
    if (tcp) {
        if (!(sport == 53 || dport == 53 || llmnr) || n < 14) return false;
        // DNSCrypt over TCP: the server's responses start with its magic.
        if (n >= 10 && std::memcmp(p + 2, "r6fnvWj8", 8) == 0) {
            hit(out, kAppDnscrypt, kActInfrastructure);
            return true;
        }
        dns_message(true, &p, &n);  // n >= 14: the prefix is there
    }
    if (n < 17) return false;  // header + 1-byte root name + type + class (a shorter length too)
    const std::uint16_t flags = be16(p + 2);
    const std::uint16_t qd = be16(p + 4), an = be16(p + 6), ns = be16(p + 8), ar = be16(p + 10);
    const bool response = flags & 0x8000;
    const unsigned opcode = (flags >> 11) & 0xf;
    if (flags & 0x0040) return false;  // Z bit
    // NetBIOS name service opcodes: query 0, registration 5, release 6,
    // WACK 7, refresh 8/9, multi-homed registration 15.
    if (nbns ? !(opcode == 0 || (opcode >= 5 && opcode <= 9) || opcode == 15)
             : (opcode != 0 && opcode != 4 && opcode != 5))
        return false;
    if (!dns_port) {
        if (response || opcode != 0 || qd != 1 || an != 0 || ns != 0 || ar > 1 ||
            (flags & 0x000f) != 0)
            return false;
    }
    if (qd == 0 && !(response && an > 0)) return false;  // mDNS announcements carry answers only
    if (qd > 64 || an > 256 || ns > 256 || ar > 256) return false;
    if (!response && (flags & 0x000f) != 0) return false;  // rcode in a query
    // The name goes straight into out->name; it counts only once this
    // returns true (name_written), so a refusal leaves no name behind.
    std::size_t name_len = 0;
    bool printable = false;
    const std::size_t after = parse_name(p, n, 12, out->name, &name_len, &printable);
    if (after == 0 || after + 4 > n) return false;
    const std::uint16_t qtype = be16(p + after);
    const std::uint16_t qclass = be16(p + after + 2) & 0x7fff;  // mDNS unicast-response bit
    if (qtype == 0) return false;
    if (!(qclass == 1 || qclass == 3 || qclass == 4 || qclass == 255)) return false;
    if (!dns_port && (qclass != 1 || !common_qtype(qtype))) return false;
    if (nbns) {
        // NetBIOS names are 32 letters A..P (RFC 1001 first-level encoding).
        if (name_len < 32 || p[12] != 32) return false;
        for (std::size_t i = 13; i < 13 + 32; ++i)
            if (p[i] < 'A' || p[i] > 'P') return false;
        hit(out, kAppNetbiosNs, kActInfrastructure);
        return true;
    }
    const bool mdns = !tcp && (sport == 5353 || dport == 5353);
    std::uint8_t app = mdns ? kAppMdns : llmnr ? kAppLlmnr : kAppDns;
    // DNSCrypt's certificate query: TXT for "2.dnscrypt-cert.<provider>".
    if (printable && qtype == 16 && name_len > 16 &&
        std::memcmp(out->name, "2.dnscrypt-cert.", 16) == 0)
        app = kAppDnscrypt;
    hit(out, app, app == kAppDns || app == kAppMdns ? 0 : kActInfrastructure);
    if (printable && app != kAppLlmnr) name_written(out, name_len, kNameDns);
    return true;
}

}  // namespace nkclass::det
