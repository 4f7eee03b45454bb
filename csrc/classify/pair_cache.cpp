// The mining pair cache (see pair_cache.hpp): a hash index into an LRU
// list ordered by confirmation.
#include "nkclass/pair_cache.hpp"

#include <new>
#include <stdexcept>

namespace nkclass {

PairCache::PairCache(std::size_t capacity, std::int64_t ttl_ms)
    : capacity_(capacity), ttl_ms_(ttl_ms) {
    if (capacity == 0 || capacity > kMaxPairCacheCapacity)
        throw std::invalid_argument("pair cache capacity must be between 1 and 2**30");
    if (ttl_ms < 0) throw std::invalid_argument("pair cache ttl must not be negative");
}

void PairCache::confirm(const PairKey& key, std::int64_t t) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    confirm_locked(key, t);
}

bool PairCache::live(const PairKey& key, std::int64_t t) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return live_locked(key, t);
}

std::size_t PairCache::size() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return index_.size();
}

std::uint64_t PairCache::evictions() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return evictions_;
}

void PairCache::clear() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    index_.clear();
    order_.clear();
}

std::vector<PairCache::Entry> PairCache::entries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return std::vector<Entry>(order_.rbegin(), order_.rend());
}

void PairCache::confirm_locked(const PairKey& key, std::int64_t t) noexcept {
    auto found = index_.find(key);
    if (found != index_.end()) {
        auto it = found->second;
        if (t > it->confirmed_at) it->confirmed_at = t;
        order_.splice(order_.begin(), order_, it);
        return;
    }
    try {
        if (index_.size() >= capacity_) {
            index_.erase(order_.back().key);
            order_.pop_back();
            ++evictions_;
        }
        order_.push_front(Entry{key, t});
        try {
            index_.emplace(key, order_.begin());
        } catch (...) {
            order_.pop_front();
        }
    } catch (...) {
        // Out of memory: the confirmation is dropped (documented).
    }
}

bool PairCache::live_locked(const PairKey& key, std::int64_t t) noexcept {
    auto found = index_.find(key);
    if (found == index_.end()) return false;
    const std::int64_t at = found->second->confirmed_at;
    // t <= at + ttl without overflow.
    if (t <= at || static_cast<std::uint64_t>(t) - static_cast<std::uint64_t>(at) <=
                       static_cast<std::uint64_t>(ttl_ms_))
        return true;
    order_.erase(found->second);
    index_.erase(found);
    return false;
}

}  // namespace nkclass
