// The flow-shape stage (see flow_shape.hpp).
//
// One pass assigns each TCP flow to its (src, dst, dst_port) group through
// an open-addressing table of group indices (linear probing, load <= 1/2)
// and accumulates the group's sums; a second pass scores each group once;
// a third writes each flow's mask. Ratios are compared as exact products
// in 128 bits so the native score and the Python reference agree on every
// boundary.
#include "nkclass/flow_shape.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <vector>

#include "nkclass/types.hpp"

namespace nkclass {

namespace {

// An address as two 64-bit words of its IPv6 (IPv4-mapped) form, so a
// uint32 column and a 16-byte column name IPv4 hosts the same way.
struct AddrWords {
    std::uint64_t hi, lo;
};

inline AddrWords address_at(const AddressColumn& col, std::size_t i) noexcept {
    if (col.v4 != nullptr) return {0, 0x0000ffff00000000ull | col.v4[i]};
    const u128 v = to_u128(col.v6[i]);
    return {static_cast<std::uint64_t>(v >> 64), static_cast<std::uint64_t>(v)};
}

// Kept small (a batch can hold a million groups): counters are 32-bit (a
// batch has under 2^32 flows) and sums 64-bit; score() widens to 128 bits.
struct Group {
    AddrWords src, dst;
    std::uint64_t packets = 0, bytes = 0;
    std::int64_t first_start = std::numeric_limits<std::int64_t>::max();
    std::int64_t last_end = std::numeric_limits<std::int64_t>::min();
    std::uint32_t flows = 0, ack_psh = 0, syn = 0, rst = 0, fin = 0, sport_above = 0;
    std::uint16_t dst_port = 0;
};

// A table slot: the key's hash beside the group id, so most probes that
// miss are rejected without touching the group.
struct Slot {
    std::uint64_t hash;
    std::uint32_t group;
};

// Scratch arrays of a million-entry batch span tens of MiB of random
// accesses: back them with 2 MiB pages where the kernel allows, which
// measured faster than 4 KiB pages whose TLB misses dominated the probes.
template <typename T>
struct HugeArray {
    T* data = nullptr;
    explicit HugeArray(std::size_t n) {
        constexpr std::size_t kPage = 2u << 20;
        const std::size_t bytes = (n * sizeof(T) + kPage - 1) / kPage * kPage;
        data = static_cast<T*>(std::aligned_alloc(kPage, bytes ? bytes : kPage));
        if (data == nullptr) throw std::bad_alloc();
#ifdef MADV_HUGEPAGE
        madvise(data, bytes, MADV_HUGEPAGE);
#endif
    }
    ~HugeArray() { std::free(data); }
    HugeArray(const HugeArray&) = delete;
    HugeArray& operator=(const HugeArray&) = delete;
    T& operator[](std::size_t i) noexcept { return data[i]; }
};

inline std::uint64_t mix(std::uint64_t h, std::uint64_t v) noexcept {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xbf58476d1ce4e5b9ull;
}

inline std::uint64_t hash_key(const AddrWords& s, const AddrWords& d, std::uint16_t port) noexcept {
    std::uint64_t h = mix(port, s.lo);
    h = mix(h, s.hi);
    h = mix(h, d.lo);
    h = mix(h, d.hi);
    return h ^ (h >> 31);
}

inline bool same(const Group& g, const AddrWords& s, const AddrWords& d, std::uint16_t port) noexcept {
    return g.dst_port == port && g.src.lo == s.lo && g.dst.lo == d.lo && g.src.hi == s.hi &&
           g.dst.hi == d.hi;
}

// lo <= num / den <= hi for den > 0, exactly.
inline bool ratio_in(u128 num, u128 den, u128 lo, u128 hi) noexcept {
    return lo * den <= num && num <= hi * den;
}

std::uint16_t score(const Group& g) noexcept {
    const u128 F = g.flows, P = g.packets, B = g.bytes;
    const u128 D = g.last_end > g.first_start
                       ? static_cast<u128>(static_cast<std::uint64_t>(g.last_end) -
                                           static_cast<std::uint64_t>(g.first_start))
                       : 0;
    const u128 per_minute = P * 60000;  // packets per minute = per_minute / D
    std::uint16_t m = 0;
    if (ratio_in(B, P, 35, 80) || ratio_in(B, P, 105, 110)) m |= 1u << 0;
    if (!ratio_in(P, F, 5, 40)) m |= 1u << 1;
    if (D != 0 && (ratio_in(per_minute, D, 2, 8) || ratio_in(per_minute, D, 40, 5300)))
        m |= 1u << 2;
    if (D > 300000) m |= 1u << 3;
    if (u128(g.ack_psh) * 10 > F * 9) m |= 1u << 4;
    if (u128(g.syn) * 20 < F) m |= 1u << 5;
    if (u128(g.rst) * 100 < F) m |= 1u << 6;
    if (u128(g.fin) * 20 < F) m |= 1u << 7;
    if (u128(g.sport_above) * 10 > F * 9) m |= 1u << 8;
    return m;
}

}  // namespace

std::size_t flow_shape_conditions(const FlowColumns& cols, std::uint32_t min_flows,
                                  std::uint16_t* out) {
    const std::size_t n = cols.n;
    for (std::size_t i = 0; i < n; ++i) out[i] = 0;
    constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
    if (!cols.has_shape_columns() || n == 0 || n >= kNone) return 0;

    std::size_t members = 0;
    for (std::size_t i = 0; i < n; ++i) members += cols.protocol[i] == 6 && cols.packets[i] != 0;
    if (members == 0) return 0;
    std::size_t capacity = 16;
    while (capacity < 2 * members) capacity <<= 1;
    const std::size_t slot_mask = capacity - 1;

    HugeArray<Slot> slots(capacity);
    for (std::size_t k = 0; k < capacity; ++k) slots[k] = Slot{0, kNone};
    std::vector<std::uint32_t> group_of(n, kNone);
    HugeArray<Group> groups(members);
    std::size_t n_groups = 0;

    // Slots are random accesses into a table that outgrows the cache on big
    // batches: hash a few flows ahead and prefetch their slots.
    constexpr std::size_t kAhead = 8;
    auto key_hash = [&cols](std::size_t i) {
        return hash_key(address_at(cols.src_ip, i), address_at(cols.dst_ip, i), cols.dst_port[i]);
    };
    for (std::size_t i = 0; i < n; ++i) {
        if (i + kAhead < n && cols.protocol[i + kAhead] == 6)
            __builtin_prefetch(&slots[key_hash(i + kAhead) & slot_mask]);
        if (cols.protocol[i] != 6 || cols.packets[i] == 0) continue;
        const AddrWords s = address_at(cols.src_ip, i);
        const AddrWords d = address_at(cols.dst_ip, i);
        const std::uint16_t port = cols.dst_port[i];
        const std::uint64_t h = hash_key(s, d, port);
        std::size_t slot = h & slot_mask;
        std::uint32_t g;
        while (true) {
            g = slots[slot].group;
            if (g == kNone) {
                g = static_cast<std::uint32_t>(n_groups++);
                slots[slot] = Slot{h, g};
                Group fresh;
                fresh.src = s;
                fresh.dst = d;
                fresh.dst_port = port;
                groups[g] = fresh;
                break;
            }
            if (slots[slot].hash == h && same(groups[g], s, d, port)) break;
            slot = (slot + 1) & slot_mask;
        }
        group_of[i] = g;
        Group& grp = groups[g];
        const std::uint8_t flags = cols.tcp_flags[i];
        grp.flows += 1;
        grp.packets += cols.packets[i];
        grp.bytes += cols.bytes[i];
        grp.first_start = cols.ts_start[i] < grp.first_start ? cols.ts_start[i] : grp.first_start;
        grp.last_end = cols.ts_end[i] > grp.last_end ? cols.ts_end[i] : grp.last_end;
        grp.ack_psh += (flags & (kTcpAck | kTcpPsh)) == (kTcpAck | kTcpPsh);
        grp.syn += (flags & kTcpSyn) != 0;
        grp.rst += (flags & kTcpRst) != 0;
        grp.fin += (flags & kTcpFin) != 0;
        grp.sport_above += cols.src_port[i] > port;
    }

    // Masks in their own small array: the per-flow write-back then reads a
    // cache-resident table instead of the large group records.
    std::vector<std::uint16_t> masks(n_groups);
    for (std::size_t k = 0; k < n_groups; ++k)
        masks[k] = groups[k].flows >= min_flows
                       ? static_cast<std::uint16_t>(score(groups[k]) | kShapeMember)
                       : 0;
    for (std::size_t i = 0; i < n; ++i)
        if (group_of[i] != kNone) out[i] = masks[group_of[i]];
    return n_groups;
}

}  // namespace nkclass
