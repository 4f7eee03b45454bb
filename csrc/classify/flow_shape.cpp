// The flow-shape stage (see flow_shape.hpp).
//
// One pass assigns each TCP flow to its (src, dst, dst_port) group through
// an open-addressing table of keys and group indices (linear probing, load
// <= 1/2, doubled as groups are found), the next accumulates the groups'
// sums; then each group is scored once and each flow's mask written.
// Ratios are compared as exact products in 128 bits so the native score and
// the Python reference agree on every boundary.
#include "nkclass/flow_shape.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <memory>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#include "nkclass/huge_pages.hpp"
#include "nkclass/types.hpp"

namespace nkclass {

namespace {

inline std::uint64_t fmix(std::uint64_t h) noexcept {
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    return h ^ (h >> 33);
}

// Group keys. When both address columns are uint32 (what the readers'
// narrowing gives for IPv4 batches) the key is the two addresses in 8 bytes
// and the port, kept in the slot itself so that a probe never touches the
// group's sums; otherwise both sides are taken in their IPv6 form, so an
// IPv4 host given as uint32 and as IPv4-mapped IPv6 is one key either way.
struct V4Key {
    std::uint64_t addrs = 0;  // src << 32 | dst
    std::uint16_t port = 0;

    static V4Key at(const FlowColumns& cols, std::size_t i) noexcept {
        return {std::uint64_t{cols.src_ip.v4[i]} << 32 | cols.dst_ip.v4[i], cols.dst_port[i]};
    }
    std::uint64_t hash() const noexcept {
        return fmix(addrs ^ (std::uint64_t{port} * 0x9e3779b97f4a7c15ull));
    }
    bool operator==(const V4Key& o) const noexcept { return addrs == o.addrs && port == o.port; }
};

struct V6Key {
    AddressWords src, dst;
    std::uint16_t port = 0;

    static V6Key at(const FlowColumns& cols, std::size_t i) noexcept {
        return {address_words(cols.src_ip, i), address_words(cols.dst_ip, i), cols.dst_port[i]};
    }
    std::uint64_t hash() const noexcept {
        std::uint64_t h = fmix(src.lo ^ (std::uint64_t{port} * 0x9e3779b97f4a7c15ull));
        h = fmix(h ^ src.hi);
        h = fmix(h ^ dst.lo);
        return fmix(h ^ dst.hi);
    }
    bool operator==(const V6Key& o) const noexcept {
        return port == o.port && src.lo == o.src.lo && dst.lo == o.dst.lo &&
               src.hi == o.src.hi && dst.hi == o.dst.hi;
    }
};

// A group's sums, kept small (a batch can hold a million groups): counters
// are 32-bit (a batch has under 2^32 flows) and sums 64-bit; score() widens
// to 128 bits.
struct Group {
    std::uint64_t packets = 0, bytes = 0;
    std::int64_t first_start = std::numeric_limits<std::int64_t>::max();
    std::int64_t last_end = std::numeric_limits<std::int64_t>::min();
    std::uint32_t flows = 0, ack_psh = 0, syn = 0, rst = 0, fin = 0, sport_above = 0;
};

constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();

// A table slot: the key beside its group id (kNone: empty).
template <typename Key>
struct Slot {
    Key key;
    std::uint32_t group;

    Key stored() const noexcept { return key; }
    bool holds(const Key& k) const noexcept { return key == k; }
    void fill(const Key& k, std::uint32_t g) noexcept { key = k, group = g; }
};

// The IPv4 slot packs the port beside the group id: 16 bytes instead of 24,
// so a million-group table spans a third less memory to miss in.
template <>
struct Slot<V4Key> {
    std::uint64_t addrs;
    std::uint32_t group;
    std::uint16_t port;

    V4Key stored() const noexcept { return {addrs, port}; }
    bool holds(const V4Key& k) const noexcept { return addrs == k.addrs && port == k.port; }
    void fill(const V4Key& k, std::uint32_t g) noexcept {
        addrs = k.addrs, port = k.port, group = g;
    }
};
static_assert(sizeof(Slot<V4Key>) == 16);

// Scratch arrays of a million-entry batch span tens of MiB of random
// accesses: back them with 2 MiB pages where the kernel allows, which
// measured faster than 4 KiB pages whose TLB misses dominated the probes.
// Grow-only and reused from call to call (see ScratchLease): the kernel
// zeroes a fresh huge page on first touch, which cost more than grouping.
template <typename T>
struct HugeArray {
    T* data = nullptr;
    std::size_t capacity = 0;

    HugeArray() = default;
    ~HugeArray() { std::free(data); }
    HugeArray(const HugeArray&) = delete;
    HugeArray& operator=(const HugeArray&) = delete;

    void reserve(std::size_t n) {
        if (data != nullptr && n <= capacity) return;
        const std::size_t bytes = huge_page_bytes(std::max<std::size_t>(1, n * sizeof(T)));
        T* fresh = static_cast<T*>(allocate_huge(bytes));
        std::free(data);
        data = fresh;
        capacity = bytes / sizeof(T);
    }
    T& operator[](std::size_t i) noexcept { return data[i]; }
    void swap(HugeArray& o) noexcept { std::swap(data, o.data), std::swap(capacity, o.capacity); }
};

struct Scratch {
    HugeArray<Slot<V4Key>> v4_slots, v4_spare;
    HugeArray<Slot<V6Key>> v6_slots, v6_spare;
    HugeArray<Group> groups;
    HugeArray<std::uint32_t> group_of;
    HugeArray<std::uint16_t> masks;
};

// Scratch sets of finished calls, which the next calls reuse: at most
// kIdleScratch are kept (one per thread classifying at once, as in a thread
// pool), each as large as the largest batch it grouped.
constexpr std::size_t kIdleScratch = 4;

std::mutex& scratch_mutex() {
    static auto* mutex = new std::mutex();  // never destroyed: no exit-order races
    return *mutex;
}

std::vector<std::unique_ptr<Scratch>>& idle_scratch() {
    static auto* idle = new std::vector<std::unique_ptr<Scratch>>();
    return *idle;
}

struct ScratchLease {
    std::unique_ptr<Scratch> scratch;

    ScratchLease() {
        {
            std::lock_guard<std::mutex> lock(scratch_mutex());
            auto& idle = idle_scratch();
            if (!idle.empty()) {
                scratch = std::move(idle.back());
                idle.pop_back();
            }
        }
        if (!scratch) scratch = std::make_unique<Scratch>();
    }
    ~ScratchLease() {
        std::lock_guard<std::mutex> lock(scratch_mutex());
        auto& idle = idle_scratch();
        if (idle.size() < kIdleScratch) {
            try {
                idle.push_back(std::move(scratch));
            } catch (const std::bad_alloc&) {  // not kept: freed with the lease
            }
        }
    }
    ScratchLease(const ScratchLease&) = delete;
    ScratchLease& operator=(const ScratchLease&) = delete;
};

// lo <= num / den <= hi for den > 0, exactly (in T, which must hold the
// products).
template <typename T>
inline bool ratio_in(T num, T den, T lo, T hi) noexcept {
    return lo * den <= num && num <= hi * den;
}

// The group's conditions, computed in T: u128 always holds the products;
// uint64_t does when packets, bytes and duration are below 2^40, as they
// are in practice (the largest product is then packets * 60000 < 2^56).
template <typename T>
std::uint16_t score_in(const Group& g, std::uint64_t duration) noexcept {
    const T F = g.flows, P = g.packets, B = g.bytes, D = duration;
    const T per_minute = P * 60000;  // packets per minute = per_minute / D
    std::uint16_t m = 0;
    if (ratio_in<T>(B, P, 35, 80) || ratio_in<T>(B, P, 105, 110)) m |= 1u << 0;
    if (!ratio_in<T>(P, F, 5, 40)) m |= 1u << 1;
    if (D != 0 && (ratio_in<T>(per_minute, D, 2, 8) || ratio_in<T>(per_minute, D, 40, 5300)))
        m |= 1u << 2;
    if (D > 300000) m |= 1u << 3;
    if (T(g.ack_psh) * 10 > F * 9) m |= 1u << 4;
    if (T(g.syn) * 20 < F) m |= 1u << 5;
    if (T(g.rst) * 100 < F) m |= 1u << 6;
    if (T(g.fin) * 20 < F) m |= 1u << 7;
    if (T(g.sport_above) * 10 > F * 9) m |= 1u << 8;
    return m;
}

std::uint16_t score(const Group& g) noexcept {
    const std::uint64_t duration =
        g.last_end > g.first_start
            ? static_cast<std::uint64_t>(g.last_end) - static_cast<std::uint64_t>(g.first_start)
            : 0;
    if (((g.packets | g.bytes | duration) >> 40) == 0) return score_in<std::uint64_t>(g, duration);
    return score_in<u128>(g, duration);
}

// Empties a table of `capacity` slots (a power of two).
template <typename Key>
void clear_slots(HugeArray<Slot<Key>>& slots, std::size_t capacity) {
    slots.reserve(capacity);
    for (std::size_t k = 0; k < capacity; ++k) slots[k].group = kNone;
}

// Moves the keys of a full table into one twice as large (`spare`, which
// becomes the table); returns the new slot mask.
template <typename Key>
std::size_t grow_slots(HugeArray<Slot<Key>>& slots, HugeArray<Slot<Key>>& spare,
                       std::size_t capacity) {
    const std::size_t mask = 2 * capacity - 1;
    clear_slots(spare, 2 * capacity);
    for (std::size_t k = 0; k < capacity; ++k) {
        if (slots[k].group == kNone) continue;
        std::size_t slot = slots[k].stored().hash() & mask;
        while (spare[slot].group != kNone) slot = (slot + 1) & mask;
        spare[slot] = slots[k];
    }
    slots.swap(spare);
    return mask;
}

// Groups the members, scores each group once and writes each flow's mask.
template <typename Key>
std::size_t group_and_score(const FlowColumns& cols, std::uint32_t min_flows, std::size_t members,
                            HugeArray<Slot<Key>>& slots, HugeArray<Slot<Key>>& spare,
                            Scratch& scratch, std::uint16_t* out) {
    const std::size_t n = cols.n;
    // Sized for as many groups as members, at load <= 1/2 once it is
    // halfway: batches repeat their (src, dst, port) keys (the demo's 1M
    // flows hold 390k groups), and a table sized for the groups found
    // misses in a third of the memory one sized for the worst case would.
    std::size_t capacity = 16;
    while (capacity < members) capacity <<= 1;
    std::size_t slot_mask = capacity - 1;
    clear_slots(slots, capacity);
    scratch.groups.reserve(members);
    scratch.group_of.reserve(n);
    std::uint32_t* group_of = scratch.group_of.data;
    Group* groups = scratch.groups.data;
    std::size_t n_groups = 0;

    // Two passes, each of whose random accesses is prefetched 32 flows
    // ahead (8 left the slot loads waiting on memory: 31 ms against 25 ms
    // for the demo's 1M-flow batch): the first finds each member's group
    // through the table (new groups are numbered in order, so their
    // records fill sequentially); the second adds the flow into its
    // group's record, which on a big batch is a cache miss that the first
    // pass's group ids let it fetch early.
    // Each TCP key is hashed once, kAhead flows early, and its hash kept in
    // a ring until its turn (hashing it again there cost 6% of the stage);
    // other flows' entries are stale and never read.
    constexpr std::size_t kAhead = 32;
    std::uint64_t ahead[kAhead];
    for (std::size_t i = 0; i < std::min(kAhead, n); ++i) ahead[i] = Key::at(cols, i).hash();
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint64_t hash = ahead[i % kAhead];
        if (i + kAhead < n && cols.protocol[i + kAhead] == 6) {
            const std::uint64_t next = Key::at(cols, i + kAhead).hash();
            ahead[i % kAhead] = next;
            __builtin_prefetch(&slots[next & slot_mask]);
        }
        if (cols.protocol[i] != 6 || cols.packets[i] == 0) {
            group_of[i] = kNone;
            continue;
        }
        const Key key = Key::at(cols, i);
        std::size_t slot = hash & slot_mask;
        std::uint32_t g;
        while (true) {
            g = slots[slot].group;
            if (g == kNone) {
                g = static_cast<std::uint32_t>(n_groups++);
                slots[slot].fill(key, g);
                groups[g] = Group{};
                if (2 * n_groups > capacity) {
                    slot_mask = grow_slots(slots, spare, capacity);
                    capacity *= 2;
                }
                break;
            }
            if (slots[slot].holds(key)) break;
            slot = (slot + 1) & slot_mask;
        }
        group_of[i] = g;
    }
    for (std::size_t i = 0; i < n; ++i) {
        if (i + kAhead < n && group_of[i + kAhead] != kNone)
            __builtin_prefetch(&groups[group_of[i + kAhead]], 1);
        const std::uint32_t g = group_of[i];
        if (g == kNone) continue;
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
        grp.sport_above += cols.src_port[i] > cols.dst_port[i];
    }

    // Masks in their own small array: the per-flow write-back then reads a
    // cache-resident table instead of the large group records.
    scratch.masks.reserve(n_groups);
    std::uint16_t* masks = scratch.masks.data;
    for (std::size_t k = 0; k < n_groups; ++k)
        masks[k] = groups[k].flows >= min_flows
                       ? static_cast<std::uint16_t>(score(groups[k]) | kShapeMember)
                       : 0;
    for (std::size_t i = 0; i < n; ++i) out[i] = group_of[i] != kNone ? masks[group_of[i]] : 0;
    return n_groups;
}

}  // namespace

std::size_t flow_shape_conditions(const FlowColumns& cols, std::uint32_t min_flows,
                                  std::uint16_t* out) {
    const std::size_t n = cols.n;
    std::size_t members = 0;
    if (cols.has_shape_columns() && n < kNone)
        for (std::size_t i = 0; i < n; ++i)
            members += cols.protocol[i] == 6 && cols.packets[i] != 0;
    if (members == 0) {
        std::fill(out, out + n, std::uint16_t{0});
        return 0;
    }

    ScratchLease lease;
    Scratch& scratch = *lease.scratch;
    if (cols.src_ip.v4 != nullptr && cols.dst_ip.v4 != nullptr)
        return group_and_score<V4Key>(cols, min_flows, members, scratch.v4_slots,
                                      scratch.v4_spare, scratch, out);
    return group_and_score<V6Key>(cols, min_flows, members, scratch.v6_slots, scratch.v6_spare,
                                  scratch, out);
}

}  // namespace nkclass
