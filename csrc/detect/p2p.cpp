// P2P file sharing beyond the BitTorrent handshake: eDonkey/eMule and Kad,
// BitTorrent over uTP (BEP 29), Gnutella UDP, Syncthing discovery and relay.
// The TCP openings of Gnutella and DirectConnect are text (infra.cpp);
// Syncthing's BEP runs inside TLS and is named by its ALPN (tls.cpp).
//
// The flow meter joins a direction's first datagrams, so a datagram whose
// length a header fixes may be followed by the next datagram: checks accept
// an exact length, or that length followed by another header of the family.
#include "detect_internal.hpp"

namespace nkclass::det {

namespace {

// eDonkey/eMule UDP opcodes and the datagram lengths they come in, as
// libprotoident and nDPI's edonkey.c list them; 0 = any length.
struct UdpOp {
    std::uint8_t proto, opcode;
    std::uint16_t len;
};
constexpr UdpOp kEdonkeyUdp[] = {
    {0xe3, 0x92, 0}, {0xe3, 0x94, 0}, {0xe3, 0x96, 6}, {0xe3, 0x98, 0}, {0xe3, 0x99, 0},
    {0xe3, 0x9a, 0}, {0xe3, 0x9b, 0}, {0xe3, 0xa2, 6}, {0xe3, 0xa3, 0},
    {0xc5, 0x90, 0}, {0xc5, 0x91, 0}, {0xc5, 0x92, 2}, {0xc5, 0x93, 2},
    {0xe4, 0x00, 27}, {0xe4, 0x08, 529}, {0xe4, 0x09, 523}, {0xe4, 0x10, 27}, {0xe4, 0x11, 0},
    {0xe4, 0x18, 27}, {0xe4, 0x19, 22}, {0xe4, 0x19, 28}, {0xe4, 0x19, 38}, {0xe4, 0x20, 35},
    {0xe4, 0x21, 35}, {0xe4, 0x40, 48}, {0xe4, 0x43, 225}, {0xe4, 0x48, 19}, {0xe4, 0x4b, 19},
    {0xe4, 0x50, 4}, {0xe4, 0x52, 36}, {0xe4, 0x58, 6}, {0xe5, 0x43, 0},
};

bool edonkey_proto(std::uint8_t c) noexcept {
    return c == 0xe3 || c == 0xc5 || c == 0xd4 || c == 0xe4 || c == 0xe5;
}

struct Utp {
    std::uint8_t type;
    std::uint16_t conn_id, seq, ack;
    std::size_t header;  // 20 plus extensions
};

// A uTP header at p (BEP 29): type 0..4 and version 1 in byte 0, an
// extension chain of known types that fits the bytes.
bool utp_header(const std::uint8_t* p, std::size_t n, Utp* h) noexcept {
    if (n < 20 || (p[0] & 0x0f) != 1 || (p[0] >> 4) > 4) return false;
    std::uint8_t ext = p[1];
    std::size_t i = 20;
    for (int k = 0; ext != 0; ++k) {
        if (k == 4 || ext > 4 || i + 2 > n) return false;
        const std::size_t len = p[i + 1];
        ext = p[i];
        i += 2 + len;
        if (i > n || len == 0) return false;
    }
    h->type = p[0] >> 4;
    h->conn_id = be16(p + 2);
    h->seq = be16(p + 16);
    h->ack = be16(p + 18);
    h->header = i;
    return true;
}

constexpr std::uint8_t kUtpData = 0, kUtpState = 2, kUtpSyn = 4;

}  // namespace

bool detect_edonkey(Bytes b, bool tcp, Detection* out) noexcept {
    if (b.n < 2 || !edonkey_proto(b[0])) return false;
    if (tcp) {
        // proto, size (LE32, opcode + payload), opcode; Hello carries the
        // 16-byte user hash size first, the server's answer (0x4c) a hash.
        if (b.n < 6 || b[0] == 0xe4 || b[0] == 0xe5) return false;
        const std::uint32_t size = le32(b.p + 1);
        if (size < 1 || size > (1u << 21)) return false;
        const std::size_t next = 5 + std::size_t(size);
        if (next < b.n && !edonkey_proto(b[next])) return false;
        const std::uint8_t op = b[5];
        const bool hello = op == 0x01 && b.n >= 7 && b[6] == 0x10 && size >= 17;
        const bool answer = op == 0x4c && size >= 17;
        if (!hello && !answer) return false;
        hit(out, kAppEdonkey, kActP2pFilesharing);
        return true;
    }
    const std::uint8_t proto = b[0], op = b[1];
    // Kad packed messages are zlib streams (78 da after the opcode).
    bool match = proto == 0xe5 && b.n >= 4 && (op == 0x08 || op == 0x28) && b[2] == 0x78 &&
                 b[3] == 0xda;
    for (const UdpOp& u : kEdonkeyUdp) {
        if (match) break;
        if (u.proto != proto || u.opcode != op) continue;
        match = u.len == 0 || b.n == u.len || (b.n > u.len && edonkey_proto(b[u.len]));
    }
    if (!match) return false;
    hit(out, kAppEdonkey, kActP2pFilesharing);
    return true;
}

bool detect_utp(Bytes src, Bytes dst, Detection* out) noexcept {
    Utp s;
    if (!utp_header(src.p, src.n, &s)) return false;
    bool confirmed = false;
    if (s.type == kUtpSyn) {
        // The responder's ST_STATE carries the SYN's connection id and acks
        // its sequence number; the initiator's next packet uses id + 1.
        Utp d;
        confirmed = utp_header(dst.p, dst.n, &d) && d.type == kUtpState &&
                    d.conn_id == s.conn_id && d.ack == s.seq;
        Utp next;
        if (!confirmed && s.header < src.n &&
            utp_header(src.p + s.header, src.n - s.header, &next))
            confirmed = next.conn_id == static_cast<std::uint16_t>(s.conn_id + 1);
    }
    if (!confirmed && s.type == kUtpData)
        confirmed = src.n >= s.header + 20 &&
                    std::memcmp(src.p + s.header, "\x13" "BitTorrent protocol", 20) == 0;
    if (!confirmed) return false;
    hit(out, kAppBittorrent, kActP2pFilesharing);
    return true;
}

bool detect_gnutella_udp(Bytes b, Detection* out) noexcept {
    if (b.n < 8) return false;
    if (b.starts("GND", 3)) {
        // GUESS/UDP framing: flags, sequence (2), part, part count.
        const std::uint8_t part = b[6], count = b[7];
        if ((b[3] & 0xf0) != 0 || part == 0 || count == 0 || part > count) return false;
        hit(out, kAppGnutella, kActP2pFilesharing);
        return true;
    }
    // Descriptor header: GUID (16), type, TTL, hops, payload length (LE32).
    auto header = [&b](std::size_t at) -> std::size_t {
        if (at + 23 > b.n) return 0;
        const std::uint8_t type = b[at + 16];
        const bool known = type == 0x00 || type == 0x01 || type == 0x02 || type == 0x31 ||
                           type == 0x32 || type == 0x40 || type == 0x80 || type == 0x81;
        const unsigned ttl = b[at + 17], hops = b[at + 18];
        const std::uint32_t len = le32(b.p + at + 19);
        if (!known || ttl + hops == 0 || ttl + hops > 16 || len > 65536) return 0;
        // Modern servents mark their GUIDs: byte 8 all ones, byte 15 zero.
        if (b[at + 8] != 0xff || b[at + 15] != 0) return 0;
        return 23 + len;
    };
    const std::size_t first = header(0);
    if (first == 0 || first > b.n || (first < b.n && header(first) == 0)) return false;
    hit(out, kAppGnutella, kActP2pFilesharing);
    return true;
}

bool detect_syncthing_udp(Bytes b, Detection* out) noexcept {
    // Local discovery (v13+) and relay magic numbers (lib/discover,
    // lib/relay/protocol).
    if (b.n < 8) return false;
    const std::uint32_t magic = be32(b.p);
    if (magic != 0x2EA7D90Bu && magic != 0x9E79BC40u) return false;
    hit(out, kAppSyncthing, kActP2pFilesharing);
    return true;
}

}  // namespace nkclass::det
