// Real-time media and messaging (STUN/TURN, DTLS, RTP/RTCP, Telegram
// MTProto transports), GRE, and the fully-encrypted-traffic guess.
#include "crypto.hpp"
#include "detect_internal.hpp"
#include "nkclass/popcount.hpp"

namespace nkclass::det {

namespace {

constexpr std::uint32_t kStunCookie = 0x2112A442u;

// One STUN message at p (RFC 5389): top bits 00, a length that is a
// multiple of 4, the magic cookie. Returns its size, or 0.
std::size_t stun_message(const std::uint8_t* p, std::size_t n) noexcept {
    if (n < 20 || (p[0] & 0xc0) != 0 || be32(p + 4) != kStunCookie) return 0;
    const std::size_t len = be16(p + 2);
    if ((len & 3) != 0 || len > 4096) return 0;
    return 20 + len;
}

bool dtls_version(std::uint16_t v) noexcept {
    return v == 0xfeff || v == 0xfefd || v == 0xfefc || v == 0x0100;
}

// The MTProto transport tags a client announces (abridged, intermediate,
// padded intermediate), as the 4 bytes at offset 56 of the obfuscated
// header decrypt to, or as plain prefixes.
bool mtproto_tag(std::uint32_t v) noexcept {
    return v == 0xefefefefu || v == 0xeeeeeeeeu || v == 0xddddddddu;
}

// An unencrypted MTProto message (the first ones, before a key exists):
// auth_key_id 0, a message id (divisible by 4), the body length.
bool plain_mtproto(const std::uint8_t* p, std::size_t n, std::size_t len) noexcept {
    if (n < 20 || len < 20) return false;
    for (int i = 0; i < 8; ++i)
        if (p[i] != 0) return false;
    const std::uint32_t id_lo = le32(p + 8), id_hi = le32(p + 12);
    return id_hi != 0 && (id_lo & 3) == 0 && le32(p + 16) + 20 == len;
}

// Bits set per byte (the fully-encrypted test of Wu et al., USENIX
// Security 2023: random bytes average 4 set bits per byte).
std::size_t popcount_bytes(const std::uint8_t* p, std::size_t n) noexcept {
    std::size_t bits = 0, i = 0;
    for (; i + 8 <= n; i += 8) bits += popcount64(bytes::load8(p + i));
    for (; i < n; ++i) bits += popcount64(p[i]);
    return bits;
}

bool printable(std::uint8_t c) noexcept { return c >= 0x20 && c <= 0x7e; }

// True when some 21 consecutive bytes are all printable. Every such run
// covers one of the positions 20, 41, 62, ...: only those are probed, and
// the run through a printable probe is measured (on random bytes about one
// probe in three, a byte or two each way).
bool printable_run_over_20(const std::uint8_t* p, std::size_t n) noexcept {
    for (std::size_t k = 20; k < n; k += 21) {
        if (!printable(p[k])) continue;
        std::size_t lo = k, hi = k;
        while (lo > 0 && printable(p[lo - 1])) --lo;
        while (hi + 1 < n && printable(p[hi + 1])) ++hi;
        if (hi - lo >= 20) return true;
    }
    return false;
}

// True when the bytes pass none of the exemptions the GFW applies before
// treating a connection's first data as fully encrypted (Wu et al. 2023,
// section 4): popcount per byte within (3.4, 4.6); the first six bytes not
// all printable; at most half printable; no run of more than 20 printable.
bool fully_encrypted(const std::uint8_t* p, std::size_t n) noexcept {
    if (n < 48) return false;
    bool first6 = true;
    for (std::size_t i = 0; i < 6; ++i) first6 &= printable(p[i]);
    if (first6) return false;
    const std::size_t bits = popcount_bytes(p, n);
    if (bits * 10 <= n * 34 || bits * 10 >= n * 46) return false;
    std::size_t count = 0;  // no branch per byte: random bytes would mispredict
    for (std::size_t i = 0; i < n; ++i) count += printable(p[i]) ? 1 : 0;
    return count * 2 <= n && !printable_run_over_20(p, n);
}

}  // namespace

bool detect_stun(Bytes b, bool tcp, Detection* out) noexcept {
    const std::size_t first = stun_message(b.p, b.n);
    if (first == 0) return false;
    // Over TCP messages follow back to back; a second one, where present,
    // must parse too (or be TURN ChannelData, 0x40..0x7f).
    if (tcp && first + 4 <= b.n && (b[first] & 0xc0) != 0x40 &&
        stun_message(b.p + first, b.n - first) == 0 && first + 20 <= b.n)
        return false;
    hit(out, kAppStun, 0);
    return true;
}

bool detect_dtls(Bytes b, Detection* out) noexcept {
    // Record header: type 20..23 (25 = DTLS 1.3 ACK), version, epoch,
    // 48-bit sequence, length.
    if (b.n < 13 + 1) return false;
    const std::uint8_t type = b[0];
    if (!((type >= 20 && type <= 23) || type == 25)) return false;
    const std::uint16_t version = be16(b.p + 1);
    if (!dtls_version(version)) return false;
    const std::size_t len = be16(b.p + 11);
    if (len == 0 || len > 16384 + 2048) return false;
    if (type == 22 && be16(b.p + 3) == 0) {
        // An unencrypted handshake message: a known type whose fragment
        // fits the record.
        const std::uint8_t hs = b[13];
        if (!(hs == 1 || hs == 2 || hs == 3 || (hs >= 11 && hs <= 16))) return false;
        if (len < 12 || (b.n >= 25 && bytes::be24(b.p + 22) + 12 > len)) return false;
    }
    if (13 + len < b.n) {
        // Another record follows: it must be DTLS too.
        const std::size_t at = 13 + len;
        if (b.n - at >= 3 && !((b[at] >= 20 && b[at] <= 23) || b[at] == 25)) return false;
        if (b.n - at >= 3 && !dtls_version(be16(b.p + at + 1))) return false;
    }
    // Cisco AnyConnect's legacy DTLS speaks the pre-RFC version 0x0100
    // (DTLS1_BAD_VER), which OpenConnect documents for it.
    if (version == 0x0100) {
        hit(out, kAppAnyconnect, kActVpn);
    } else {
        hit(out, kAppDtls, 0);
    }
    return true;
}

bool detect_rtp(Bytes b, Detection* out) noexcept {
    if (b.n < 12 || (b[0] >> 6) != 2) return false;
    const std::uint8_t pt = b[1] & 0x7f;
    if (pt >= 72 && pt <= 76) {
        // RTCP (SR 200, RR 201, ...): walk the compound packet's lengths;
        // the first must be SR or RR (RFC 3550 6.1).
        if (b[1] != 200 && b[1] != 201) return false;
        std::size_t i = 0;
        int packets = 0;
        while (i + 4 <= b.n) {
            if ((b[i] >> 6) != 2 || b[i + 1] < 192 || b[i + 1] > 223) return false;
            i += (std::size_t(be16(b.p + i + 2)) + 1) * 4;
            ++packets;
        }
        // The walk ends at the end of the bytes or inside the last packet
        // (cut by the capture limit); a lone packet must end exactly.
        if (packets == 1 && i != b.n) return false;
        hit(out, kAppRtcp, 0);
        return true;
    }
    // RTP: confirm with a later packet of the same stream (the flow's
    // datagrams are joined): the same SSRC with the next sequence numbers.
    const std::size_t header = 12 + 4 * std::size_t(b[0] & 0x0f);
    if (b.n < header + 12) return false;
    const std::uint16_t seq = be16(b.p + 2);
    const std::uint8_t* ssrc = b.p + 8;
    const std::size_t lim = b.n < 1500 + 12 ? b.n : 1500 + 12;
    for (std::size_t j = header; j + 12 <= lim; ++j) {
        const void* at = memmem(b.p + j + 8, lim - j - 8, ssrc, 4);
        if (at == nullptr) return false;
        const std::size_t k = static_cast<std::size_t>(static_cast<const std::uint8_t*>(at) - b.p) - 8;
        const std::uint16_t step = static_cast<std::uint16_t>(be16(b.p + k + 2) - seq);
        if ((b[k] >> 6) == 2 && (b[k + 1] & 0x7f) == pt && step >= 1 && step <= 4) {
            hit(out, kAppRtp, 0);
            return true;
        }
        j = k;
    }
    return false;
}

bool detect_telegram(Bytes b, std::uint16_t dport, Detection* out) noexcept {
    if (b.n < 24) return false;
    // Abridged: 0xef, then length / 4 in one byte (or 0x7f and three).
    if (b[0] == 0xef) {
        std::size_t len = b[1], at = 2;
        if (len == 0x7f) {
            len = std::size_t(b[2]) | (std::size_t(b[3]) << 8) | (std::size_t(b[4]) << 16);
            at = 5;
        }
        if (!plain_mtproto(b.p + at, b.n - at, len * 4)) return false;
        hit(out, kAppTelegram, kActSocial);
        return true;
    }
    // Intermediate and padded intermediate: four tag bytes, LE32 length.
    if (mtproto_tag(be32(b.p)) && b[0] != 0xef) {
        if (!plain_mtproto(b.p + 8, b.n - 8, le32(b.p + 4))) return false;
        hit(out, kAppTelegram, kActSocial);
        return true;
    }
    // Obfuscated2: 64 random bytes whose own key (bytes 8..39) and IV
    // (40..55) decrypt bytes 56..59 to the transport tag under AES-256-CTR.
    // Tried only on the ports clients use (443, 80, 5222, 88).
    if (b.n < 64 || !(dport == 443 || dport == 80 || dport == 5222 || dport == 88)) return false;
    std::uint8_t plain[64];
    if (!crypto::aes256_ctr(b.p + 8, b.p + 40, b.p, 64, plain)) return false;
    if (!mtproto_tag(be32(plain + 56))) return false;
    hit(out, kAppTelegram, kActSocial);
    return true;
}

bool detect_gre(Bytes b, Detection* out) noexcept {
    // GRE header (RFC 2784/2890); version 1 is PPTP's enhanced GRE (RFC
    // 2637): key present, protocol PPP (0x880b).
    if (b.n < 4) return false;
    const unsigned version = b[1] & 7;
    if (version == 1) {
        if ((b[0] & 0x20) == 0 || be16(b.p + 2) != 0x880b || (b[0] & 0x4f) != 0) return false;
        hit(out, kAppPptp, kActVpn);
        return true;
    }
    if (version != 0 || (b[1] & 0xf8) != 0) return false;
    hit(out, kAppGre, 0);
    return true;
}

// Both sides' first data fully encrypted and no protocol recognised. One
// random-looking side alone is too common (compressed or proprietary
// binary data) to name anything; both sides still cannot tell Shadowsocks
// from other fully encrypted protocols (obfs4, BitTorrent's MSE), hence
// the weak rank.
bool detect_encrypted_guess(Bytes src, Bytes dst, Detection* out) noexcept {
    if (dst.n < 48 || !fully_encrypted(src.p, src.n) || !fully_encrypted(dst.p, dst.n))
        return false;
    out->app = kAppShadowsocks;
    out->activity = kActProxy;
    out->rank = kRankWeak;
    out->activity_rank = kRankWeak;
    out->evidence = kEvPayload;
    return true;
}

}  // namespace nkclass::det
