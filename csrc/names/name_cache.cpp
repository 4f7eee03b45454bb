// The learned-name cache (see name_cache.hpp): an open-addressing hash
// index (linear probing, backward-shift deletion, at most half full) over
// a slab of entries kept in an intrusive list from least to most recently
// learned, and a pool of interned names.
#include "nkclass/name_cache.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>
#include <stdexcept>

#include "nkclass/bytes.hpp"
#include "nkclass/detectors.hpp"

namespace nkclass {

namespace {

std::int64_t saturating_add(std::int64_t a, std::int64_t b) noexcept {
    std::int64_t out;
    if (__builtin_add_overflow(a, b, &out))
        return b > 0 ? std::numeric_limits<std::int64_t>::max()
                     : std::numeric_limits<std::int64_t>::min();
    return out;
}

// A name as the cache keeps it: lowercased, without a trailing dot, in a
// buffer of its own (most learns refresh a name already held, so the text
// is compared before any string is built).
struct Normalised {
    char text[kMaxName];
    std::size_t len = 0;

    // False when `name` is not 1..kMaxName bytes of 0x21..0x7e.
    bool assign(const char* name, std::size_t n) noexcept {
        if (n > 0 && name[n - 1] == '.') --n;
        if (n == 0 || n > kMaxName) return false;
        len = n;
        return bytes::copy_name_lower(text, reinterpret_cast<const std::uint8_t*>(name), n);
    }
    bool operator==(const std::string& held) const noexcept {
        return held.size() == len && std::memcmp(held.data(), text, len) == 0;
    }
    std::string str() const { return std::string(text, len); }
};

}  // namespace

NameCache::NameCache(std::size_t capacity, std::int64_t grace_ms)
    : capacity_(capacity), grace_ms_(grace_ms) {
    if (capacity == 0 || capacity > kMaxCapacity)
        throw std::invalid_argument("name cache capacity must be 1 .. 2**28");
    if (grace_ms < 0) throw std::invalid_argument("name cache grace must not be negative");
}

std::uint64_t NameCache::hash_of(const NameKey& k) noexcept {
    std::uint64_t h = k.address.lo * 0x9e3779b97f4a7c15ull;
    h ^= (k.address.hi + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull;
    h ^= (h >> 31) ^ (std::uint64_t(k.port) * 0x94d049bb133111ebull);
    h *= 0xff51afd7ed558ccdull;
    return h ^ (h >> 33);
}

std::size_t NameCache::size() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return used_;
}

NameCache::Stats NameCache::stats() const noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
}

void NameCache::clear() noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    slots_.clear();
    mask_ = 0;
    filter_.clear();
    nodes_.clear();
    free_nodes_.clear();
    oldest_ = newest_ = kNil;
    used_ = 0;
    name_ids_.clear();
    names_.clear();
    free_names_.clear();
    newest_time_ = INT64_MIN;
}

std::vector<NameCache::Entry> NameCache::entries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Entry> out;
    out.reserve(used_);
    for (std::uint32_t e = oldest_; e != kNil; e = nodes_[e].next) {
        const Node& n = nodes_[e];
        out.push_back({n.key, n.origin, *names_[n.name - 1].text, n.first_seen, n.expires});
    }
    return out;
}

void NameCache::merge_from(const NameCache& other) noexcept {
    if (&other == this) return;
    std::scoped_lock lock(mutex_, other.mutex_);
    for (std::uint32_t e = other.oldest_; e != kNil; e = other.nodes_[e].next) {
        const Node& n = other.nodes_[e];
        const std::string& name = *other.names_[n.name - 1].text;
        absorb_locked(n.key, name.data(), name.size(), n.first_seen, n.expires, n.origin);
    }
}

std::size_t NameCache::find_slot(const NameKey& key, std::uint64_t hash) const noexcept {
    if (slots_.empty()) return std::size_t(-1);
    const std::uint32_t h32 = static_cast<std::uint32_t>(hash);
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
        const Slot& s = slots_[i];
        if (s.entry == 0) return std::size_t(-1);
        if (s.hash == h32 && nodes_[s.entry - 1].key == key) return i;
    }
}

std::uint32_t NameCache::find_locked(const NameKey& key, std::uint64_t hash,
                                     std::int64_t t) const noexcept {
    const std::size_t i = find_slot(key, hash);
    if (i == std::size_t(-1)) return 0;
    const std::uint32_t e = slots_[i].entry;
    const Node& n = nodes_[e - 1];
    return (n.first_seen <= t && t <= n.expires) ? e : 0;
}

void NameCache::erase_slot(std::size_t i) noexcept {
    // Backward-shift deletion keeps every probe chain unbroken.
    std::size_t j = i;
    while (true) {
        j = (j + 1) & mask_;
        if (slots_[j].entry == 0) break;
        const std::size_t home = slots_[j].hash & mask_;
        const bool between = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!between) {
            slots_[i] = slots_[j];
            i = j;
        }
    }
    slots_[i] = Slot{};
}

bool NameCache::grow_slots() noexcept {
    std::size_t want = slots_.empty() ? 64 : slots_.size() * 2;
    std::vector<Slot> fresh;
    std::vector<std::uint64_t> filter;
    try {
        fresh.assign(want, Slot{});
        filter.assign(want * kFilterBitsPerSlot / 64, 0);
    } catch (const std::bad_alloc&) {
        return false;
    }
    const std::size_t mask = want - 1;
    for (std::uint32_t e = oldest_; e != kNil; e = nodes_[e].next) {
        const std::uint64_t h = hash_of(nodes_[e].key);
        std::size_t i = h & mask;
        while (fresh[i].entry != 0) i = (i + 1) & mask;
        fresh[i] = {static_cast<std::uint32_t>(h), e + 1};
    }
    slots_.swap(fresh);
    mask_ = mask;
    filter_.swap(filter);
    filter_shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(want * kFilterBitsPerSlot));
    for (std::uint32_t e = oldest_; e != kNil; e = nodes_[e].next) mark_filter(nodes_[e].key.address);
    return true;
}

void NameCache::unlink(std::uint32_t e) noexcept {
    Node& n = nodes_[e];
    (n.prev != kNil ? nodes_[n.prev].next : oldest_) = n.next;
    (n.next != kNil ? nodes_[n.next].prev : newest_) = n.prev;
    n.prev = n.next = kNil;
}

void NameCache::link_newest(std::uint32_t e) noexcept {
    Node& n = nodes_[e];
    n.prev = newest_;
    n.next = kNil;
    (newest_ != kNil ? nodes_[newest_].next : oldest_) = e;
    newest_ = e;
}

std::uint32_t NameCache::intern(const std::string& name) {
    auto found = name_ids_.find(name);
    if (found != name_ids_.end()) {
        ++names_[found->second - 1].refs;
        return found->second;
    }
    // Room first, so nothing can fail once the name is in the index (and
    // release() never allocates: the free list has a slot for every id).
    if (free_names_.empty() && names_.size() == names_.capacity()) {
        const std::size_t grown = std::max<std::size_t>(16, names_.capacity() * 2);
        names_.reserve(grown);
        free_names_.reserve(grown);
    }
    auto it = name_ids_.emplace(name, 0).first;
    std::uint32_t id;
    if (!free_names_.empty()) {
        id = free_names_.back();
        free_names_.pop_back();
    } else {
        names_.emplace_back();
        id = static_cast<std::uint32_t>(names_.size());
    }
    it->second = id;
    names_[id - 1] = NameRec{&it->first, 1, 0, DomainMatch{}};
    return id;
}

std::uint32_t NameCache::intern_or_refuse(const char* name, std::size_t len) noexcept {
    try {
        return intern(std::string(name, len));
    } catch (...) {
        ++stats_.refused;
        return 0;
    }
}

void NameCache::release(std::uint32_t id) noexcept {
    NameRec& r = names_[id - 1];
    if (--r.refs != 0) return;
    const std::string* text = r.text;
    r = NameRec{};
    free_names_.push_back(id);  // within the capacity reserved in intern()
    name_ids_.erase(*text);
}

void NameCache::evict_oldest() noexcept {
    const std::uint32_t e = oldest_;
    Node& n = nodes_[e];
    erase_slot(find_slot(n.key, hash_of(n.key)));
    unlink(e);
    ++(n.expires < newest_time_ ? stats_.expired : stats_.evicted);
    release(n.name);
    n.name = 0;
    free_nodes_.push_back(e);  // within the capacity reserved with nodes_
    --used_;
}

bool NameCache::learn_locked(const NameKey& key, const char* name, std::size_t len,
                             std::int64_t t, std::int64_t ttl_ms, std::uint8_t origin) noexcept {
    if (ttl_ms < 0) {
        ++stats_.refused;
        return false;
    }
    return absorb_locked(key, name, len, t, saturating_add(saturating_add(t, ttl_ms), grace_ms_),
                         origin);
}

bool NameCache::absorb_locked(const NameKey& key, const char* name, std::size_t len,
                              std::int64_t first_seen, std::int64_t expires,
                              std::uint8_t origin) noexcept {
    Normalised text;
    if (first_seen > expires || !text.assign(name, len)) {
        ++stats_.refused;
        return false;
    }
    newest_time_ = std::max(newest_time_, first_seen);
    const std::uint64_t hash = hash_of(key);
    const std::size_t at = find_slot(key, hash);
    if (at != std::size_t(-1)) {
        const std::uint32_t e = slots_[at].entry - 1;
        Node& n = nodes_[e];
        if (text == *names_[n.name - 1].text) {
            n.first_seen = std::min(n.first_seen, first_seen);
            n.expires = std::max(n.expires, expires);
            n.origin = origin;
            ++stats_.refreshed;
        } else if (first_seen >= n.first_seen) {
            const std::uint32_t id = intern_or_refuse(text.text, text.len);
            if (id == 0) return false;
            release(n.name);
            n.name = id;
            n.first_seen = first_seen;
            n.expires = expires;
            n.origin = origin;
            ++stats_.replaced;
        } else {
            ++stats_.stale;
            return true;
        }
        unlink(e);
        link_newest(e);
        return true;
    }

    if (used_ == capacity_) evict_oldest();
    if ((used_ + 1) * 2 > slots_.size() && !grow_slots()) {
        ++stats_.refused;
        return false;
    }
    const std::uint32_t id = intern_or_refuse(text.text, text.len);
    if (id == 0) return false;
    std::uint32_t e;
    if (!free_nodes_.empty()) {
        e = free_nodes_.back();
        free_nodes_.pop_back();
    } else {
        try {
            if (nodes_.size() == nodes_.capacity()) {
                const std::size_t grown = std::min(
                    capacity_, std::max<std::size_t>(16, nodes_.capacity() * 2));
                nodes_.reserve(grown);
                free_nodes_.reserve(grown);
            }
            nodes_.emplace_back();
        } catch (const std::bad_alloc&) {
            release(id);
            ++stats_.refused;
            return false;
        }
        e = static_cast<std::uint32_t>(nodes_.size() - 1);
    }
    Node& n = nodes_[e];
    n.key = key;
    n.name = id;
    n.origin = origin;
    n.first_seen = first_seen;
    n.expires = expires;
    std::size_t i = hash & mask_;
    while (slots_[i].entry != 0) i = (i + 1) & mask_;
    slots_[i] = {static_cast<std::uint32_t>(hash), e + 1};
    mark_filter(key.address);
    link_newest(e);
    ++used_;
    ++stats_.learned;
    return true;
}

DomainMatch NameCache::match_locked(std::uint32_t handle, std::uint64_t tag,
                                    const DomainTable& domains) noexcept {
    NameRec& r = names_[nodes_[handle - 1].name - 1];
    if (r.tag != tag) {
        r.match = domains.lookup(r.text->data(), r.text->size());
        r.tag = tag;
    }
    return r.match;
}

std::uint32_t NameDictionary::code(const char* name, std::size_t len) noexcept {
    try {
        auto [it, added] = index_.try_emplace(std::string(name, len), 0);
        if (added) {
            try {
                names_.emplace_back(it->first);
            } catch (...) {
                index_.erase(it);
                throw;
            }
            it->second = static_cast<std::uint32_t>(names_.size());
        }
        return it->second;
    } catch (const std::bad_alloc&) {
        failed_ = true;
        return 0;
    }
}

}  // namespace nkclass
