// Longest-prefix-match tables for IPv4 and IPv6.
//
// Two phases, as in DPDK's rte_lpm: a fallible build from (prefix, label)
// rows, then an immutable table whose bulk lookups cannot fail. A lookup
// returns the label of the longest prefix containing the address, or
// kNoLabel (0) when none does. Built tables are never modified, so any
// number of threads may look up concurrently without locking.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "nkclass/popcount.hpp"
#include "nkclass/types.hpp"

namespace nkclass {

// A fixed-size array in its own allocation, aligned to 2 MiB and advised to
// use transparent huge pages when it is large: a table read at random
// addresses otherwise spends each lookup on a TLB miss and a page walk.
void* huge_page_alloc(std::size_t bytes) noexcept;  // zero-filled, or nullptr
void huge_page_free(void* p) noexcept;

template <typename T>
class HugePageArray {
public:
    HugePageArray() = default;
    HugePageArray(const HugePageArray&) = delete;
    HugePageArray& operator=(const HugePageArray&) = delete;
    ~HugePageArray() { reset(); }

    bool allocate(std::size_t n) noexcept {  // zero-filled; false when out of memory
        reset();
        void* p = n ? huge_page_alloc(n * sizeof(T)) : nullptr;
        if (!p && n) return false;
        data_ = static_cast<T*>(p);
        size_ = n;
        return true;
    }
    void reset() noexcept {
        huge_page_free(data_);
        data_ = nullptr;
        size_ = 0;
    }
    T* data() noexcept { return data_; }
    const T* data() const noexcept { return data_; }
    T& operator[](std::size_t i) noexcept { return data_[i]; }
    const T& operator[](std::size_t i) const noexcept { return data_[i]; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

private:
    T* data_ = nullptr;
    std::size_t size_ = 0;
};

// How the builders treat two rows with the same network and length.
enum class Duplicates : std::uint8_t {
    kError = 0,     // the build fails and names the second row
    kLastWins = 1,  // the row that comes later in the input wins
};

// One IPv4 prefix row: network in host order, length 0..32, label 1..kMaxLabel.
struct Ipv4Prefix {
    ipv4_host_t network;
    std::uint8_t length;
    label_t label;
};

// One IPv6 prefix row: network in network byte order, length 0..128.
struct Ipv6Prefix {
    ipv6_net_t network;
    std::uint8_t length;
    label_t label;
};

// Where an IPv4 table's answer changes: from `first` on (up to the next
// step's first) every address gets `label`.
struct Ipv4Step {
    ipv4_host_t first;
    label_t label;
};

// IPv4 multibit trie. Small tables: a first level of 2^16 entries (256 KiB,
// cache-resident), then 8-bit chunks; at most 3 reads per lookup. Large
// tables: DIR-24-8 with the 2^24-entry first level compressed as in Poptrie
// (Asai and Ohara, SIGCOMM 2015): each run of 64 /24 entries keeps a bitmap
// of where the value changes and an offset into a dense array of the run
// values, so a lookup is one 16-byte block read, a popcount and one value
// read, then a /25-/32 chunk when one exists. A 1M-prefix table shrinks
// from 64 MiB to about 4 MiB of blocks plus 4 bytes per run, small enough
// to stay in the last-level cache instead of missing to memory on every
// lookup.
class Ipv4Table {
public:
    Ipv4Table();
    ~Ipv4Table();
    Ipv4Table(const Ipv4Table&) = delete;
    Ipv4Table& operator=(const Ipv4Table&) = delete;

    // Builds from `rows`. Fails (and leaves the table empty) when a length
    // exceeds 32, host bits below the length are set, a label is 0 or above
    // kMaxLabel, or (with Duplicates::kError) a network/length repeats.
    // `first_stride` 0 chooses 16 or 24 from the table's size.
    BuildStatus build(const Ipv4Prefix* rows, std::size_t n, Duplicates dup,
                      unsigned first_stride = 0);

    // Bulk lookup: out[i] = label for addrs[i]. O(1) per address, no
    // allocation, thread-safe. `addrs` and `out` may not overlap.
    void lookup(const ipv4_host_t* addrs, std::size_t n, label_t* out) const noexcept;

    label_t lookup_one(ipv4_host_t a) const noexcept {
        std::uint32_t e;
        if (!blocks_.empty()) {
            const RunBlock& b = blocks_[a >> 14];
            // Bits 0..j of the change bitmap, j the /24 inside the block:
            // their count is the run holding that /24 (bit 0 is always set).
            const std::uint64_t upto = b.changes << (63 - ((a >> 8) & 63u));
            e = runs_[b.first_run + popcount64(upto) - 1];
            if (!(e & kChunkFlag)) return e;
            return chunks_[(std::size_t(e & ~kChunkFlag) << 8) | (a & 0xffu)];
        }
        return descend(level0_[a >> shift0_], chunks_.data(), a, static_cast<int>(shift0_) - 8);
    }

    // The table as a step function over the address space, in address
    // order, starting at 0.0.0.0, no two neighbours with the same label.
    std::vector<Ipv4Step> steps() const;

    unsigned first_stride() const noexcept { return 32 - shift0_; }
    std::size_t memory_bytes() const noexcept;

private:
    static constexpr std::uint32_t kChunkFlag = 0x80000000u;
    // From first-level entry `e` of `a` down the chunks below it, the next
    // one indexed by the byte of `a` at bit `shift`.
    static label_t descend(std::uint32_t e, const std::uint32_t* chunks, ipv4_host_t a,
                           int shift) noexcept {
        while (e & kChunkFlag) {
            e = chunks[(std::size_t(e & ~kChunkFlag) << 8) | ((a >> shift) & 0xffu)];
            shift -= 8;
        }
        return e;
    }
    void paint(const Ipv4Prefix& p);
    template <typename Popcount>
    void lookup_runs(const ipv4_host_t* addrs, std::size_t n, label_t* out,
                     Popcount popcount) const noexcept;
#if NKCLASS_POPCNT_DISPATCH
    void lookup_runs_popcnt(const ipv4_host_t* addrs, std::size_t n, label_t* out) const noexcept;
#endif
    std::uint32_t new_chunk(std::uint32_t fill);
    void release() noexcept;

    // 64 consecutive /24 entries of a compressed DIR-24 first level.
    struct alignas(16) RunBlock {
        std::uint64_t changes;   // bit j set: entry j starts a run (bit 0 always)
        std::uint32_t first_run;  // index in runs_ of the run holding entry 0
        std::uint32_t unused;
    };
    bool compress_level0();  // false when out of memory

    HugePageArray<std::uint32_t> level0_;  // 2^S entries while building; kept for S = 16
    HugePageArray<RunBlock> blocks_;       // 2^18 blocks when DIR-24 is compressed
    HugePageArray<std::uint32_t> runs_;    // the value of each run, in address order
    std::vector<std::uint32_t> chunks_;
    unsigned shift0_ = 16;
};

// Two IPv4 tables answered by one lookup: the address space is cut where
// either table's answer changes, each distinct pair of answers gets an id,
// and one table of ids answers both. The classifier asks its path and
// service tables about both ends of every flow: one lookup per end instead
// of two.
class Ipv4JointTable {
public:
    // Fails (leaving no table to use) when out of memory.
    BuildStatus build(const Ipv4Table& first, const Ipv4Table& second);

    // first_out[i], second_out[i] = the two tables' labels for addrs[i].
    void lookup(const ipv4_host_t* addrs, std::size_t n, label_t* first_out,
                label_t* second_out) const noexcept;

private:
    Ipv4Table ids_;                // label = pair id (0: neither table has one)
    std::vector<label_t> first_;   // by pair id
    std::vector<label_t> second_;  // by pair id
};

// IPv6 table: the prefixes are flattened into disjoint address intervals
// (each labelled with its longest covering prefix), sorted by start. A
// direct index on the top bits of the address narrows each lookup to a
// handful of intervals, searched by binary search.
class Ipv6Table {
public:
    BuildStatus build(const Ipv6Prefix* rows, std::size_t n, Duplicates dup);
    void lookup(const ipv6_net_t* addrs, std::size_t n, label_t* out) const noexcept;
    label_t lookup_one(const ipv6_net_t& a) const noexcept { return lookup_u128(to_u128(a)); }
    label_t lookup_u128(u128 key) const noexcept;
    std::size_t interval_count() const noexcept { return starts_.size(); }
    std::size_t memory_bytes() const noexcept;

private:
    std::vector<u128> starts_;       // starts_[0] == 0; interval i is [starts_[i], starts_[i+1])
    std::vector<label_t> labels_;    // label of interval i
    std::vector<std::uint32_t> index_;  // 2^index_bits_ + 1 entries
    unsigned index_bits_ = 0;
};

// A table over both families, the structure behind nkclass.PrefixTable.
// IPv6 rows inside ::ffff:0:0/96 with length >= 96 are stored as IPv4
// prefixes, and an IPv4-mapped address (::ffff:a.b.c.d) is looked up in the
// IPv4 table only: it matches IPv4 prefixes and never a shorter IPv6 prefix
// such as ::/0.
class PrefixTable {
public:
    BuildStatus build(const Ipv4Prefix* v4, std::size_t n4, const Ipv6Prefix* v6,
                      std::size_t n6, Duplicates dup, unsigned first_stride = 0);

    void lookup_v4(const ipv4_host_t* addrs, std::size_t n, label_t* out) const noexcept {
        v4_.lookup(addrs, n, out);
    }
    void lookup_v6(const ipv6_net_t* addrs, std::size_t n, label_t* out) const noexcept;

    label_t lookup_one_v4(ipv4_host_t a) const noexcept { return v4_.lookup_one(a); }
    label_t lookup_one_v6(const ipv6_net_t& a) const noexcept {
        ipv4_host_t v4;
        if (ipv4_mapped(a, &v4)) return v4_.lookup_one(v4);
        return v6_.lookup_one(a);
    }

    const Ipv4Table& ipv4() const noexcept { return v4_; }
    const Ipv6Table& ipv6() const noexcept { return v6_; }

private:
    Ipv4Table v4_;
    Ipv6Table v6_;
};

}  // namespace nkclass
