// The mining pair cache ("host twins", after nDPI's mining_cache; DOMAIN.md
// sections 3.2 and 6.5): once a (client, server) pair is confirmed mining by
// payload, later flows between them inherit mining until the entry expires.
//
// Keys are (client, server) = (src_ip, dst_ip) of the confirming flow, in
// that direction only: the reverse direction is a different pair (a pool
// does not open connections to its miners). Addresses are kept in their
// 16-byte IPv6 form (IPv4 as ::ffff:a.b.c.d), so batches with uint32 and
// 16-byte address columns share entries.
//
// Time is flow time in ms since the epoch (a flow's ts_end), not wall time:
// an entry confirmed at t is live for flows with time <= t + ttl_ms
// (earlier flows included); a lookup that finds it expired removes it. A
// confirmation of a known pair moves its time forward (never back).
//
// Memory is bounded: at most `capacity` entries (at most kMaxPairCacheCapacity),
// about 140 bytes each (a list node, a hash node and a bucket); confirming a
// new pair when full evicts the least recently confirmed one.
//
// Thread-safety: every public method locks the cache's mutex. The *_locked
// methods are for the classifier's pass, which holds mutex() around a whole
// batch. None of the methods throws except the constructor and entries();
// if memory runs out, confirm() drops the confirmation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "nkclass/classifier.hpp"
#include "nkclass/types.hpp"

namespace nkclass {

struct PairKey {
    AddressWords client, server;
    bool operator==(const PairKey& o) const noexcept {
        return client == o.client && server == o.server;
    }
};

inline PairKey pair_key(const AddressColumn& src, const AddressColumn& dst, std::size_t i) noexcept {
    return {address_words(src, i), address_words(dst, i)};
}

struct PairKeyHash {
    std::size_t operator()(const PairKey& k) const noexcept {
        std::uint64_t h = k.client.lo * 0x9e3779b97f4a7c15ull;
        h ^= (k.client.hi + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
        h ^= (h >> 29) ^ (k.server.lo * 0x94d049bb133111ebull);
        h ^= (k.server.hi + 0x2545f4914f6cdd1dull) * 0x9e3779b97f4a7c15ull;
        return static_cast<std::size_t>(h ^ (h >> 32));
    }
};

inline constexpr std::size_t kMaxPairCacheCapacity = std::size_t(1) << 30;

class PairCache {
public:
    struct Entry {
        PairKey key;
        std::int64_t confirmed_at;  // ms, flow time
    };

    // 1 <= capacity <= kMaxPairCacheCapacity entries; ttl_ms >= 0. Throws
    // std::invalid_argument otherwise.
    PairCache(std::size_t capacity, std::int64_t ttl_ms);

    std::size_t capacity() const noexcept { return capacity_; }
    std::int64_t ttl_ms() const noexcept { return ttl_ms_; }

    void confirm(const PairKey& key, std::int64_t t) noexcept;
    bool live(const PairKey& key, std::int64_t t) noexcept;
    std::size_t size() const noexcept;
    std::uint64_t evictions() const noexcept;  // since construction
    void clear() noexcept;
    // Entries from least to most recently confirmed (restoring them with
    // confirm() in this order rebuilds the cache).
    std::vector<Entry> entries() const;

    // For a caller holding mutex() (the classifier's pass).
    std::mutex& mutex() const noexcept { return mutex_; }
    void confirm_locked(const PairKey& key, std::int64_t t) noexcept;
    bool live_locked(const PairKey& key, std::int64_t t) noexcept;

private:
    std::size_t capacity_;
    std::int64_t ttl_ms_;
    std::uint64_t evictions_ = 0;
    mutable std::mutex mutex_;
    std::list<Entry> order_;  // front: most recently confirmed
    std::unordered_map<PairKey, std::list<Entry>::iterator, PairKeyHash> index_;
};

}  // namespace nkclass
