// A cache-line prefetch the compiler keeps.
//
// Why not __builtin_prefetch alone: GCC 12 (-O1 and above) deletes one that
// sits behind a branch it can drop, such as a null check on the column
// being fetched from; its dead-code pass counts the builtin as free of
// effects. The payload prefetch of the detector loop was missing from the
// built library for that reason. An asm statement marked volatile is never
// deleted; the operand only names the address, nothing is loaded from it.
#pragma once

namespace nkclass {

inline void prefetch_line(const void* p) noexcept {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __asm__ volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p)));
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__ volatile("prfm pldl1keep, %0" : : "Q"(*static_cast<const char*>(p)));
#else
    __builtin_prefetch(p);
#endif
}

}  // namespace nkclass
