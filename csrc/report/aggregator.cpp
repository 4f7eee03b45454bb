// The aggregation pass (see aggregate.hpp).
//
// Why addresses are laid out by group before they reach a set: a watched
// network has few hosts and they meet the same peers again and again, so a
// batch repeats each (group, address) pair many times. A small
// direct-mapped table of the (group, IPv4 address) pairs already added
// drops most repeats first (the demo's batches hold about 5 flows per
// distinct pair). The pass then lays the remaining addresses out group by
// group (a counting sort) and hands each group's run to its set in one
// call: no per-flow set call and no large hash set. A set is a sorted
// vector while small (see V4Set) and a roaring bitmap past that; both hand
// over roaring's portable format.
#include "nkclass/aggregate.hpp"

#include <algorithm>
#include <iterator>
#include <limits>
#include <memory>
#include <new>

#include "../third_party/croaring/roaring.h"

using namespace roaring::api;

namespace nkclass {

namespace {

constexpr std::int64_t kMsPerHour = 3'600'000;
constexpr std::int64_t kMsPerDay = 86'400'000;
constexpr std::size_t kP = Profile::kCounters;

inline std::uint64_t mix(std::uint64_t k) noexcept {
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ull;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebull;
    return k ^ (k >> 31);
}

inline std::uint64_t hash(const GroupKey& k) noexcept {
    return mix(static_cast<std::uint64_t>(k.bucket) * 0x9e3779b97f4a7c15ull ^ k.tag);
}
inline std::uint64_t hash(const ProfileKey& k) noexcept {
    return mix(std::uint64_t(k.path) << 8 | k.activity);
}
inline std::uint64_t hash(const UpstreamKey& k) noexcept {
    return mix(static_cast<std::uint64_t>(k.bucket) * 0x9e3779b97f4a7c15ull ^
               (std::uint64_t(k.asn) << 16 | k.path));
}

// Open addressing from keys to dense ids (0, 1, 2, ... in insertion order).
template <class Key>
class KeyIndex {
public:
    KeyIndex() { reset(16); }

    std::size_t size() const noexcept { return keys_.size(); }
    const Key& key(std::size_t id) const noexcept { return keys_[id]; }

    // The id of `k`, adding it when new.
    std::uint32_t id(const Key& k) {
        if (2 * (keys_.size() + 1) > slots_.size()) grow();
        std::size_t pos = hash(k) & mask_;
        while (slots_[pos] != kEmpty) {
            if (keys_[slots_[pos]] == k) return slots_[pos];
            pos = (pos + 1) & mask_;
        }
        slots_[pos] = static_cast<std::uint32_t>(keys_.size());
        keys_.push_back(k);
        return slots_[pos];
    }

    // Forgets the keys from `count` on (undoing a failed batch).
    void truncate(std::size_t count) {
        keys_.resize(count);
        std::vector<Key> keep;
        keep.swap(keys_);
        reset(slots_.size());
        for (const Key& k : keep) id(k);
    }

private:
    static constexpr std::uint32_t kEmpty = 0xffffffffu;
    std::vector<std::uint32_t> slots_;
    std::vector<Key> keys_;
    std::size_t mask_ = 0;

    void reset(std::size_t size) {
        slots_.assign(size, kEmpty);
        mask_ = size - 1;
    }
    void grow() {
        std::vector<std::uint32_t> old;
        old.swap(slots_);
        reset(old.size() * 2);
        for (std::uint32_t i = 0; i < keys_.size(); ++i) {
            std::size_t pos = hash(keys_[i]) & mask_;
            while (slots_[pos] != kEmpty) pos = (pos + 1) & mask_;
            slots_[pos] = i;
        }
    }
};

// Days since 1970-01-01 to (year, month 1..12), proleptic Gregorian
// (H. Hinnant's civil_from_days).
void civil_from_days(std::int64_t z, std::int64_t* year, unsigned* month) noexcept {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    *year = static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2);
    *month = m;
}

struct WidePair {
    std::uint32_t group;
    std::uint64_t value;
    bool operator<(const WidePair& o) const noexcept {
        return group != o.group ? group < o.group : value < o.value;
    }
    bool operator==(const WidePair& o) const noexcept {
        return group == o.group && value == o.value;
    }
};

// The IPv4 value of an address, or false with the /64 in `*prefix`.
inline bool address_of(const AddressColumn& col, std::size_t i, std::uint32_t* v4,
                       std::uint64_t* prefix) noexcept {
    if (col.v4 != nullptr) {
        *v4 = col.v4[i];
        return true;
    }
    const ipv6_net_t& a = col.v6[i];
    if (ipv4_mapped(a, v4)) return true;
    std::uint64_t p = 0;
    for (int k = 0; k < 8; ++k) p = (p << 8) | a.bytes[k];
    *prefix = p;
    return false;
}

inline bool add_into(std::uint64_t* to, std::uint64_t v) noexcept {
    return !__builtin_add_overflow(*to, v, to);
}

// A set of IPv4 values: a sorted vector while it holds at most kSmallSet,
// a roaring bitmap past that. Peers spread over the address space, one or
// two to a 2^16 block, and roaring spends a container (two allocations) on
// each such block: on the demo's day groups that was 1.1M containers to
// build, serialize and free for 1.2M peers.
class V4Set {
public:
    static constexpr std::size_t kSmallSet = 8192;

    V4Set() = default;
    V4Set(const V4Set&) = delete;
    V4Set& operator=(const V4Set&) = delete;
    ~V4Set() {
        if (big_ != nullptr) roaring_bitmap_free(big_);
    }

    // Adds run[0, k) (which it may reorder).
    void add(std::uint32_t* run, std::size_t k) {
        if (big_ != nullptr) {
            roaring_bitmap_add_many(big_, k, run);
            return;
        }
        std::sort(run, run + k);
        k = static_cast<std::size_t>(std::unique(run, run + k) - run);
        if (small_.empty()) {
            small_.assign(run, run + k);
        } else {
            std::vector<std::uint32_t> merged;
            merged.reserve(small_.size() + k);
            std::set_union(small_.begin(), small_.end(), run, run + k,
                           std::back_inserter(merged));
            small_.swap(merged);
        }
        if (small_.size() <= kArrayMax ||
            (small_.size() <= kSmallSet && largest_block() <= kArrayMax))
            return;
        big_ = roaring_bitmap_create();
        if (big_ == nullptr) throw std::bad_alloc();
        roaring_bitmap_add_many(big_, small_.size(), small_.data());  // sorted: appends
        std::vector<std::uint32_t>().swap(small_);
    }

    bool empty() const noexcept { return big_ == nullptr && small_.empty(); }
    std::uint64_t size() const noexcept {
        return big_ != nullptr ? roaring_bitmap_get_cardinality(big_) : small_.size();
    }

    // The 32-bit portable roaring format, as roaring_bitmap_portable_serialize
    // writes it. A small set's blocks hold at most kArrayMax values each, so
    // all are array containers: cookie 12346 (no run containers) and the
    // count, (key, cardinality - 1) per block, each block's byte offset, then
    // each block's low 16 bits; all little-endian.
    std::string serialized() const {
        std::string out;
        if (big_ != nullptr) {
            out.resize(roaring_bitmap_portable_size_in_bytes(big_));
            roaring_bitmap_portable_serialize(big_, out.data());
            return out;
        }
        std::size_t blocks = 0;
        for_each_block([&](std::size_t, std::size_t) { ++blocks; });
        out.resize(8 + 8 * blocks + 2 * small_.size());
        auto* o = reinterpret_cast<unsigned char*>(out.data());
        auto put = [&o](std::uint32_t v, int bytes) {
            for (int b = 0; b < bytes; ++b) *o++ = static_cast<unsigned char>(v >> (8 * b));
        };
        put(12346, 4);
        put(static_cast<std::uint32_t>(blocks), 4);
        for_each_block([&](std::size_t begin, std::size_t end) {  // descriptive header
            put(small_[begin] >> 16, 2);
            put(static_cast<std::uint32_t>(end - begin - 1), 2);
        });
        auto at = static_cast<std::uint32_t>(8 + 8 * blocks);
        for_each_block([&](std::size_t begin, std::size_t end) {  // offsets
            put(at, 4);
            at += static_cast<std::uint32_t>(2 * (end - begin));
        });
        for (std::uint32_t v : small_) put(v & 0xffffu, 2);
        return out;
    }

private:
    // The most values of one 2^16 block that roaring keeps as an array.
    static constexpr std::size_t kArrayMax = 4096;

    // Calls f(begin, end) for the indices of each 2^16 block's values.
    template <typename F>
    void for_each_block(F f) const {
        for (std::size_t begin = 0, end; begin < small_.size(); begin = end) {
            for (end = begin + 1;
                 end < small_.size() && (small_[end] >> 16) == (small_[begin] >> 16);)
                ++end;
            f(begin, end);
        }
    }

    std::size_t largest_block() const {
        std::size_t largest = 0;
        for_each_block([&](std::size_t begin, std::size_t end) {
            largest = std::max(largest, end - begin);
        });
        return largest;
    }

    std::vector<std::uint32_t> small_;
    roaring_bitmap_t* big_ = nullptr;
};

}  // namespace

struct Aggregator::Index {
    KeyIndex<GroupKey> groups;
    KeyIndex<ProfileKey> profiles;
    KeyIndex<UpstreamKey> upstreams;
    std::vector<std::uint32_t> group_profile;  // group id -> profile id
    // Scratch reused across batches.
    std::vector<std::uint64_t> sums, profile_sums, upstream_sums;
    // hosts, peers: the (group, IPv4 value) pairs to add, repeats mostly
    // dropped by `added`; sized to the largest batch, filled from 0
    std::vector<std::uint32_t> pair_group[2], pair_value[2];
    std::vector<WidePair> v6[2];               // (group, /64)
    std::vector<std::uint32_t> starts, laid;   // counting sort by group
    // Pairs known to be in their group's set (direct-mapped: a collision
    // forgets one, which only costs its set a repeated add). Cleared when
    // a batch fails, whose pairs never reach the sets.
    static constexpr unsigned kAddedBits = 13;
    std::vector<std::uint64_t> added[2];
    void forget_added() {
        for (auto& a : added) a.assign(std::size_t{1} << kAddedBits, kNoPair);
    }
    static constexpr std::uint64_t kNoPair = ~std::uint64_t{0};  // group ids stay below 2^32 - 1
    // The hour of the last flow, with its bucket, hour of day and weekday:
    // time-ordered input stays within one hour for thousands of flows.
    struct Hour {
        std::int64_t start = std::numeric_limits<std::int64_t>::min();  // ms; min: none yet
        std::int64_t bucket = 0;
        std::uint32_t hour = 0, weekday = 0;
    } hour;
    // The groups met lately, by (path, activity, extra): time-ordered
    // input meets the same few dozen groups for hours, and this L1-sized
    // table spares most lookups in the full index.
    struct Recent {
        GroupKey key;
        std::uint32_t gid = ~0u;
    };
    static constexpr std::size_t kRecent = 1024;
    Recent recent[kRecent];
    struct RecentUpstream {
        UpstreamKey key;
        std::uint32_t uid = ~0u;
    };
    RecentUpstream recent_upstream[kRecent];
};

struct Aggregator::Sets {
    V4Set v4[2];                                       // hosts, peers
    roaring64_bitmap_t* v6[2] = {nullptr, nullptr};    // hosts, peers (/64)
    ~Sets() {
        for (auto* b : v6)
            if (b) roaring64_bitmap_free(b);
    }
};

std::int64_t bucket_index(std::int64_t ts_ms, Bucket bucket) noexcept {
    switch (bucket) {
        case Bucket::kHour: return ts_ms / kMsPerHour;
        case Bucket::kDay: return ts_ms / kMsPerDay;
        case Bucket::kWeek: return (ts_ms / kMsPerDay + 3) / 7;  // 1970-01-01 was a Thursday
        case Bucket::kMonth: {
            std::int64_t year;
            unsigned month;
            civil_from_days(ts_ms / kMsPerDay, &year, &month);
            return (year - 1970) * 12 + (month - 1);
        }
    }
    return 0;
}

Aggregator::Aggregator(Bucket bucket) : bucket_(bucket), index_(std::make_unique<Index>()) {
    index_->forget_added();
}

Aggregator::~Aggregator() {
    for (GroupRecord& g : groups_) delete g.sets;
}

BuildStatus Aggregator::add(const AggregateBatch& b) {
    const std::size_t n = b.n;
    if (n == 0) return BuildStatus::success();
    Index& ix = *index_;
    const std::size_t groups0 = groups_.size(), profiles0 = profile_keys_.size(),
                      upstreams0 = upstream_keys_.size();
    ix.sums.assign(3 * groups0, 0);
    ix.profile_sums.assign(kP * profiles0, 0);
    ix.upstream_sums.assign(2 * upstreams0, 0);
    std::size_t pairs[2] = {0, 0};
    for (int w = 0; w < 2; ++w) {
        if (ix.pair_group[w].size() < n) {
            ix.pair_group[w].resize(n);
            ix.pair_value[w].resize(n);
        }
        ix.v6[w].clear();
    }
    const bool upstreams = b.src_as != nullptr && b.dst_as != nullptr;
    bool ok = true;
    std::int64_t first = b.ts_start[0], last = b.ts_start[0];
    Index::Hour& at = ix.hour;

    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t ts = b.ts_start[i];  // >= 0 (the callers check)
        first = std::min(first, ts);
        last = std::max(last, ts);
        if (static_cast<std::uint64_t>(ts) - static_cast<std::uint64_t>(at.start) >=
            std::uint64_t{kMsPerHour}) {
            // every bucket starts on the hour, so the hour's bucket is the flow's
            at.start = ts - ts % kMsPerHour;
            at.bucket = bucket_index(ts, bucket_);
            at.hour = static_cast<std::uint32_t>((ts / kMsPerHour) % 24);
            at.weekday = static_cast<std::uint32_t>((ts / kMsPerDay + 3) % 7);  // Monday = 0
        }
        const std::uint16_t path = b.path[i];
        const std::uint8_t activity = b.activity[i];
        GroupKey key;
        key.bucket = at.bucket;
        key.tag = GroupKey::label(path, activity, b.extra ? b.extra[i] : 0);
        Index::Recent& seen = ix.recent[mix(key.tag) & (Index::kRecent - 1)];
        if (seen.gid == ~0u || !(seen.key == key)) {
            seen.gid = ix.groups.id(key);
            seen.key = key;
            if (seen.gid == ix.group_profile.size()) {  // a new group: its profile row
                ix.group_profile.push_back(ix.profiles.id(ProfileKey{path, activity}));
                ix.sums.resize(3 * ix.groups.size(), 0);
                if (kP * ix.profiles.size() > ix.profile_sums.size())
                    ix.profile_sums.resize(kP * ix.profiles.size(), 0);
            }
        }
        const std::uint32_t g = seen.gid;
        const std::uint64_t nbytes = b.bytes ? b.bytes[i] : 0;
        const std::uint64_t npackets = b.packets ? b.packets[i] : 0;
        std::uint64_t* s = &ix.sums[3 * g];
        ok &= add_into(s, 1) & add_into(s + 1, nbytes) & add_into(s + 2, npackets);

        std::uint64_t* prof = &ix.profile_sums[kP * ix.group_profile[g]];
        ok &= add_into(prof + Profile::kHourFlows + at.hour, 1) &
              add_into(prof + Profile::kHourBytes + at.hour, nbytes) &
              add_into(prof + Profile::kWeekdayFlows + at.weekday, 1) &
              add_into(prof + Profile::kWeekdayBytes + at.weekday, nbytes);

        const std::uint8_t side = b.side[i];
        if (side == kSideNone) continue;
        const bool dst_host = side == kSideDst;
        const AddressColumn* cols[2] = {dst_host ? &b.dst_ip : &b.src_ip,
                                        dst_host ? &b.src_ip : &b.dst_ip};
        for (int w = 0; w < 2; ++w) {
            std::uint32_t v4 = 0;
            std::uint64_t v6;
            if (!address_of(*cols[w], i, &v4, &v6)) {
                ix.v6[w].push_back({g, v6});
                continue;
            }
            const std::uint64_t pair = std::uint64_t{g} << 32 | v4;
            std::uint64_t& known =
                ix.added[w][(pair * 0x9e3779b97f4a7c15ull) >> (64 - Index::kAddedBits)];
            // written either way, kept only when new: no branch to mispredict
            ix.pair_group[w][pairs[w]] = g;
            ix.pair_value[w][pairs[w]] = v4;
            pairs[w] += known != pair;
            known = pair;
        }
        if (upstreams) {
            const UpstreamKey ukey{key.bucket, dst_host ? b.dst_as[i] : b.src_as[i], path};
            Index::RecentUpstream& seen_up =
                ix.recent_upstream[mix(std::uint64_t(ukey.asn) << 16 | path) &
                                   (Index::kRecent - 1)];
            if (seen_up.uid == ~0u || !(seen_up.key == ukey)) {
                seen_up.uid = ix.upstreams.id(ukey);
                seen_up.key = ukey;
            }
            const std::uint32_t u = seen_up.uid;
            if (2 * ix.upstreams.size() > ix.upstream_sums.size())
                ix.upstream_sums.resize(2 * ix.upstreams.size(), 0);
            ok &= add_into(&ix.upstream_sums[2 * u], 1) &
                  add_into(&ix.upstream_sums[2 * u + 1], nbytes);
        }
    }

    // Check every sum against what is already there before changing it.
    std::uint64_t scratch;
    for (std::size_t g = 0; ok && g < groups0; ++g)
        for (int k = 0; k < 3; ++k)
            ok &= !__builtin_add_overflow(groups_[g].sums[k], ix.sums[3 * g + k], &scratch);
    for (std::size_t p = 0; ok && p < profiles0; ++p) {
        const std::uint64_t* have = profiles_[p].v;
        for (std::size_t k = 0; k < kP; ++k)
            ok &= !__builtin_add_overflow(have[k], ix.profile_sums[kP * p + k], &scratch);
    }
    for (std::size_t u = 0; ok && u < upstreams0; ++u)
        ok &= !__builtin_add_overflow(upstreams_[u].flows, ix.upstream_sums[2 * u], &scratch) &&
              !__builtin_add_overflow(upstreams_[u].bytes, ix.upstream_sums[2 * u + 1], &scratch);
    if (!ok) {
        ix.groups.truncate(groups0);
        ix.group_profile.resize(groups0);
        for (Index::Recent& r : ix.recent) r.gid = ~0u;  // may name the groups undone
        for (Index::RecentUpstream& r : ix.recent_upstream) r.uid = ~0u;
        ix.forget_added();  // this batch's pairs were never added
        ix.profiles.truncate(profiles0);
        ix.upstreams.truncate(upstreams0);
        return BuildStatus::failure(0, "a flow, byte or packet sum passes 2^64 - 1");
    }

    groups_.resize(ix.groups.size());
    for (std::size_t g = 0; g < groups_.size(); ++g) {
        if (g >= groups0) groups_[g].key = ix.groups.key(g);
        for (int k = 0; k < 3; ++k) groups_[g].sums[k] += ix.sums[3 * g + k];
    }
    profile_keys_.resize(ix.profiles.size());
    profiles_.resize(ix.profiles.size());
    for (std::size_t p = 0; p < profiles_.size(); ++p) {
        if (p >= profiles0) profile_keys_[p] = ix.profiles.key(p);
        std::uint64_t* have = profiles_[p].v;
        for (std::size_t k = 0; k < kP; ++k) have[k] += ix.profile_sums[kP * p + k];
    }
    upstream_keys_.resize(ix.upstreams.size());
    upstreams_.resize(ix.upstreams.size());
    for (std::size_t u = 0; u < upstreams_.size(); ++u) {
        if (u >= upstreams0) upstream_keys_[u] = ix.upstreams.key(u);
        upstreams_[u].flows += ix.upstream_sums[2 * u];
        upstreams_[u].bytes += ix.upstream_sums[2 * u + 1];
    }
    first_ms_ = first_ms_ < 0 ? first : std::min(first_ms_, first);
    last_ms_ = std::max(last_ms_, last);

    try {
        add_to_sets(pairs);
    } catch (...) {
        ix.forget_added();  // some of the pairs may not have reached their sets
        throw;
    }
    return BuildStatus::success();
}

void Aggregator::add_to_sets(const std::size_t pairs[2]) {
    Index& ix = *index_;
    auto sets_of = [&](std::uint32_t g) -> Sets& {
        if (groups_[g].sets == nullptr) groups_[g].sets = new Sets();
        return *groups_[g].sets;
    };
    const std::size_t n_groups = groups_.size();
    for (int which = 0; which < 2; ++which) {
        // The pairs' values laid out by group (a counting sort), each
        // group's run added in one call.
        const std::uint32_t* group = ix.pair_group[which].data();
        const std::uint32_t* value = ix.pair_value[which].data();
        const std::size_t count = pairs[which];
        ix.starts.assign(n_groups + 1, 0);
        for (std::size_t j = 0; j < count; ++j) ++ix.starts[group[j] + 1];
        for (std::size_t g = 0; g < n_groups; ++g) ix.starts[g + 1] += ix.starts[g];
        ix.laid.resize(count);
        for (std::size_t j = 0; j < count; ++j) ix.laid[ix.starts[group[j]]++] = value[j];
        // starts[g] now ends group g's run, which begins where g - 1's ends
        for (std::size_t g = 0, begin = 0; g < n_groups; begin = ix.starts[g++]) {
            const std::size_t end = ix.starts[g];
            if (end == begin) continue;
            sets_of(static_cast<std::uint32_t>(g)).v4[which].add(ix.laid.data() + begin,
                                                                  end - begin);
        }
        std::vector<WidePair>& wide = ix.v6[which];
        std::sort(wide.begin(), wide.end());
        wide.erase(std::unique(wide.begin(), wide.end()), wide.end());
        for (const WidePair& p : wide) {
            roaring64_bitmap_t*& set = sets_of(p.group).v6[which];
            if (set == nullptr) set = roaring64_bitmap_create();
            if (set == nullptr) throw std::bad_alloc();
            roaring64_bitmap_add(set, p.value);
        }
    }
}

std::uint64_t Aggregator::set_size(std::size_t g, int which) const noexcept {
    const Sets* sets = groups_[g].sets;
    if (sets == nullptr || which < 0 || which > 3) return 0;
    if (which < 2) return sets->v4[which].size();
    return sets->v6[which - 2] ? roaring64_bitmap_get_cardinality(sets->v6[which - 2]) : 0;
}

std::string Aggregator::serialized_set(std::size_t g, int which) const {
    const Sets* sets = groups_[g].sets;
    if (sets == nullptr || which < 0 || which > 3) return {};
    std::string out;
    if (which < 2) {
        if (sets->v4[which].empty()) return {};
        out = sets->v4[which].serialized();
    } else {
        const roaring64_bitmap_t* set = sets->v6[which - 2];
        if (set == nullptr) return {};
        out.resize(roaring64_bitmap_portable_size_in_bytes(set));
        roaring64_bitmap_portable_serialize(set, out.data());
    }
    return out;
}


namespace {

struct Free32 {
    void operator()(roaring_bitmap_t* b) const noexcept { roaring_bitmap_free(b); }
};
struct Free64 {
    void operator()(roaring64_bitmap_t* b) const noexcept { roaring64_bitmap_free(b); }
};
using Bitmap32 = std::unique_ptr<roaring_bitmap_t, Free32>;
using Bitmap64 = std::unique_ptr<roaring64_bitmap_t, Free64>;

// A serialized set read back for a union: null unless `len` bytes are
// exactly one valid bitmap (the buffer may come from a pickle, so the
// reads are bounded and the containers validated before use).
Bitmap32 read_set32(const char* p, std::size_t len) {
    if (roaring_bitmap_portable_deserialize_size(p, len) != len) return nullptr;
    Bitmap32 set(roaring_bitmap_portable_deserialize_safe(p, len));
    const char* reason = nullptr;
    if (set && !roaring_bitmap_internal_validate(set.get(), &reason)) set.reset();
    return set;
}

Bitmap64 read_set64(const char* p, std::size_t len) {
    if (roaring64_bitmap_portable_deserialize_size(p, len) != len) return nullptr;
    Bitmap64 set(roaring64_bitmap_portable_deserialize_safe(p, len));
    const char* reason = nullptr;
    if (set && !roaring64_bitmap_internal_validate(set.get(), &reason)) set.reset();
    return set;
}

// The union of many sets whose values together fit a small vector (a
// report rolled up over its day groups: tens of thousands of sets of a few
// dozen addresses) is gathered, sorted and built once; pairwise unions
// would allocate an intermediate bitmap per set, and roaring_bitmap_or_many
// walks the whole growing result for every set (quadratic: 2 s for 43k).
constexpr std::size_t kGatherSets = 16;
constexpr std::uint64_t kGatherValues = 1u << 22;

roaring_bitmap_t* union32(std::vector<const roaring_bitmap_t*>& sets) {
    if (sets.size() <= kGatherSets) return roaring_bitmap_or_many(sets.size(), sets.data());
    std::uint64_t total = 0;
    for (const roaring_bitmap_t* set : sets) total += roaring_bitmap_get_cardinality(set);
    if (total > kGatherValues)
        return roaring_bitmap_or_many_heap(static_cast<std::uint32_t>(sets.size()), sets.data());
    std::vector<std::uint32_t> values(total);
    std::size_t at = 0;
    for (const roaring_bitmap_t* set : sets) {
        roaring_bitmap_to_uint32_array(set, values.data() + at);
        at += roaring_bitmap_get_cardinality(set);
    }
    std::sort(values.begin(), values.end());
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return roaring_bitmap_of_ptr(values.size(), values.data());
}

// Appends the union of `rows`' set `k` to `out`; its size in `*size`, or
// the failing row in `*bad` (returns false).
bool unite_sets(const GroupRows& in, const std::uint32_t* rows, std::size_t count, int k,
                std::string* out, std::uint64_t* size, std::size_t* bad) {
    auto bytes_of = [&](std::uint32_t r, std::size_t* len) {
        const std::int64_t* o = in.offsets + 5 * std::size_t(r) + k;
        *len = static_cast<std::size_t>(o[1] - o[0]);
        return in.buffer + o[0];
    };
    std::size_t len;
    if (k < 2) {
        std::vector<Bitmap32> sets;
        std::vector<const roaring_bitmap_t*> views;
        for (std::size_t j = 0; j < count; ++j) {
            const char* p = bytes_of(rows[j], &len);
            sets.push_back(read_set32(p, len));
            if (!sets.back()) {
                *bad = rows[j];
                return false;
            }
            views.push_back(sets.back().get());
        }
        Bitmap32 all(union32(views));
        if (!all) throw std::bad_alloc();
        const std::size_t at = out->size();
        out->resize(at + roaring_bitmap_portable_size_in_bytes(all.get()));
        roaring_bitmap_portable_serialize(all.get(), out->data() + at);
        *size = roaring_bitmap_get_cardinality(all.get());
    } else {
        Bitmap64 all;
        for (std::size_t j = 0; j < count; ++j) {
            const char* p = bytes_of(rows[j], &len);
            Bitmap64 set = read_set64(p, len);
            if (!set) {
                *bad = rows[j];
                return false;
            }
            if (all)
                roaring64_bitmap_or_inplace(all.get(), set.get());
            else
                all = std::move(set);
        }
        const std::size_t at = out->size();
        out->resize(at + roaring64_bitmap_portable_size_in_bytes(all.get()));
        roaring64_bitmap_portable_serialize(all.get(), out->data() + at);
        *size = roaring64_bitmap_get_cardinality(all.get());
    }
    return true;
}

}  // namespace

BuildStatus merge_groups(const GroupRows& in, MergedGroups* out) {
    const std::size_t n = in.n;
    if (n > 0xfffffffeu) return BuildStatus::failure(0, "more than 2^32 - 2 groups to merge");
    const auto buffer_size = static_cast<std::int64_t>(in.buffer_size);
    for (std::size_t i = 0; i < n; ++i) {
        const std::int64_t* o = in.offsets + 5 * i;
        if (o[0] < 0 || o[4] > buffer_size)
            return BuildStatus::failure(i, "set bounds outside the buffer");
        for (int k = 0; k < 4; ++k)
            if (o[k + 1] < o[k]) return BuildStatus::failure(i, "set bounds out of order");
    }

    // Group ids in the order keys first appear; sums added as they come.
    KeyIndex<GroupKey> index;
    std::vector<std::uint32_t> group_of(n);
    out->first_row.clear();
    out->sums.clear();
    for (std::size_t i = 0; i < n; ++i) {
        GroupKey key;
        key.bucket = in.bucket[i];
        key.tag = GroupKey::label(in.path[i], in.activity[i], in.extra[i]);
        const std::uint32_t g = index.id(key);
        group_of[i] = g;
        if (g == out->first_row.size()) {
            out->first_row.push_back(static_cast<std::uint32_t>(i));
            out->sums.insert(out->sums.end(), 3, 0);
        }
        std::uint64_t* s = &out->sums[3 * std::size_t(g)];
        for (int k = 0; k < 3; ++k)
            if (!add_into(s + k, in.sums[3 * i + k]))
                return BuildStatus::failure(i, "a flow, byte or packet sum passes 2^64 - 1");
    }

    // Rows laid out by group (a counting sort), then each group's sets:
    // none, one row's bytes as they are, or the union of several.
    const std::size_t groups = out->first_row.size();
    std::vector<std::uint32_t> starts(groups + 1, 0), order(n), holders;
    for (std::size_t i = 0; i < n; ++i) ++starts[group_of[i] + 1];
    for (std::size_t g = 0; g < groups; ++g) starts[g + 1] += starts[g];
    {
        std::vector<std::uint32_t> cursor(starts.begin(), starts.end() - 1);
        for (std::size_t i = 0; i < n; ++i)
            order[cursor[group_of[i]]++] = static_cast<std::uint32_t>(i);
    }
    out->sizes.assign(4 * groups, 0);
    out->offsets.assign(5 * groups, 0);
    out->buffer.clear();
    std::size_t bad = 0;
    for (std::size_t g = 0; g < groups; ++g) {
        std::int64_t* o = &out->offsets[5 * g];
        o[0] = static_cast<std::int64_t>(out->buffer.size());
        for (int k = 0; k < 4; ++k) {
            holders.clear();
            for (std::uint32_t j = starts[g]; j < starts[g + 1]; ++j) {
                const std::int64_t* bounds = in.offsets + 5 * std::size_t(order[j]) + k;
                if (bounds[1] > bounds[0]) holders.push_back(order[j]);
            }
            std::uint64_t& size = out->sizes[4 * g + k];
            if (holders.size() == 1) {
                const std::int64_t* bounds = in.offsets + 5 * std::size_t(holders[0]) + k;
                out->buffer.append(in.buffer + bounds[0],
                                   static_cast<std::size_t>(bounds[1] - bounds[0]));
                size = in.sizes[4 * std::size_t(holders[0]) + k];
            } else if (holders.size() > 1 &&
                       !unite_sets(in, holders.data(), holders.size(), k, &out->buffer, &size,
                                   &bad)) {
                return BuildStatus::failure(bad, "a set is not a valid serialized roaring bitmap");
            }
            o[k + 1] = static_cast<std::int64_t>(out->buffer.size());
        }
    }
    return BuildStatus::success();
}

}  // namespace nkclass
