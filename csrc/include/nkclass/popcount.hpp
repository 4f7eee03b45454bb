// Bit counting that stays inline on every target.
#pragma once

#include <cstdint>

namespace nkclass {

// Set bits in a 64-bit word. Wheels target baseline x86-64, which lacks the
// POPCNT instruction, where the builtin becomes a library call: the SWAR
// count is a dozen register operations instead.
inline unsigned popcount64(std::uint64_t x) noexcept {
#if defined(__POPCNT__) || defined(__aarch64__)
    return static_cast<unsigned>(__builtin_popcountll(x));
#else
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return static_cast<unsigned>((x * 0x0101010101010101ull) >> 56);
#endif
}

}  // namespace nkclass

// Hot loops that count bits may carry a second build for the POPCNT
// instruction, chosen at run time, where the baseline target lacks it.
#if defined(__x86_64__) && !defined(__POPCNT__) && (defined(__GNUC__) || defined(__clang__))
#define NKCLASS_POPCNT_DISPATCH 1
#else
#define NKCLASS_POPCNT_DISPATCH 0
#endif
