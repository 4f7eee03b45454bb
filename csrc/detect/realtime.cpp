// Real-time media and messaging (STUN/TURN, DTLS, RTP/RTCP, Telegram
// MTProto transports), GRE, and the fully-encrypted-traffic guess.
#include "crypto.hpp"
#include "detect_internal.hpp"
#include "nkclass/popcount.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

// A second build of the byte statistics for AVX2, chosen at run time, where
// the baseline target lacks it (x86-64 wheels are built for SSE2).
#if defined(__x86_64__) && !defined(__AVX2__) && (defined(__GNUC__) || defined(__clang__))
#define NKCLASS_AVX2_DISPATCH 1
#include <immintrin.h>
#else
#define NKCLASS_AVX2_DISPATCH 0
#endif

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

bool printable(std::uint8_t c) noexcept { return c >= 0x20 && c <= 0x7e; }

// What the fully-encrypted test (Wu et al., USENIX Security 2023) sums
// over a first payload: set bits (random bytes average 4 per byte),
// printable bytes (0x20..0x7e), and whether some run of them is longer
// than 20.
struct ByteStats {
    std::size_t bits = 0, printable = 0;
    bool long_run = false;
};

constexpr unsigned kLongRun = 21;

#if NKCLASS_AVX2_DISPATCH
#define NKCLASS_AVX2 __attribute__((target("avx2,popcnt")))

struct Avx2Stats {
    __m256i bits;  // four 64-bit lane sums
    std::size_t printable = 0;
    unsigned run = 0;  // printable bytes ending just before the next step
    bool long_run = false;
};

// One step of 32 bytes over the bytes of `v` that `keep` selects, the last
// `fresh`. A run of 21 may lie inside one step, so the step also tests its
// mask for 21 ones in a row; runs that reach a step's edge are carried as
// in the SSE2 build.
NKCLASS_AVX2 inline void avx2_step(Avx2Stats& st, const __m256i v, const __m256i keep,
                                   unsigned fresh) noexcept {
    const __m256i nibble_bits = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                                 0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_set1_epi8(0x20), hi = _mm256_set1_epi8(0x7e);
    const __m256i kept = _mm256_and_si256(v, keep);
    const __m256i count = _mm256_add_epi8(
        _mm256_shuffle_epi8(nibble_bits, _mm256_and_si256(kept, m4)),
        _mm256_shuffle_epi8(nibble_bits, _mm256_and_si256(_mm256_srli_epi16(kept, 4), m4)));
    st.bits = _mm256_add_epi64(st.bits, _mm256_sad_epu8(count, _mm256_setzero_si256()));
    const __m256i in = _mm256_and_si256(
        keep, _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_max_epu8(v, lo), v),
                               _mm256_cmpeq_epi8(_mm256_min_epu8(v, hi), v)));
    // Bit k: the k-th new byte printable.
    const std::uint64_t mask = static_cast<std::uint32_t>(_mm256_movemask_epi8(in)) >> (32 - fresh);
    const std::uint64_t all = (std::uint64_t{1} << fresh) - 1;
    st.printable += static_cast<std::size_t>(__builtin_popcountll(mask));
    // Bit i of rN: bits i .. i + N - 1 of the mask are all set.
    const std::uint64_t r2 = mask & (mask >> 1), r4 = r2 & (r2 >> 2), r8 = r4 & (r4 >> 4);
    const std::uint64_t r20 = (r8 & (r8 >> 8)) & (r4 >> 16);
    st.long_run |= (r20 & (mask >> 20)) != 0;
    // The run carried in, continued by this step's first bytes.
    const unsigned first = static_cast<unsigned>(__builtin_ctzll(~mask | (all + 1)));
    st.long_run |= st.run + first >= kLongRun;
    if (mask == all) {
        st.run += fresh;
    } else {
        const unsigned last_zero = 63u - static_cast<unsigned>(__builtin_clzll(~mask & all));
        st.run = fresh - 1 - last_zero;
    }
}

// Thirty-two bytes a step (n >= 32): set bits counted from a nibble table,
// printable bytes from their mask.
NKCLASS_AVX2 ByteStats byte_stats_avx2(const std::uint8_t* p, std::size_t n) noexcept {
    Avx2Stats st;
    st.bits = _mm256_setzero_si256();
    const __m256i every = _mm256_set1_epi8(-1);
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32)
        avx2_step(st, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + i)), every, 32);
    if (i < n) {
        // The final thirty-two bytes, keeping those not yet counted.
        alignas(32) static constexpr std::uint8_t kKeepLast[64] = {
            0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
            0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
            0,    0,    0,    0,    0,    0,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        const unsigned fresh = static_cast<unsigned>(n - i);
        avx2_step(st, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + n - 32)),
                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kKeepLast + fresh)), fresh);
    }
    alignas(32) std::uint64_t lanes[4];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), st.bits);
    ByteStats out;
    out.bits = static_cast<std::size_t>(lanes[0] + lanes[1] + lanes[2] + lanes[3]);
    out.printable = st.printable;
    out.long_run = st.long_run;
    return out;
}
#endif

// One pass, sixteen bytes a step on SSE2 (every x86-64 has it): a per-byte
// popcount and a printable mask per step, the run carried across steps; a
// byte a step elsewhere and under sixteen bytes. AVX2 takes 32 bytes or more.
ByteStats byte_stats(const std::uint8_t* p, std::size_t n) noexcept {
#if NKCLASS_AVX2_DISPATCH
    static const bool has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
    if (has_avx2 && n >= 32) return byte_stats_avx2(p, n);
#endif
    ByteStats out;
    std::size_t i = 0;
    unsigned run = 0;  // printable bytes ending at p[i - 1]
#if defined(__SSE2__)
    const __m128i m1 = _mm_set1_epi8(0x55), m2 = _mm_set1_epi8(0x33), m4 = _mm_set1_epi8(0x0f);
    const __m128i lo = _mm_set1_epi8(0x20), hi = _mm_set1_epi8(0x7e);
    const __m128i zero = _mm_setzero_si128(), every = _mm_set1_epi8(-1);
    __m128i bits = zero, print = zero;    // two 64-bit lane sums each
    __m128i bits8 = zero, print8 = zero;  // per-byte sums, added in before they can wrap
    unsigned pending = 0;
    bool long_run = false;
    const auto flush = [&] {
        bits = _mm_add_epi64(bits, _mm_sad_epu8(bits8, zero));
        print = _mm_add_epi64(print, _mm_sad_epu8(print8, zero));
        bits8 = print8 = zero;
        pending = 0;
    };
    // One step over the bytes of `v` that `keep` selects, the last `fresh`.
    const auto step = [&](const __m128i v, const __m128i keep, unsigned fresh) {
        // Per-byte popcount, SWAR within each byte (the 16-bit shifts carry
        // bits across bytes only where the masks then clear them).
        const __m128i kept = _mm_and_si128(v, keep);
        __m128i x = _mm_sub_epi8(kept, _mm_and_si128(_mm_srli_epi16(kept, 1), m1));
        x = _mm_add_epi8(_mm_and_si128(x, m2), _mm_and_si128(_mm_srli_epi16(x, 2), m2));
        bits8 = _mm_add_epi8(bits8, _mm_and_si128(_mm_add_epi8(x, _mm_srli_epi16(x, 4)), m4));
        // Printable: unsigned lo <= v <= hi, as v == max(v, lo) == min(v, hi);
        // a printable byte is -1 here.
        const __m128i in = _mm_and_si128(
            keep, _mm_and_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, lo), v),
                                _mm_cmpeq_epi8(_mm_min_epu8(v, hi), v)));
        print8 = _mm_sub_epi8(print8, in);
        if (++pending == 31) flush();  // 31 x 8 bits < 256
        // Bit k: the k-th new byte printable.
        const unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(in)) >> (16 - fresh);
        const unsigned all = (1u << fresh) - 1;
        // A run of 16 bytes or fewer fits in one step; a longer one ends in
        // some step's first bytes, continuing the run carried in. The bit
        // past `fresh` and bit 15 stop the counts at a full step.
        const unsigned first = static_cast<unsigned>(__builtin_ctz(~mask | (all + 1)));
        const unsigned last =
            static_cast<unsigned>(__builtin_clz(((~mask & 0xffffu) << 16) | 0x8000u));
        long_run |= run + first >= kLongRun;
        run = mask == all ? run + fresh : last;
    };
    for (; i + 16 <= n; i += 16)
        step(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)), every, 16);
    if (n >= 16 && i < n) {
        // The final sixteen bytes, keeping those not yet counted: no byte
        // is left for the scalar tail.
        alignas(16) static constexpr std::uint8_t kKeepLast[32] = {
            0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,    0,
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
        const unsigned fresh = static_cast<unsigned>(n - i);
        step(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + n - 16)),
             _mm_loadu_si128(reinterpret_cast<const __m128i*>(kKeepLast + fresh)), fresh);
        i = n;
    }
    flush();
    out.bits = static_cast<std::size_t>(_mm_cvtsi128_si64(bits)) +
               static_cast<std::size_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(bits, bits)));
    out.printable = static_cast<std::size_t>(_mm_cvtsi128_si64(print)) +
                    static_cast<std::size_t>(_mm_cvtsi128_si64(_mm_unpackhi_epi64(print, print)));
    out.long_run = long_run;
#endif
    for (; i < n; ++i) {
        const bool in = printable(p[i]);
        out.bits += popcount64(p[i]);
        out.printable += in ? 1 : 0;
        run = in ? run + 1 : 0;
        out.long_run |= run >= kLongRun;
    }
    return out;
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
    const ByteStats stats = byte_stats(p, n);
    return stats.bits * 10 > n * 34 && stats.bits * 10 < n * 46 && stats.printable * 2 <= n &&
           !stats.long_run;
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
        const std::size_t at = bytes::find_bytes(b.p, j + 8, lim, ssrc, 4);
        if (at == lim) return false;
        const std::size_t k = at - 8;
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
