// VPN handshakes: OpenVPN hard resets, WireGuard messages, IPsec IKE.
#include "detect_internal.hpp"

namespace nkclass::det {

namespace {

constexpr std::uint8_t kOvpnClientReset[] = {1, 7, 10};  // P_CONTROL_HARD_RESET_CLIENT_V1/V2/V3
constexpr std::uint8_t kOvpnServerReset[] = {2, 8};      // P_CONTROL_HARD_RESET_SERVER_V1/V2

template <std::size_t N>
bool in(std::uint8_t v, const std::uint8_t (&set)[N]) noexcept {
    for (std::uint8_t x : set)
        if (v == x) return true;
    return false;
}

// One OpenVPN packet (without the TCP length prefix).
struct Ovpn {
    const std::uint8_t* p;
    std::size_t n;
    std::uint8_t opcode() const noexcept { return p[0] >> 3; }
    std::uint8_t key_id() const noexcept { return p[0] & 7; }
};

bool unwrap(Bytes b, bool tcp, Ovpn* o) noexcept {
    if (tcp) {
        if (b.n < 2 + 14) return false;
        const std::size_t len = be16(b.p);
        if (len < 14 || len > 1600) return false;
        o->p = b.p + 2;
        o->n = b.n - 2 < len ? b.n - 2 : len;
        return true;
    }
    if (b.n < 14) return false;
    o->p = b.p;
    o->n = b.n;
    return true;
}

// Without tls-auth the client reset ends "ack count 0, packet id 0" right
// after the session id; with tls-auth the same follows an HMAC (16, 20, 32
// or 64 bytes) and a replay packet id plus timestamp.
bool plain_client_reset(const Ovpn& o) noexcept {
    static constexpr std::size_t kHmac[] = {0, 16, 20, 32, 64};
    for (std::size_t h : kHmac) {
        const std::size_t at = 9 + (h ? h + 8 : 0);
        if (o.n >= at + 5 && o.p[at] == 0 && be32(o.p + at + 1) == 0 &&
            (h == 0 || be32(o.p + 9 + h) != 0))
            return true;
    }
    return false;
}

}  // namespace

bool detect_openvpn(Bytes src, Bytes dst, bool tcp, std::uint16_t sport, std::uint16_t dport,
                    Detection* out) noexcept {
    Ovpn c;
    if (!unwrap(src, tcp, &c)) return false;
    if (!in(c.opcode(), kOvpnClientReset) || c.key_id() != 0) return false;
    bool confirmed = false;
    Ovpn s;
    if (unwrap(dst, tcp, &s) && in(s.opcode(), kOvpnServerReset) && s.key_id() == 0) {
        // The server echoes the client's 64-bit session id in its ack.
        const std::size_t lim = s.n < 96 ? s.n : 96;
        for (std::size_t i = 9; i + 8 <= lim && !confirmed; ++i)
            confirmed = std::memcmp(s.p + i, c.p + 1, 8) == 0;
    }
    if (!confirmed) confirmed = plain_client_reset(c) ||
                                (sport == 1194 || dport == 1194);
    if (!confirmed) return false;
    hit(out, kAppOpenvpn, kActVpn);
    return true;
}

namespace {

bool wg_header_at(Bytes b, std::size_t off) noexcept {
    return off + 4 <= b.n && b[off] >= 1 && b[off] <= 4 && b[off + 1] == 0 &&
           b[off + 2] == 0 && b[off + 3] == 0;
}

// A WireGuard message of the exact size for its type; reserved bytes zero.
// A flow meter hands over the first datagrams of a direction joined
// together, so a handshake message may also be followed by the next
// message's header (or be cut at the capture limit) instead of ending the
// buffer.
int wg_type(Bytes b) noexcept {
    if (b.n < 32 || !wg_header_at(b, 0)) return 0;
    auto fixed = [&b](std::size_t size) {
        return b.n == size || (b.n > size && wg_header_at(b, size));
    };
    switch (b[0]) {
        case 1: return fixed(148) ? 1 : 0;
        case 2: return fixed(92) ? 2 : 0;
        case 3: return fixed(64) ? 3 : 0;
        case 4: return (b.n % 16) == 0 ? 4 : 0;
        default: return 0;
    }
}

}  // namespace

// Handshake initiation/response/cookie alone are distinctive (fixed sizes);
// transport data (type 4) needs a WireGuard reply or the default port.
bool detect_wireguard(Bytes src, Bytes dst, std::uint16_t sport, std::uint16_t dport,
                      Detection* out) noexcept {
    const int s = wg_type(src);
    if (s == 0) return false;
    const int d = dst.n ? wg_type(dst) : 0;
    if (s == 4 && !(d == 4 || d == 2 || sport == 51820 || dport == 51820)) return false;
    if (s != 1 && s != 4 && d == 0) {
        if (!(sport == 51820 || dport == 51820)) return false;
    }
    hit(out, kAppWireguard, kActVpn);
    return true;
}

// IKE on UDP 500, or 4500 behind the 4-byte non-ESP marker: header of 28
// bytes with a nonzero initiator SPI, version 1.0 or 2.0, a known exchange
// type and a length field no smaller than the header or the datagram.
bool detect_ike(Bytes b, std::uint16_t sport, std::uint16_t dport, Detection* out) noexcept {
    const std::uint8_t* p = b.p;
    std::size_t n = b.n;
    if (sport == 4500 || dport == 4500) {
        if (n < 4 + 28 || be32(p) != 0) return false;
        p += 4;
        n -= 4;
    } else if (sport != 500 && dport != 500) {
        return false;
    }
    if (n < 28) return false;
    bool spi = false;
    for (int k = 0; k < 8; ++k) spi |= p[k] != 0;
    if (!spi) return false;
    const std::uint8_t version = p[17];
    const std::uint8_t exch = p[18];
    const std::uint32_t length = be32(p + 24);
    if (version == 0x10) {
        if (!(exch == 2 || exch == 4 || exch == 5 || exch == 6 || exch == 32)) return false;
    } else if (version == 0x20) {
        if (exch < 34 || exch > 37) return false;
    } else {
        return false;
    }
    if (length < 28 || length > 65535 || length < n) return false;
    hit(out, kAppIpsec, kActVpn);
    return true;
}

}  // namespace nkclass::det
