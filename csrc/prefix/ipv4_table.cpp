// IPv4 multibit trie (see prefix_table.hpp for the contract).
//
// Build: rows are validated, stably sorted by (length, network) and then
// "painted" shortest first. Because every row painted earlier is no longer
// than the current one, painting may simply overwrite: a longer prefix
// always lands after the shorter ones it nests in, and a chunk is only ever
// created below an entry by a prefix longer than that level.
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "nkclass/prefix_table.hpp"

namespace nkclass {

namespace {

constexpr std::size_t kHugePage = 2u << 20;
// A first stride of 16 keeps level 0 at 256 KiB, inside L2. Above this many
// chunks the table is large anyway and DIR-24-8 saves a level per lookup.
constexpr std::size_t kMaxChunksForStride16 = 16384;

std::uint32_t host_mask(unsigned length) {
    return length == 0 ? 0u : (0xffffffffu << (32 - length));
}

}  // namespace

void* huge_page_alloc(std::size_t bytes) noexcept {
    const std::size_t align = bytes >= kHugePage ? kHugePage : 64;
    bytes = (bytes + align - 1) / align * align;  // aligned_alloc wants a multiple
    void* p = std::aligned_alloc(align, bytes);
    if (!p) return nullptr;
#ifdef MADV_HUGEPAGE
    if (align == kHugePage) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    std::memset(p, 0, bytes);
    return p;
}

void huge_page_free(void* p) noexcept { std::free(p); }

Ipv4Table::Ipv4Table() {
    // An empty table answers kNoLabel for everything.
    Ipv4Prefix none{};
    build(&none, 0, Duplicates::kError, 16);
}

Ipv4Table::~Ipv4Table() { release(); }

void Ipv4Table::release() noexcept {
    level0_.reset();
    blocks_.reset();
    runs_.reset();
    chunks_.clear();
    chunks_.shrink_to_fit();
}

std::size_t Ipv4Table::memory_bytes() const noexcept {
    return level0_.size() * sizeof(std::uint32_t) + blocks_.size() * sizeof(RunBlock) +
           (runs_.size() + chunks_.size()) * sizeof(std::uint32_t);
}

std::uint32_t Ipv4Table::new_chunk(std::uint32_t fill) {
    const std::size_t id = chunks_.size() >> 8;
    chunks_.resize(chunks_.size() + 256, fill);
    return static_cast<std::uint32_t>(id) | kChunkFlag;
}

void Ipv4Table::paint(const Ipv4Prefix& p) {
    const unsigned stride0 = 32 - shift0_;
    if (p.length <= stride0) {
        const std::size_t first = std::size_t(p.network) >> shift0_;
        const std::size_t count = std::size_t(1) << (stride0 - p.length);
        std::fill(level0_.data() + first, level0_.data() + first + count, p.label);
        return;
    }
    // Walk down 8 bits at a time, creating chunks that inherit the label of
    // the entry they replace. Chunk slots are addressed by index because
    // new_chunk() may reallocate chunks_.
    std::uint32_t* level0_slot = &level0_[p.network >> shift0_];
    std::size_t chunk_slot = 0;
    unsigned consumed = stride0;
    for (;;) {
        std::uint32_t entry = level0_slot ? *level0_slot : chunks_[chunk_slot];
        if (!(entry & kChunkFlag)) {
            entry = new_chunk(entry);
            (level0_slot ? *level0_slot : chunks_[chunk_slot]) = entry;
        }
        const std::size_t base = std::size_t(entry & ~kChunkFlag) << 8;
        const std::size_t idx = (p.network >> (32 - consumed - 8)) & 0xffu;
        if (p.length <= consumed + 8) {
            const std::size_t count = std::size_t(1) << (consumed + 8 - p.length);
            std::fill(chunks_.begin() + base + idx, chunks_.begin() + base + idx + count,
                      p.label);
            return;
        }
        level0_slot = nullptr;
        chunk_slot = base + idx;
        consumed += 8;
    }
}

BuildStatus Ipv4Table::build(const Ipv4Prefix* rows, std::size_t n, Duplicates dup,
                             unsigned first_stride) {
    for (std::size_t i = 0; i < n; ++i) {
        const Ipv4Prefix& r = rows[i];
        if (r.length > 32) return BuildStatus::failure(i, "IPv4 prefix length above 32");
        if (r.network & ~host_mask(r.length))
            return BuildStatus::failure(i, "host bits set below the prefix length");
        if (r.label == kNoLabel || r.label > kMaxLabel)
            return BuildStatus::failure(i, "label must be between 1 and 2**31-1");
    }
    if (first_stride != 0 && first_stride != 16 && first_stride != 24)
        return BuildStatus::failure(0, "first stride must be 16 or 24");

    std::vector<std::uint32_t> order(n);
    std::iota(order.begin(), order.end(), 0u);
    std::stable_sort(order.begin(), order.end(), [rows](std::uint32_t a, std::uint32_t b) {
        if (rows[a].length != rows[b].length) return rows[a].length < rows[b].length;
        return rows[a].network < rows[b].network;
    });
    for (std::size_t k = 1; k < n; ++k) {
        const Ipv4Prefix& a = rows[order[k - 1]];
        const Ipv4Prefix& b = rows[order[k]];
        if (a.length == b.length && a.network == b.network) {
            if (dup == Duplicates::kError)
                return BuildStatus::failure(std::max(order[k - 1], order[k]),
                                            "duplicate prefix");
        }
    }

    unsigned stride = first_stride;
    if (stride == 0) {
        std::unordered_set<std::uint32_t> l1, l2;
        for (std::size_t i = 0; i < n && l1.size() + l2.size() <= kMaxChunksForStride16; ++i) {
            if (rows[i].length > 16) l1.insert(rows[i].network >> 16);
            if (rows[i].length > 24) l2.insert(rows[i].network >> 8);
        }
        stride = (l1.size() + l2.size() <= kMaxChunksForStride16) ? 16 : 24;
    }

    release();
    shift0_ = 32 - stride;
    if (!level0_.allocate(std::size_t(1) << stride))
        return BuildStatus::failure(0, "out of memory for the IPv4 table");

    for (std::size_t k = 0; k < n; ++k) paint(rows[order[k]]);
    chunks_.shrink_to_fit();
    if (stride == 24 && !compress_level0()) {
        release();
        return BuildStatus::failure(0, "out of memory for the IPv4 table");
    }
    return BuildStatus::success();
}

bool Ipv4Table::compress_level0() {
    constexpr std::size_t kBlocks = std::size_t(1) << 18;
    std::size_t n_runs = 0;  // counted first so the runs get one exact allocation
    for (std::size_t i = 0; i < level0_.size(); ++i)
        n_runs += (i & 63) == 0 || level0_[i] != level0_[i - 1];
    if (!blocks_.allocate(kBlocks) || !runs_.allocate(n_runs)) return false;
    std::size_t run = 0;
    for (std::size_t k = 0; k < kBlocks; ++k) {
        const std::uint32_t* entry = &level0_[k << 6];
        RunBlock& block = blocks_[k];
        block.first_run = static_cast<std::uint32_t>(run);
        for (unsigned j = 0; j < 64; ++j) {
            if (j == 0 || entry[j] != entry[j - 1]) {
                block.changes |= std::uint64_t(1) << j;
                runs_[run++] = entry[j];
            }
        }
    }
    level0_.reset();
    return true;
}

std::vector<Ipv4Step> Ipv4Table::steps() const {
    std::vector<Ipv4Step> out;
    auto emit = [&out](std::uint64_t first, label_t label) {
        if (out.empty() || out.back().label != label)
            out.push_back({static_cast<ipv4_host_t>(first), label});
    };
    // Entry `e` covering the 2^span addresses from `first`: its label, or
    // the 256 entries of its chunk.
    auto walk = [&](auto&& self, std::uint32_t e, std::uint64_t first, unsigned span) -> void {
        if (!(e & kChunkFlag)) return emit(first, e);
        const std::uint32_t* chunk = chunks_.data() + (std::size_t(e & ~kChunkFlag) << 8);
        for (std::uint64_t b = 0; b < 256; ++b)
            self(self, chunk[b], first + (b << (span - 8)), span - 8);
    };
    if (!blocks_.empty()) {
        // Each run starts where its block's change bitmap has a bit; a
        // /24 with a chunk is a run of its own.
        for (std::size_t k = 0; k < blocks_.size(); ++k) {
            std::uint64_t changes = blocks_[k].changes;
            for (std::uint32_t run = blocks_[k].first_run; changes != 0; ++run) {
                const unsigned j = static_cast<unsigned>(__builtin_ctzll(changes));
                changes &= changes - 1;
                walk(walk, runs_[run], std::uint64_t((k << 6) | j) << 8, 8);
            }
        }
    } else {
        for (std::size_t j = 0; j < level0_.size(); ++j)
            walk(walk, level0_[j], std::uint64_t(j) << shift0_, shift0_);
    }
    return out;
}

// Compressed DIR-24: two dependent reads per lookup (block, then run), each
// likely a last-level-cache hit. A software pipeline keeps many lookups in
// flight: the block of lookup i + 2K is prefetched, the run of lookup i + K
// is located and prefetched, and lookup i is finished. (Keeping the first
// run's value in the block, to spare most lookups the second read, measured
// slower: the choice of read cost more than the read. So did a direct /16
// level in front of the blocks: its 256 KiB were evicted by the blocks and
// runs streaming through the cache, 2.7 -> 8.8 ns a lookup.)
template <typename Popcount>
__attribute__((always_inline)) inline void Ipv4Table::lookup_runs(
    const ipv4_host_t* addrs, std::size_t n, label_t* out, Popcount popcount) const noexcept {
    constexpr std::size_t kAhead = 32;  // measured 8: 10 ns, 16: 6.3 ns, 32: 5.0 ns, 64: 5.2 ns
    constexpr std::size_t kRing = 64;  // > kAhead, a power of two
    std::uint32_t run_of[kRing];
    auto locate = [this, popcount](ipv4_host_t a) __attribute__((always_inline)) {
        const RunBlock& b = blocks_[a >> 14];
        return b.first_run + popcount(b.changes << (63 - ((a >> 8) & 63u))) - 1;
    };
    auto finish = [this](ipv4_host_t a, std::uint32_t run) {
        const std::uint32_t e = runs_[run];
        if (!(e & kChunkFlag)) return e;
        return chunks_[(std::size_t(e & ~kChunkFlag) << 8) | (a & 0xffu)];
    };
    if (n < 2 * kAhead) {
        for (std::size_t i = 0; i < n; ++i) out[i] = finish(addrs[i], locate(addrs[i]));
        return;
    }
    for (std::size_t i = 0; i < 2 * kAhead; ++i) __builtin_prefetch(&blocks_[addrs[i] >> 14]);
    for (std::size_t i = 0; i < kAhead; ++i) {
        run_of[i] = locate(addrs[i]);
        __builtin_prefetch(&runs_[run_of[i]]);
    }
    std::size_t i = 0;
    for (; i + 2 * kAhead < n; ++i) {
        __builtin_prefetch(&blocks_[addrs[i + 2 * kAhead] >> 14]);
        const std::uint32_t r = locate(addrs[i + kAhead]);
        __builtin_prefetch(&runs_[r]);
        run_of[(i + kAhead) % kRing] = r;
        out[i] = finish(addrs[i], run_of[i % kRing]);
    }
    for (; i + kAhead < n; ++i) {
        run_of[(i + kAhead) % kRing] = locate(addrs[i + kAhead]);
        out[i] = finish(addrs[i], run_of[i % kRing]);
    }
    for (; i < n; ++i) out[i] = finish(addrs[i], run_of[i % kRing]);
}

#if NKCLASS_POPCNT_DISPATCH
// The same pipeline built for the POPCNT instruction, chosen at run time:
// baseline x86-64 (what wheels target) counts bits with a dozen shifts and
// masks, a third of a lookup's time on a 500k-prefix table (4.2 -> 2.7 ns).
// Everything the count is inlined into is always inlined, so that it
// compiles for this function's target.
__attribute__((target("popcnt"))) void Ipv4Table::lookup_runs_popcnt(
    const ipv4_host_t* addrs, std::size_t n, label_t* out) const noexcept {
    lookup_runs(addrs, n, out, [](std::uint64_t x) __attribute__((always_inline)) {
        return static_cast<unsigned>(__builtin_popcountll(x));
    });
}
#endif

void Ipv4Table::lookup(const ipv4_host_t* addrs, std::size_t n, label_t* out) const noexcept {
    if (shift0_ >= 16) {
        // Level 0 is cache-resident: a plain loop. (A branch-free descent,
        // always reading three levels, measured 4x slower on a 5,000-prefix
        // table: the extra dependent loads cost more than the rare
        // mispredicted descent.)
        // The members in locals: `out` has their type, so the compiler
        // would otherwise read them again after every store.
        const std::uint32_t* level0 = level0_.data();
        const std::uint32_t* chunks = chunks_.data();
        const unsigned shift0 = shift0_;
        for (std::size_t i = 0; i < n; ++i)
            out[i] = descend(level0[addrs[i] >> shift0], chunks, addrs[i], static_cast<int>(shift0) - 8);
        return;
    }
#if NKCLASS_POPCNT_DISPATCH
    static const bool has_popcnt = __builtin_cpu_supports("popcnt");
    if (has_popcnt) return lookup_runs_popcnt(addrs, n, out);
#endif
    lookup_runs(addrs, n, out, [](std::uint64_t x) { return popcount64(x); });
}

BuildStatus Ipv4JointTable::build(const Ipv4Table& first, const Ipv4Table& second) try {
    const std::vector<Ipv4Step> a = first.steps(), b = second.steps();
    first_.assign(1, kNoLabel);
    second_.assign(1, kNoLabel);
    std::unordered_map<std::uint64_t, label_t> ids;
    std::vector<Ipv4Prefix> rows;
    constexpr std::uint64_t kEnd = std::uint64_t(1) << 32;
    auto next_first = [kEnd](const std::vector<Ipv4Step>& s, std::size_t i) {
        return i + 1 < s.size() ? std::uint64_t(s[i + 1].first) : kEnd;
    };
    std::size_t i = 0, j = 0;  // the steps holding `at`
    for (std::uint64_t at = 0; at < kEnd;) {
        const std::uint64_t end = std::min(next_first(a, i), next_first(b, j));
        if (a[i].label != kNoLabel || b[j].label != kNoLabel) {
            const std::uint64_t pair = std::uint64_t(a[i].label) << 32 | b[j].label;
            auto [it, fresh] = ids.emplace(pair, static_cast<label_t>(first_.size()));
            if (fresh) {
                if (first_.size() > kMaxLabel)
                    return BuildStatus::failure(0, "too many label pairs for one table");
                first_.push_back(a[i].label);
                second_.push_back(b[j].label);
            }
            // [at, end) as the fewest aligned prefixes.
            for (std::uint64_t lo = at; lo < end;) {
                unsigned bits = lo == 0 ? 32 : static_cast<unsigned>(__builtin_ctzll(lo));
                while ((std::uint64_t(1) << bits) > end - lo) --bits;
                rows.push_back({static_cast<ipv4_host_t>(lo), static_cast<std::uint8_t>(32 - bits),
                                it->second});
                lo += std::uint64_t(1) << bits;
            }
        }
        at = end;
        if (next_first(a, i) == at) ++i;
        if (next_first(b, j) == at) ++j;
    }
    return ids_.build(rows.data(), rows.size(), Duplicates::kError);
} catch (const std::bad_alloc&) {
    return BuildStatus::failure(0, "out of memory for the joint IPv4 table");
}

void Ipv4JointTable::lookup(const ipv4_host_t* addrs, std::size_t n, label_t* first_out,
                            label_t* second_out) const noexcept {
    constexpr std::size_t kStep = 512;
    label_t ids[kStep];
    const label_t* first = first_.data();
    const label_t* second = second_.data();
    for (std::size_t b = 0; b < n; b += kStep) {
        const std::size_t count = std::min(kStep, n - b);
        ids_.lookup(addrs + b, count, ids);
        for (std::size_t k = 0; k < count; ++k) {
            first_out[b + k] = first[ids[k]];
            second_out[b + k] = second[ids[k]];
        }
    }
}

}  // namespace nkclass
