// Helpers shared by the libFuzzer harnesses: a reader that splits one fuzz
// input into header fields and byte slices, and a check that aborts (so
// the fuzzer records the input) when a property fails.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace fuzz {

// Aborts with a message when `ok` is false: a failed property is a crash.
inline void check(bool ok, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "property failed: %s\n", what);
        std::abort();
    }
}

// Consumes a fuzz input front to back; reads past the end yield zeros and
// empty slices, so every input is a valid encoding.
class Input {
public:
    Input(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}
    std::uint8_t u8() { return pos_ < n_ ? p_[pos_++] : 0; }
    std::uint16_t u16() { return static_cast<std::uint16_t>((u8() << 8) | u8()); }
    std::size_t left() const { return n_ - pos_; }
    // The next `k` bytes (fewer if the input ends first).
    const std::uint8_t* take(std::size_t* k) {
        if (*k > left()) *k = left();
        const std::uint8_t* out = p_ + pos_;
        pos_ += *k;
        return out;
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
    std::size_t pos_ = 0;
};

// A copy of [p, p + n) in its own heap block of exactly n bytes, so that
// AddressSanitizer reports a read one past the end of a slice (in the
// fuzz input itself it would land on the next slice's bytes).
inline std::unique_ptr<std::uint8_t[]> exact_copy(const std::uint8_t* p, std::size_t n) {
    std::unique_ptr<std::uint8_t[]> out(new std::uint8_t[n == 0 ? 1 : n]);
    if (n != 0) std::memcpy(out.get(), p, n);
    return out;
}

}  // namespace fuzz
