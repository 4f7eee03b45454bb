// QUIC Initial decryption (see detectors.hpp: quic_client_hello).
//
// Initial packets are protected with keys every observer can derive from
// the client's first Destination Connection ID (RFC 9001 5.2): this reads
// the ClientHello's server name and ALPN the way a TLS ClientHello is read.
// The cipher work (AES-128-GCM, AES-128 for header protection, HKDF-SHA256)
// is libcrypto's, through crypto.hpp.
#include "crypto.hpp"
#include "detect_internal.hpp"

namespace nkclass {

namespace {

struct VersionKeys {
    std::uint8_t salt[20];
    const char* key_label;
    const char* iv_label;
    const char* hp_label;
    bool v2;  // RFC 9369 packet type numbering
};

// RFC 9001 5.2 (v1, also drafts 33-34), draft-ietf-quic-tls-29 (drafts
// 29-32), RFC 9369 3.3.1 (v2).
constexpr VersionKeys kV1 = {{0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34, 0xb3, 0x4d, 0x17,
                              0x9a, 0xe6, 0xa4, 0xc8, 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a},
                             "quic key", "quic iv", "quic hp", false};
constexpr VersionKeys kDraft29 = {{0xaf, 0xbf, 0xec, 0x28, 0x99, 0x93, 0xd2, 0x4c, 0x9e, 0x97,
                                   0x86, 0xf1, 0x9c, 0x61, 0x11, 0xe0, 0x43, 0x90, 0xa8, 0x99},
                                  "quic key", "quic iv", "quic hp", false};
constexpr VersionKeys kV2 = {{0x0d, 0xed, 0xe3, 0xde, 0xf7, 0x00, 0xa6, 0xdb, 0x81, 0x93,
                              0x81, 0xbe, 0x6e, 0x26, 0x9d, 0xcb, 0xf9, 0xbd, 0x2e, 0xd9},
                             "quicv2 key", "quicv2 iv", "quicv2 hp", true};

const VersionKeys* keys_for(std::uint32_t version) noexcept {
    if (version == 0x00000001u || version == 0xff000021u || version == 0xff000022u) return &kV1;
    if (version >= 0xff00001du && version <= 0xff000020u) return &kDraft29;
    if (version == 0x6b3343cfu) return &kV2;
    return nullptr;
}

// A QUIC variable-length integer at p[*i]; false when it does not fit.
bool varint(const std::uint8_t* p, std::size_t n, std::size_t* i, std::uint64_t* v) noexcept {
    if (*i >= n) return false;
    const std::size_t len = std::size_t(1) << (p[*i] >> 6);
    if (*i + len > n) return false;
    std::uint64_t x = p[*i] & 0x3f;
    for (std::size_t k = 1; k < len; ++k) x = (x << 8) | p[*i + k];
    *i += len;
    *v = x;
    return true;
}

struct Keys {
    std::uint8_t key[16], iv[12], hp[16];
};

bool derive(const VersionKeys& vk, const std::uint8_t* dcid, std::size_t dcid_len,
            Keys* k) noexcept {
    std::uint8_t initial[32], client[32];
    return crypto::hkdf_extract(vk.salt, sizeof vk.salt, dcid, dcid_len, initial) &&
           crypto::hkdf_expand_label(initial, "client in", client, 32) &&
           crypto::hkdf_expand_label(client, vk.key_label, k->key, 16) &&
           crypto::hkdf_expand_label(client, vk.iv_label, k->iv, 12) &&
           crypto::hkdf_expand_label(client, vk.hp_label, k->hp, 16);
}

constexpr std::size_t kCryptoCap = 4096;  // ClientHello bytes reassembled
constexpr std::size_t kMaxPacket = 1500 * 2;

// The CRYPTO stream of the Initial packets: bytes from offset 0 while
// contiguous.
struct CryptoStream {
    std::uint8_t data[kCryptoCap];
    std::size_t filled = 0;  // contiguous from offset 0
    // Out-of-order frames are kept only if they fit right after `filled`
    // once earlier ones arrive; a few pending ranges are remembered.
    struct Range { std::size_t off, len; };
    Range pending[8];
    std::size_t n_pending = 0;

    void add(std::uint64_t off, const std::uint8_t* p, std::size_t len) noexcept {
        if (off >= kCryptoCap) return;
        std::size_t take = len;
        if (off + take > kCryptoCap) take = kCryptoCap - static_cast<std::size_t>(off);
        std::memcpy(data + off, p, take);
        if (off <= filled) {
            if (off + take > filled) filled = static_cast<std::size_t>(off) + take;
        } else if (n_pending < 8) {
            pending[n_pending++] = {static_cast<std::size_t>(off), take};
        }
        // Ranges now reachable extend the contiguous prefix.
        for (bool grew = true; grew;) {
            grew = false;
            for (std::size_t r = 0; r < n_pending; ++r)
                if (pending[r].off <= filled && pending[r].off + pending[r].len > filled) {
                    filled = pending[r].off + pending[r].len;
                    grew = true;
                }
        }
    }
};

// Walks the frames of a decrypted Initial payload; CRYPTO data goes to
// `stream`. Stops at the first frame type Initial packets may not carry
// (or at the end of a payload cut short).
void read_frames(const std::uint8_t* p, std::size_t n, CryptoStream* stream) noexcept {
    std::size_t i = 0;
    while (i < n) {
        const std::uint8_t type = p[i];
        if (type == 0x00 || type == 0x01) {  // PADDING, PING
            ++i;
            continue;
        }
        if (type == 0x06) {  // CRYPTO: offset, length, data
            ++i;
            std::uint64_t off = 0, len = 0;
            if (!varint(p, n, &i, &off) || !varint(p, n, &i, &len)) return;
            const std::size_t have = n - i < len ? n - i : static_cast<std::size_t>(len);
            stream->add(off, p + i, have);
            if (have < len) return;
            i += have;
            continue;
        }
        if (type == 0x02 || type == 0x03) {  // ACK (rare in a client's first Initials)
            ++i;
            std::uint64_t v = 0, ranges = 0;
            if (!varint(p, n, &i, &v) || !varint(p, n, &i, &v) || !varint(p, n, &i, &ranges) ||
                !varint(p, n, &i, &v) || ranges > 64)
                return;
            for (std::uint64_t r = 0; r < ranges; ++r)
                if (!varint(p, n, &i, &v) || !varint(p, n, &i, &v)) return;
            if (type == 0x03)
                for (int k = 0; k < 3; ++k)
                    if (!varint(p, n, &i, &v)) return;
            continue;
        }
        return;  // CONNECTION_CLOSE or anything else ends the walk
    }
}

}  // namespace

bool quic_decryption_available() noexcept { return crypto::available(); }

bool quic_client_hello(const std::uint8_t* p, std::size_t len, QuicHello* out) noexcept {
    out->name_len = out->alpn_len = 0;
    out->version = 0;
    if (len < 7 || (p[0] & 0xc0) != 0xc0) return false;
    const std::uint32_t version = det::be32(p + 1);
    const VersionKeys* vk = keys_for(version);
    if (vk == nullptr) return false;
    out->version = version;
    const std::uint8_t initial_type = vk->v2 ? 1 : 0;

    Keys keys;
    bool have_keys = false;
    CryptoStream stream;
    std::uint8_t packet[kMaxPacket];
    std::size_t at = 0;
    for (int packets = 0; packets < 8 && at + 7 <= len; ++packets) {
        const std::uint8_t* h = p + at;
        const std::size_t room = len - at;
        if ((h[0] & 0xc0) != 0xc0) {
            // Zero padding after the last packet of a datagram; the next
            // datagram (joined by the meter) starts at the next long header.
            std::size_t k = 0;
            while (k < room && h[k] == 0) ++k;
            if (k == 0 || k == room) break;
            at += k;
            continue;
        }
        if (det::be32(h + 1) != version) break;
        std::size_t i = 5;
        const std::size_t dcid_len = h[i];
        if (dcid_len > 20 || i + 1 + dcid_len >= room) break;
        const std::uint8_t* dcid = h + i + 1;
        i += 1 + dcid_len;
        const std::size_t scid_len = h[i];
        if (scid_len > 20 || i + 1 + scid_len > room) break;
        i += 1 + scid_len;
        const std::uint8_t type = (h[0] >> 4) & 3;
        std::uint64_t token_len = 0, length = 0;
        if (type == initial_type) {
            if (!varint(h, room, &i, &token_len) || token_len > room - i) break;
            i += static_cast<std::size_t>(token_len);
        }
        if (!varint(h, room, &i, &length) || length < 20 || length > kMaxPacket) break;
        const std::size_t pn_offset = i;
        const std::size_t packet_end = pn_offset + static_cast<std::size_t>(length);
        if (type != initial_type) {  // 0-RTT, Handshake: skip by length
            at += packet_end;
            continue;
        }
        // Keys come from the first Initial's Destination Connection ID.
        if (!have_keys) {
            if (!derive(*vk, dcid, dcid_len, &keys)) return false;
            have_keys = true;
        }
        if (pn_offset + 4 + 16 > room) break;  // no header-protection sample
        std::uint8_t mask[16];
        if (!crypto::aes128_block(keys.hp, h + pn_offset + 4, mask)) return false;
        const std::uint8_t first = h[0] ^ (mask[0] & 0x0f);
        const std::size_t pn_len = (first & 3) + 1;
        if (pn_offset + pn_len >= packet_end) break;
        const bool complete = packet_end <= room;
        const std::size_t end = complete ? packet_end : room;
        if (end > kMaxPacket || end < pn_offset + pn_len) break;
        // The header with protection removed is the AEAD's associated data.
        std::memcpy(packet, h, pn_offset + pn_len);
        packet[0] = first;
        std::uint64_t pn = 0;
        for (std::size_t k = 0; k < pn_len; ++k) {
            packet[pn_offset + k] ^= mask[1 + k];
            pn = (pn << 8) | packet[pn_offset + k];
        }
        std::uint8_t nonce[12];
        std::memcpy(nonce, keys.iv, 12);
        for (int k = 0; k < 8; ++k) nonce[11 - k] ^= static_cast<std::uint8_t>(pn >> (8 * k));
        const std::size_t body = pn_offset + pn_len;
        std::size_t body_len = end - body;
        const std::uint8_t* tag = nullptr;
        if (complete) {
            if (body_len < 16) break;
            body_len -= 16;
            tag = h + packet_end - 16;
        }
        std::uint8_t* plain = packet + body;
        if (!crypto::aes128_gcm_open(keys.key, nonce, packet, body, h + body, body_len, tag, plain))
            break;
        read_frames(plain, body_len, &stream);
        if (!complete) break;
        at += packet_end;
    }
    if (stream.filled < 4 + 38 || stream.data[0] != 0x01) return false;
    out->name_len =
        det::parse_client_hello(stream.data, stream.filled, out->name, out->alpn, &out->alpn_len);
    return true;
}

}  // namespace nkclass
