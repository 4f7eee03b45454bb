// Aggregation of classified flows: one native pass per batch into groups
// keyed by (time bucket, path, activity, extra), with flow, byte and packet
// sums and the distinct watched hosts and outside peers as roaring bitmaps,
// plus hour-of-day and weekday profiles per (path, activity) and the flows
// and bytes per upstream AS per (bucket, path).
//
// Addresses: an IPv4 address (or an IPv4-mapped IPv6 one) goes into a
// 32-bit bitmap as its host-order value; a proper IPv6 address counts by
// its /64 (the high 64 bits, network order read big-endian) in a 64-bit
// bitmap. Only flows that touch a watched path (side != none) add
// addresses: the watched host is the watched side's address (the source
// when both are watched), the peer the other endpoint.
//
// Errors: add() checks every sum for 64-bit overflow before it changes
// anything, so a failed batch leaves the aggregator as it was. Not
// thread-safe: one Aggregator per thread, merge the results.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nkclass/classifier.hpp"

namespace nkclass {

enum class Bucket : std::uint8_t { kHour, kDay, kWeek, kMonth };

// Bucket number since 1970 of a time in ms since the epoch (UTC, >= 0):
// hours, days, ISO weeks (Monday first; week 0 holds 1970-01-01) or
// calendar months.
std::int64_t bucket_index(std::int64_t ts_ms, Bucket bucket) noexcept;

// One classified batch. Required: ts_start, path, activity, side and both
// address columns; the rest are optional (nullptr): extra (the app or
// service code when the report is "by" one), bytes and packets (0), and
// src_as/dst_as (both, for the upstream table).
struct AggregateBatch {
    std::size_t n = 0;
    const std::int64_t* ts_start = nullptr;  // ms since the epoch, >= 0
    const std::uint16_t* path = nullptr;     // path code; 0 = none
    const std::uint8_t* activity = nullptr;
    const std::uint32_t* extra = nullptr;
    const std::uint8_t* side = nullptr;      // Side codes
    AddressColumn src_ip, dst_ip;
    const std::uint64_t* bytes = nullptr;
    const std::uint64_t* packets = nullptr;
    const std::uint32_t* src_as = nullptr;
    const std::uint32_t* dst_as = nullptr;
};

struct GroupKey {
    std::int64_t bucket = 0;
    std::uint64_t tag = 0;  // extra << 24 | path << 8 | activity (see label())
    static std::uint64_t label(std::uint16_t path, std::uint8_t activity,
                               std::uint32_t extra) noexcept {
        return std::uint64_t(extra) << 24 | std::uint64_t(path) << 8 | activity;
    }
    std::uint16_t path() const noexcept { return static_cast<std::uint16_t>(tag >> 8); }
    std::uint8_t activity() const noexcept { return static_cast<std::uint8_t>(tag); }
    std::uint32_t extra() const noexcept { return static_cast<std::uint32_t>(tag >> 24); }
    bool operator==(const GroupKey& o) const noexcept {
        return bucket == o.bucket && tag == o.tag;
    }
};

struct ProfileKey {
    std::uint16_t path = 0;
    std::uint8_t activity = 0;
    bool operator==(const ProfileKey& o) const noexcept {
        return path == o.path && activity == o.activity;
    }
};

struct UpstreamKey {
    std::int64_t bucket = 0;
    std::uint32_t asn = 0;
    std::uint16_t path = 0;
    bool operator==(const UpstreamKey& o) const noexcept {
        return bucket == o.bucket && asn == o.asn && path == o.path;
    }
};

// Flows and bytes by hour of day (UTC) and by weekday (Monday = 0), as
// 62 counters: hour flows [0, 24), hour bytes [24, 48), weekday flows
// [48, 55), weekday bytes [55, 62).
struct Profile {
    static constexpr std::size_t kHourFlows = 0, kHourBytes = 24, kWeekdayFlows = 48,
                                 kWeekdayBytes = 55, kCounters = 62;
    std::uint64_t v[kCounters] = {};
};

struct Sums {
    std::uint64_t flows = 0, bytes = 0;
};

class Aggregator {
public:
    explicit Aggregator(Bucket bucket);
    ~Aggregator();
    Aggregator(const Aggregator&) = delete;
    Aggregator& operator=(const Aggregator&) = delete;

    // Adds a batch. Fails (adding nothing) when a sum would pass 2^64 - 1;
    // the status names the group kind. May throw std::bad_alloc.
    BuildStatus add(const AggregateBatch& batch);

    Bucket bucket() const noexcept { return bucket_; }

    std::size_t group_count() const noexcept { return groups_.size(); }
    const GroupKey& group_key(std::size_t g) const noexcept { return groups_[g].key; }
    // flows, bytes, packets of group g.
    const std::uint64_t* group_sums(std::size_t g) const noexcept { return groups_[g].sums; }
    // Whether group g has any address set (flows on a watched path).
    bool has_sets(std::size_t g) const noexcept { return groups_[g].sets != nullptr; }
    // The group's sets in the portable roaring formats (32-bit, then 64-bit
    // for /64s); an empty string when the group has no such set.
    // which: 0 hosts, 1 peers, 2 hosts /64, 3 peers /64.
    std::string serialized_set(std::size_t g, int which) const;
    // The number of elements of that set (0 when it has none).
    std::uint64_t set_size(std::size_t g, int which) const noexcept;

    std::size_t profile_count() const noexcept { return profile_keys_.size(); }
    const ProfileKey& profile_key(std::size_t p) const noexcept { return profile_keys_[p]; }
    const Profile& profile(std::size_t p) const noexcept { return profiles_[p]; }

    std::size_t upstream_count() const noexcept { return upstream_keys_.size(); }
    const UpstreamKey& upstream_key(std::size_t u) const noexcept { return upstream_keys_[u]; }
    const Sums& upstream(std::size_t u) const noexcept { return upstreams_[u]; }

    // First and last flow start added (ms); -1 while empty.
    std::int64_t first_ms() const noexcept { return first_ms_; }
    std::int64_t last_ms() const noexcept { return last_ms_; }

    struct Index;  // lookup tables and per-batch scratch

private:
    struct Sets;
    struct GroupRecord {
        GroupKey key;
        std::uint64_t sums[3] = {0, 0, 0};
        Sets* sets = nullptr;  // created on the first address
    };
    // The batch's address pairs into the groups' sets (add()'s last step).
    void add_to_sets(const std::size_t pairs[2]);

    Bucket bucket_;
    std::vector<GroupRecord> groups_;
    std::vector<ProfileKey> profile_keys_;
    std::vector<Profile> profiles_;
    std::vector<UpstreamKey> upstream_keys_;
    std::vector<Sums> upstreams_;
    std::unique_ptr<Index> index_;
    std::int64_t first_ms_ = -1, last_ms_ = -1;
};

// Groups in column form, as an Aggregator hands them over (or several
// such reports' groups one after another): row i has the key (bucket[i],
// path[i], activity[i], extra[i]) (bucket is any int64, e.g. a bucket start
// in ms; the label codes must mean the same names in every row), its sums
// (flows, bytes, packets) at sums[3i..3i+3), its distinct counts
// |hosts|, |peers|, |hosts /64|, |peers /64| at sizes[4i..4i+4), and its
// sets at buffer[offsets[5i + k], offsets[5i + k + 1]) for k = 0..3: the
// 32-bit portable roaring format for hosts and peers, the 64-bit portable
// format for the /64s, empty when the group has no such set.
struct GroupRows {
    std::size_t n = 0;
    const std::int64_t* bucket = nullptr;
    const std::uint16_t* path = nullptr;
    const std::uint8_t* activity = nullptr;
    const std::uint32_t* extra = nullptr;
    const std::uint64_t* sums = nullptr;     // (n, 3)
    const std::uint64_t* sizes = nullptr;    // (n, 4)
    const std::int64_t* offsets = nullptr;   // (n, 5), into buffer
    const char* buffer = nullptr;
    std::size_t buffer_size = 0;
};

// merge_groups' result: one row per distinct key, in the order the keys
// first appear in the input, laid out as GroupRows' sums, sizes, offsets
// and buffer (offsets into `buffer`).
struct MergedGroups {
    std::vector<std::uint32_t> first_row;  // the first input row with the group's key
    std::vector<std::uint64_t> sums;       // (groups, 3)
    std::vector<std::uint64_t> sizes;      // (groups, 4)
    std::vector<std::int64_t> offsets;     // (groups, 5)
    std::string buffer;
};

// Merges the rows that share a key: sums add, sets unite (CRoaring), and
// the distinct counts are those of the unions. A set that only one row of
// its group has is copied as it is, with its count. Fails (status index =
// the input row) when a row's set bounds leave the buffer or run backwards,
// when a set to unite is not a valid serialized bitmap of exactly its
// bytes, or when a sum would pass 2^64 - 1; `out` is then unspecified.
// O(n + bytes of the sets united); may throw std::bad_alloc. Thread-safe
// (no shared state).
BuildStatus merge_groups(const GroupRows& rows, MergedGroups* out);

}  // namespace nkclass
