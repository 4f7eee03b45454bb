// Byte-level helpers shared by the parsers: big- and little-endian field
// reads and
// eight-bytes-at-a-time (SWAR) ASCII tests for names.
//
// Every read takes a pointer the caller has bounds-checked: `be16(p)`
// reads p[0..1], `load8(p)` reads p[0..7]. Nothing here allocates or fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace nkclass::bytes {

inline std::uint16_t be16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}
inline std::uint32_t be24(const std::uint8_t* p) noexcept {
    return (std::uint32_t(p[0]) << 16) | (std::uint32_t(p[1]) << 8) | std::uint32_t(p[2]);
}
inline std::uint32_t be32(const std::uint8_t* p) noexcept {
    return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) |
           (std::uint32_t(p[2]) << 8) | std::uint32_t(p[3]);
}

// Little-endian field reads (pcap headers of either byte order, the
// compiled-ruleset format, little-endian protocol fields).
inline std::uint16_t le16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
inline std::uint32_t le32(const std::uint8_t* p) noexcept {
    return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) |
           (std::uint32_t(p[3]) << 24);
}
inline std::uint64_t le64(const std::uint8_t* p) noexcept {
    return std::uint64_t(le32(p)) | (std::uint64_t(le32(p + 4)) << 32);
}

// Eight bytes in memory order as one word (native byte order).
inline std::uint64_t load8(const void* p) noexcept {
    std::uint64_t w;
    std::memcpy(&w, p, 8);
    return w;
}

// The first k (at most 8) bytes of `s` as load8 reads them from memory, the
// others zero. Shifts rather than a memcpy into a word: GCC built such a
// word from a literal with narrow stores to the stack and read it back
// whole, a load that waits for the stores to retire.
constexpr std::uint64_t word_of(const char* s, std::size_t k) noexcept {
    std::uint64_t w = 0;
    for (std::size_t i = 0; i < k; ++i) {
        const auto c = std::uint64_t(static_cast<unsigned char>(s[i]));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w |= c << (56 - 8 * i);
#else
        w |= c << (8 * i);
#endif
    }
    return w;
}

// A word whose first k (at most 8) bytes in memory order are 0xff.
constexpr std::uint64_t first_bytes_mask(std::size_t k) noexcept {
    return word_of("\xff\xff\xff\xff\xff\xff\xff\xff", k);
}

inline constexpr std::uint64_t kOnes = 0x0101010101010101ull;
inline constexpr std::uint64_t kHighs = 0x8080808080808080ull;

// ASCII lowercase of eight bytes at once; bytes >= 0x80 are left alone.
inline std::uint64_t lower8(std::uint64_t x) noexcept {
    const std::uint64_t low7 = x & ~kHighs;
    const std::uint64_t ge_a = low7 + kOnes * (0x80 - 'A');      // bit 7: byte >= 'A'
    const std::uint64_t gt_z = low7 + kOnes * (0x80 - 'Z' - 1);  // bit 7: byte > 'Z'
    return x | ((ge_a & ~gt_z & ~x & kHighs) >> 2);
}

// 0x80 in each byte of `x` that equals `c`, 0 in the others (exact: no
// borrow reaches a neighbouring byte).
inline std::uint64_t eq_bytes8(std::uint64_t x, std::uint8_t c) noexcept {
    const std::uint64_t y = x ^ (kOnes * c);
    return ~(((y & ~kHighs) + ~kHighs) | y) & kHighs;
}

// The memory index (0..7) of the byte that the lowest set bit of `mask`
// (nonzero) flags; clearing that bit (mask &= mask - 1) moves to the next.
inline unsigned lowest_flagged_byte(std::uint64_t mask) noexcept {
    const unsigned k = static_cast<unsigned>(__builtin_ctzll(mask)) / 8;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return 7 - k;
#else
    return k;
#endif
}

// The memory index (0..7) of the last byte flagged (0x80) in `mask`
// (nonzero).
inline unsigned last_flagged_byte(std::uint64_t mask) noexcept {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return 7 - static_cast<unsigned>(__builtin_ctzll(mask)) / 8;
#else
    return static_cast<unsigned>(63 - __builtin_clzll(mask)) / 8;
#endif
}

// True when some byte of `x` equals `c`.
inline bool has_byte8(std::uint64_t x, std::uint8_t c) noexcept {
    const std::uint64_t y = x ^ (kOnes * c);
    return ((y - kOnes) & ~y & kHighs) != 0;
}

// True when some byte of `x` is outside [0x21, 0x7e] (space, controls,
// DEL, non-ASCII): the bytes a host name may not hold.
inline bool any_unprintable8(std::uint64_t x) noexcept {
    const std::uint64_t below = (x - kOnes * 0x21) & ~x & kHighs;  // some byte < 0x21
    const std::uint64_t above = ((x + kOnes * 0x01) | x) & kHighs;  // some byte >= 0x7f
    return (below | above) != 0;
}

// 0x80 in each byte of `x` outside [0x21, 0x7e], 0 in the others (exact:
// the sums stay within each byte's low seven bits).
inline std::uint64_t unprintable8(std::uint64_t x) noexcept {
    const std::uint64_t low7 = x & ~kHighs;
    const std::uint64_t below = ~(low7 + kOnes * (0x80 - 0x21)) & ~x & kHighs;
    const std::uint64_t above = (low7 + kOnes) | x;
    return (below | above) & kHighs;
}

inline char lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? char(c + 32) : c; }

// The index of the first `c` in p[from, n), or n. Sixteen bytes a step on
// SSE2, the last step overlapping the one before (so no byte loop): a
// line of a text protocol costs a step or two, without the call and the
// length dispatch of memchr, which these short searches are dominated by.
inline std::size_t find(const std::uint8_t* p, std::size_t from, std::size_t n,
                        std::uint8_t c) noexcept {
    if (from >= n) return n;
#if defined(__SSE2__)
    if (n >= 16) {
        const __m128i needle = _mm_set1_epi8(static_cast<char>(c));
        const auto at = [&](std::size_t i) {
            return static_cast<unsigned>(_mm_movemask_epi8(
                _mm_cmpeq_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i)), needle)));
        };
        std::size_t i = from;
        // Thirty-two bytes a branch: most text lines end within the first
        // step, so the loop's exit is predictable.
        for (; i + 32 <= n; i += 32)
            if (const std::uint64_t m = at(i) | (std::uint64_t{at(i + 16)} << 16))
                return i + static_cast<unsigned>(__builtin_ctzll(m));
        for (; i + 16 <= n; i += 16)
            if (const unsigned m = at(i)) return i + static_cast<unsigned>(__builtin_ctz(m));
        if (i < n) {
            // The last sixteen bytes, shifted so that bit 0 is p[i].
            if (const unsigned m = at(n - 16) >> (16 - (n - i)))
                return i + static_cast<unsigned>(__builtin_ctz(m));
        }
        return n;
    }
#endif
    const void* hit = std::memchr(p + from, c, n - from);
    return hit ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(hit) - p) : n;
}

// The index of the first byte of p[from, n) outside [0x21, 0x7e], or n:
// a word a step, the last one overlapping the one before.
inline std::size_t printable_end(const std::uint8_t* p, std::size_t from, std::size_t n) noexcept {
    if (from >= n) return n;
    if (n - from >= 8) {
        std::size_t i = from;
        for (; i + 8 <= n; i += 8)
            if (const std::uint64_t m = unprintable8(load8(p + i))) return i + lowest_flagged_byte(m);
        if (i == n) return n;
        const std::uint64_t m = unprintable8(load8(p + n - 8));
        // Flags of bytes already passed (before i) are set in no byte: the
        // first flag is at or after i.
        return m ? n - 8 + lowest_flagged_byte(m) : n;
    }
    while (from < n && p[from] > 0x20 && p[from] < 0x7f) ++from;
    return from;
}

// The index of the first occurrence of needle[0, k) (k >= 1) in p[from, n),
// or n: candidates by their first byte (find), then a compare. For short
// needles in short buffers, where memmem's setup outweighs its search.
inline std::size_t find_bytes(const std::uint8_t* p, std::size_t from, std::size_t n,
                              const std::uint8_t* needle, std::size_t k) noexcept {
    if (k > n) return n;
    const std::size_t last = n - k + 1;  // candidates start before this
    for (std::size_t at = find(p, from, last, needle[0]); at < last;
         at = find(p, at + 1, last, needle[0]))
        if (std::memcmp(p + at + 1, needle + 1, k - 1) == 0) return at;
    return n;
}

// Copies n bytes of a host name to `dst` lowercased, or returns false when
// a byte is outside [0x21, 0x7e], or is a dot where `no_dot` (one DNS
// label, whose dots would change the name's labels once dotted). Then
// `dst` holds an unspecified prefix. Writes exactly n bytes; reads exactly n.
inline bool copy_name_lower(char* dst, const std::uint8_t* src, std::size_t n,
                            bool no_dot = false) noexcept {
    const auto refused = [no_dot](std::uint64_t w) {
        return any_unprintable8(w) || (no_dot && has_byte8(w, '.'));
    };
    const auto copy_word = [&](std::uint64_t w, char* to) {
        if (refused(w)) return false;
        const std::uint64_t l = lower8(w);
        std::memcpy(to, &l, 8);
        return true;
    };
    if (n >= 8) {
        // Whole words, the last one overlapping the one before: no byte
        // loop, whose exit a name's random length mispredicts.
        std::size_t i = 0;
        for (; i + 8 < n; i += 8)
            if (!copy_word(load8(src + i), dst + i)) return false;
        return copy_word(load8(src + n - 8), dst + n - 8);
    }
    if (n >= 4) {
        // Two four-byte halves, overlapping when n < 8, tested as one word.
        std::uint32_t head, tail;
        std::memcpy(&head, src, 4);
        std::memcpy(&tail, src + n - 4, 4);
        const std::uint64_t w = (std::uint64_t(tail) << 32) | head;
        if (refused(w)) return false;
        const std::uint64_t l = lower8(w);
        head = static_cast<std::uint32_t>(l);
        tail = static_cast<std::uint32_t>(l >> 32);
        std::memcpy(dst + n - 4, &tail, 4);
        std::memcpy(dst, &head, 4);
        return true;
    }
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t c = src[i];
        if (c < 0x21 || c > 0x7e || (no_dot && c == '.')) return false;
        dst[i] = lower(static_cast<char>(c));
    }
    return true;
}

// One DNS label: copy_name_lower refusing dots as well.
inline bool copy_label_lower(char* dst, const std::uint8_t* src, std::size_t n) noexcept {
    return copy_name_lower(dst, src, n, true);
}

}  // namespace nkclass::bytes
