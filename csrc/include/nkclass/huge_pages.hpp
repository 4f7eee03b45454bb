// Memory for large tables read at random (flow tables, group tables),
// backed by 2 MiB pages where the kernel allows.
//
// Why: at a hundred thousand flows such a table spans tens of MiB, and
// with 4 KiB pages the lookups missed the TLB as well as the cache, and
// every 4 KiB of a growing buffer took a page fault of its own (reading a
// 2M-packet capture of 100k flows took about a tenth less time with the
// meter's tables, payload slots and emitted rows on huge pages). Linux
// backs only regions that ask (transparent huge pages in "madvise" mode,
// the usual default), so allocations of at least one huge page are aligned
// to it and marked; smaller ones are plain.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace nkclass {

inline constexpr std::size_t kHugePage = std::size_t{2} << 20;

// `bytes` rounded up to whole huge pages.
inline constexpr std::size_t huge_page_bytes(std::size_t bytes) noexcept {
    return (bytes + kHugePage - 1) / kHugePage * kHugePage;
}

// `bytes` (rounded up to whole huge pages when at least one), freed with
// std::free. Throws std::bad_alloc.
inline void* allocate_huge(std::size_t bytes) {
    if (bytes < kHugePage) {
        void* p = std::malloc(bytes == 0 ? 1 : bytes);
        if (p == nullptr) throw std::bad_alloc();
        return p;
    }
    const std::size_t rounded = huge_page_bytes(bytes);
    void* p = std::aligned_alloc(kHugePage, rounded);
    if (p == nullptr) throw std::bad_alloc();
#if defined(MADV_HUGEPAGE)
    madvise(p, rounded, MADV_HUGEPAGE);  // advice only: refused, the pages stay small
#endif
    return p;
}

// An allocator for std::vector of such tables.
template <typename T>
struct HugePageAllocator {
    using value_type = T;

    HugePageAllocator() noexcept = default;
    template <typename U>
    HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT: rebinding converts

    T* allocate(std::size_t n) {
        if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_alloc();
        return static_cast<T*>(allocate_huge(n * sizeof(T)));
    }
    void deallocate(T* p, std::size_t) noexcept { std::free(p); }

    template <typename U>
    bool operator==(const HugePageAllocator<U>&) const noexcept {
        return true;
    }
    template <typename U>
    bool operator!=(const HugePageAllocator<U>&) const noexcept {
        return false;
    }
};

// A growing byte buffer on huge pages: a std::vector<std::uint8_t> that
// appends in one memcpy (a vector with an allocator of its own copies byte
// by byte, which cost more than the page faults it saved).
class HugeByteBuffer {
public:
    HugeByteBuffer() = default;
    ~HugeByteBuffer() { std::free(data_); }
    HugeByteBuffer(const HugeByteBuffer&) = delete;
    HugeByteBuffer& operator=(const HugeByteBuffer&) = delete;

    const std::uint8_t* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    void clear() noexcept { size_ = 0; }

    void reserve(std::size_t n) {
        if (n <= capacity_) return;
        auto* fresh = static_cast<std::uint8_t*>(allocate_huge(n));
        if (size_ != 0) std::memcpy(fresh, data_, size_);
        std::free(data_);
        data_ = fresh;
        capacity_ = n;
    }
    void append(const std::uint8_t* p, std::size_t n) {
        if (n > capacity_ - size_) reserve(std::max(size_ + n, 2 * capacity_));
        if (n != 0) std::memcpy(data_ + size_, p, n);
        size_ += n;
    }

private:
    std::uint8_t* data_ = nullptr;
    std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace nkclass
