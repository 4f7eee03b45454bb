// The learned-name cache (see name_cache.hpp): an open-addressing hash
// index (linear probing, backward-shift deletion, at most half full) over
// a slab of entries kept in an intrusive list from least to most recently
// learned, and a pool of interned names (indexed the same way, by the
// text's hash; names without an entry are kept for reuse and freed in bulk).
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

// The hash of a name's text, eight bytes at a time.
std::uint64_t text_hash(const char* p, std::size_t n) noexcept {
    std::uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) h = (h ^ bytes::load8(p + i)) * 0xff51afd7ed558ccdull, h ^= h >> 29;
    if (i < n) {
        std::uint64_t w = 0;
        std::memcpy(&w, p + i, n - i);
        h = (h ^ w) * 0xff51afd7ed558ccdull, h ^= h >> 29;
    }
    return h;
}

}  // namespace

bool NameCache::NameText::assign(const char* name, std::size_t n) noexcept {
    if (n > 0 && name[n - 1] == '.') --n;
    if (n == 0 || n > kMaxName) return false;
    len = n;
    return bytes::copy_name_lower(text, reinterpret_cast<const std::uint8_t*>(name), n);
}

bool NameCache::NameText::operator==(const std::string& held) const noexcept {
    return held.size() == len && std::memcmp(held.data(), text, len) == 0;
}

NameCache::NameCache(std::size_t capacity, std::int64_t grace_ms)
    : capacity_(capacity), grace_ms_(grace_ms) {
    if (capacity == 0 || capacity > kMaxCapacity)
        throw std::invalid_argument("name cache capacity must be 1 .. 2**28");
    if (grace_ms < 0) throw std::invalid_argument("name cache grace must not be negative");
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
    names_.clear();
    name_index_.clear();
    free_names_.clear();
    retired_ = 0;
    newest_time_ = INT64_MIN;
}

std::vector<NameCache::Entry> NameCache::entries() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<Entry> out;
    out.reserve(used_);
    for (std::uint32_t e = oldest_; e != kNil; e = nodes_[e].next) {
        const Node& n = nodes_[e];
        out.push_back({n.key, n.origin, names_[n.name - 1].text, n.first_seen, n.expires});
    }
    return out;
}

void NameCache::merge_from(const NameCache& other) noexcept {
    if (&other == this) return;
    std::scoped_lock lock(mutex_, other.mutex_);
    for (std::uint32_t e = other.oldest_; e != kNil; e = other.nodes_[e].next) {
        const Node& n = other.nodes_[e];
        const std::string& name = other.names_[n.name - 1].text;
        absorb_locked(n.key, name.data(), name.size(), n.first_seen, n.expires, n.origin);
    }
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

std::uint32_t NameCache::find_name(const NameText& text, std::uint64_t hash) const noexcept {
    if (name_index_.empty()) return 0;
    const std::size_t mask = name_index_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
        const std::uint32_t id = name_index_[i];
        if (id == 0) return 0;
        const NameRec& r = names_[id - 1];
        if (r.hash == hash && text == r.text) return id;
    }
}

void NameCache::index_name(std::uint32_t id) noexcept {
    const std::size_t mask = name_index_.size() - 1;
    std::size_t i = names_[id - 1].hash & mask;
    while (name_index_[i] != 0) i = (i + 1) & mask;
    name_index_[i] = id;
}

void NameCache::grow_name_index() {
    std::vector<std::uint32_t> fresh(std::max<std::size_t>(64, name_index_.size() * 2), 0);
    name_index_.swap(fresh);
    index_all_names();
}

void NameCache::index_all_names() noexcept {
    for (std::size_t id = 1; id <= names_.size(); ++id)
        if (!names_[id - 1].text.empty()) index_name(static_cast<std::uint32_t>(id));
}

std::uint32_t NameCache::intern(const NameText& text) {
    const std::uint64_t hash = text_hash(text.text, text.len);
    if (const std::uint32_t id = find_name(text, hash)) {
        if (names_[id - 1].refs++ == 0) --retired_;
        return id;
    }
    // Room first, so nothing can fail once the name is built (and freeing
    // never allocates: the free list has a slot for every id).
    if (free_names_.empty() && names_.size() == names_.capacity()) {
        const std::size_t grown = std::max<std::size_t>(16, names_.capacity() * 2);
        names_.reserve(grown);
        free_names_.reserve(grown);
    }
    const std::size_t interned = names_.size() - free_names_.size();
    if ((interned + 1) * 2 > name_index_.size()) grow_name_index();
    std::string owned(text.text, text.len);
    std::uint32_t id;
    if (!free_names_.empty()) {
        id = free_names_.back();
        free_names_.pop_back();
    } else {
        names_.emplace_back();
        id = static_cast<std::uint32_t>(names_.size());
    }
    names_[id - 1] = NameRec{std::move(owned), hash, 1, 0, DomainMatch{}};
    index_name(id);
    return id;
}

std::uint32_t NameCache::take_name(const NameText& text, std::uint32_t* held) noexcept {
    if (*held == 0) {
        try {
            *held = intern(text);
        } catch (...) {
            ++stats_.refused;
            return 0;
        }
    }
    ++names_[*held - 1].refs;  // never from 0: *held keeps one
    return *held;
}

void NameCache::release(std::uint32_t id) noexcept {
    if (--names_[id - 1].refs != 0) return;
    if (++retired_ > std::max(kMinRetired, used_)) free_retired_names();
}

void NameCache::free_retired_names() noexcept {
    for (std::size_t i = 0; i < names_.size(); ++i) {
        NameRec& r = names_[i];
        if (r.text.empty() || r.refs != 0) continue;
        r = NameRec{};
        free_names_.push_back(static_cast<std::uint32_t>(i + 1));  // within the capacity reserved
    }
    std::fill(name_index_.begin(), name_index_.end(), 0u);
    index_all_names();
    retired_ = 0;
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

std::int64_t NameCache::expiry(std::int64_t t, std::int64_t ttl_ms) const noexcept {
    return saturating_add(saturating_add(t, ttl_ms), grace_ms_);
}

bool NameCache::learn_locked(const NameKey& key, const char* name, std::size_t len,
                             std::int64_t t, std::int64_t ttl_ms, std::uint8_t origin) noexcept {
    if (ttl_ms < 0) {
        ++stats_.refused;
        return false;
    }
    return absorb_locked(key, name, len, t, expiry(t, ttl_ms), origin);
}

std::size_t NameCache::learn_answers_locked(const DnsAnswers& answers, std::int64_t t) noexcept {
    NameText text;
    if (!text.assign(answers.qname, answers.qname_len)) {
        stats_.refused += answers.n;
        return 0;
    }
    std::uint32_t held = 0;
    std::size_t taken = 0;
    for (std::size_t a = 0; a < answers.n; ++a) {
        const u128 v = to_u128(answers.answers[a].address);
        const NameKey key{{static_cast<std::uint64_t>(v >> 64), static_cast<std::uint64_t>(v)}, 0};
        const std::int64_t ttl_ms = std::int64_t(answers.answers[a].ttl) * 1000;
        taken += absorb_text(key, text, &held, t, expiry(t, ttl_ms), kOriginDns);
    }
    if (held != 0) release(held);
    return taken;
}

bool NameCache::absorb_locked(const NameKey& key, const char* name, std::size_t len,
                              std::int64_t first_seen, std::int64_t expires,
                              std::uint8_t origin) noexcept {
    NameText text;
    if (!text.assign(name, len)) {
        ++stats_.refused;
        return false;
    }
    std::uint32_t held = 0;
    const bool taken = absorb_text(key, text, &held, first_seen, expires, origin);
    if (held != 0) release(held);
    return taken;
}

bool NameCache::absorb_text(const NameKey& key, const NameText& text, std::uint32_t* held,
                            std::int64_t first_seen, std::int64_t expires,
                            std::uint8_t origin) noexcept {
    if (first_seen > expires) {
        ++stats_.refused;
        return false;
    }
    newest_time_ = std::max(newest_time_, first_seen);
    const std::uint64_t hash = hash_of(key);
    const std::size_t at = find_slot(key, hash);
    if (at != std::size_t(-1)) {
        const std::uint32_t e = slots_[at].entry - 1;
        Node& n = nodes_[e];
        if (text == names_[n.name - 1].text) {
            n.first_seen = std::min(n.first_seen, first_seen);
            n.expires = std::max(n.expires, expires);
            n.origin = origin;
            ++stats_.refreshed;
        } else if (first_seen >= n.first_seen) {
            const std::uint32_t id = take_name(text, held);
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
    const std::uint32_t id = take_name(text, held);
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
