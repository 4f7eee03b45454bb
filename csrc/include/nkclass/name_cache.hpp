// Names learned on the wire: address (and port) -> server name, with the
// time the mapping was seen and how long it holds, so that later flow
// records to that address can be named through the domain rules without
// payload of their own.
//
// Sources: DNS answers (an A/AAAA record of the question's name: key
// (address, port 0), which matches any port) and the TLS SNI or HTTP Host
// of an earlier flow (key (server address, server port)). A lookup tries
// (address, port) first, then (address, 0).
//
// Time is flow time in ms since the epoch. A mapping learned at t with TTL
// `ttl_ms` holds for flows starting in [first_seen, expires] where
// first_seen = t and expires = t + ttl_ms + grace_ms. Learning the same
// name again for a key widens that interval; learning another name
// replaces the entry when it is at least as recent (first_seen >= the
// entry's), and is ignored ("stale") otherwise. Addresses are kept in
// their 16-byte form (IPv4 as ::ffff:a.b.c.d).
//
// Memory is bounded: at most `capacity` entries; learning a new key when
// full evicts the least recently learned entry (counted as "expired" when
// its interval had ended before the newest time learned so far, else as
// "evicted"). Names are interned. A name whose last entry went stays
// interned (with its domain match) until more such names have gathered
// than there are entries (at least kMinRetired), and then all of them are
// freed: an address that answers for many names (a CDN's) changes name
// with every answer, and each change is then a lookup instead of a free
// and an allocation.
//
// Thread-safety: the public methods that do not end in _locked lock the
// cache's mutex; the classifier's pass holds mutex() around a whole batch
// and calls the *_locked methods. Nothing throws except the constructor
// and entries(); when memory runs out a learn is refused and counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "nkclass/detectors.hpp"  // kMaxName
#include "nkclass/dns_answers.hpp"
#include "nkclass/domains.hpp"
#include "nkclass/pair_cache.hpp"

namespace nkclass {

// Where a learned name came from.
enum NameOrigin : std::uint8_t { kOriginNone = 0, kOriginDns = 1, kOriginSni = 2, kOriginHost = 3 };

struct NameKey {
    AddressWords address;
    std::uint16_t port = 0;  // 0: any port (a DNS answer)
    bool operator==(const NameKey& o) const noexcept {
        return address == o.address && port == o.port;
    }
};

inline NameKey name_key(const AddressColumn& col, std::size_t i, std::uint16_t port) noexcept {
    return {address_words(col, i), port};
}

class NameCache {
public:
    static constexpr std::size_t kMaxCapacity = std::size_t{1} << 28;

    struct Stats {
        std::uint64_t learned = 0;    // new keys
        std::uint64_t refreshed = 0;  // the same name again (interval widened)
        std::uint64_t replaced = 0;   // another, more recent name for a key
        std::uint64_t stale = 0;      // another, older name for a key (ignored)
        std::uint64_t evicted = 0;    // dropped for room while still live
        std::uint64_t expired = 0;    // dropped for room after their interval
        std::uint64_t refused = 0;    // names that are not names, or no memory
    };

    // One entry, as entries() lists them.
    struct Entry {
        NameKey key;
        std::uint8_t origin;
        std::string name;
        std::int64_t first_seen, expires;  // ms
    };

    // 1 <= capacity <= kMaxCapacity; grace_ms >= 0. Throws
    // std::invalid_argument otherwise.
    NameCache(std::size_t capacity, std::int64_t grace_ms);

    std::size_t capacity() const noexcept { return capacity_; }
    std::int64_t grace_ms() const noexcept { return grace_ms_; }
    std::size_t size() const noexcept;
    Stats stats() const noexcept;
    void clear() noexcept;
    // Entries from least to most recently learned: absorbing them in this
    // order into an empty cache rebuilds it.
    std::vector<Entry> entries() const;
    // Takes every entry of `other` (least recent first) as absorb() does.
    void merge_from(const NameCache& other) noexcept;

    std::mutex& mutex() const noexcept { return mutex_; }

    // Learns key -> name at t (ms) for ttl_ms >= 0. `name` must be 1 ..
    // kMaxName bytes of 0x21..0x7e; it is lowercased and a trailing dot
    // dropped. Returns false (and counts it) when refused.
    bool learn_locked(const NameKey& key, const char* name, std::size_t len, std::int64_t t,
                      std::int64_t ttl_ms, std::uint8_t origin) noexcept;
    // Takes an entry with its interval as given (first_seen <= expires).
    bool absorb_locked(const NameKey& key, const char* name, std::size_t len,
                       std::int64_t first_seen, std::int64_t expires,
                       std::uint8_t origin) noexcept;
    // Learns the answers of one DNS response at t: each address (any port)
    // -> the question's name, for the answer's TTL. The name is checked and
    // interned once. Returns how many were taken.
    std::size_t learn_answers_locked(const DnsAnswers& answers, std::int64_t t) noexcept;
    bool learn(const NameKey& key, const char* name, std::size_t len, std::int64_t t,
               std::int64_t ttl_ms, std::uint8_t origin) noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        return learn_locked(key, name, len, t, ttl_ms, origin);
    }

    // The hashes of (address, port) and (address, any port) that
    // lookup_locked uses; prefetch(h) and, some time later,
    // prefetch_entry(h) for both hide the memory latency of a batch.
    struct Hashes {
        std::uint64_t port, any;
    };
    static Hashes hashes_of(const AddressWords& address, std::uint16_t port) noexcept {
        const std::uint64_t base = address_hash(address);
        return {finish_hash(base, port), finish_hash(base, 0)};
    }
    static std::uint64_t hash_of(const NameKey& key) noexcept {
        return finish_hash(address_hash(key.address), key.port);
    }
    void prefetch(std::uint64_t hash) const noexcept {
        if (!slots_.empty()) __builtin_prefetch(&slots_[hash & mask_]);
    }
    // The entry of the slot `hash` starts at: call some time after
    // prefetch(hash), when the slot has likely arrived.
    void prefetch_entry(std::uint64_t hash) const noexcept {
        if (slots_.empty()) return;
        const std::uint32_t e = slots_[hash & mask_].entry;
        if (e != 0) __builtin_prefetch(&nodes_[e - 1]);
    }
    // True while the index and entries are small enough to stay in the
    // second-level cache beside a batch's columns, where prefetching them
    // costs more than it hides.
    bool cached_locked() const noexcept {
        return slots_.size() * sizeof(Slot) + nodes_.size() * sizeof(Node) <= (std::size_t{1} << 17);
    }
    // A handle (>= 1) on the entry live for `key` at t, or 0. Handles stay
    // valid until the next learn or absorb.
    std::uint32_t find_locked(const NameKey& key, std::uint64_t hash, std::int64_t t) const noexcept {
        const std::size_t i = find_slot(key, hash);
        if (i == std::size_t(-1)) return 0;
        const std::uint32_t e = slots_[i].entry;
        const Node& n = nodes_[e - 1];
        return (n.first_seen <= t && t <= n.expires) ? e : 0;
    }
    // The entry live at t for (address, port), else for (address, any
    // port): what names a flow to that server. `hashes` is
    // hashes_of(address, port).
    std::uint32_t lookup_locked(const AddressWords& address, std::uint16_t port,
                                const Hashes& hashes, std::int64_t t) const noexcept {
        std::uint32_t handle = port != 0 ? find_locked({address, port}, hashes.port, t) : 0;
        if (handle == 0) handle = find_locked({address, 0}, hashes.any, t);
        return handle;
    }
    // False when no entry has this address (on any port), so both probes
    // of a lookup can be skipped; true may be a false positive. Most flows'
    // peers have no learned name, and this test is one bit in a summary
    // small enough to stay in the first-level caches.
    bool may_hold_locked(const AddressWords& address) const noexcept {
        if (filter_.empty()) return false;
        const std::uint64_t bit = filter_bit(address);
        return (filter_[bit >> 6] >> (bit & 63)) & 1u;
    }
    const std::string& name_locked(std::uint32_t handle) const noexcept {
        return names_[nodes_[handle - 1].name - 1].text;
    }
    std::uint8_t origin_locked(std::uint32_t handle) const noexcept {
        return nodes_[handle - 1].origin;
    }
    // The domain-table match of the entry's name, remembered per name and
    // `tag` (one tag per classifier, so a cache shared by classifiers stays
    // correct).
    DomainMatch match_locked(std::uint32_t handle, std::uint64_t tag,
                             const DomainTable& domains) noexcept {
        NameRec& r = names_[nodes_[handle - 1].name - 1];
        if (r.tag != tag) {
            r.match = domains.lookup(r.text.data(), r.text.size());
            r.tag = tag;
        }
        return r.match;
    }
    std::size_t size_locked() const noexcept { return used_; }

private:
    static constexpr std::uint32_t kNil = 0xffffffffu;
    struct Slot {
        std::uint32_t hash = 0;   // low 32 bits of the key's hash
        std::uint32_t entry = 0;  // entry index + 1; 0 = empty
    };
    struct Node {
        NameKey key;
        std::uint32_t name = 0;  // name id
        std::uint32_t prev = kNil, next = kNil;
        std::uint8_t origin = 0;
        std::int64_t first_seen = 0, expires = 0;
    };
    struct NameRec {
        std::string text;  // empty: a free id
        std::uint64_t hash = 0;
        std::uint32_t refs = 0;
        std::uint64_t tag = 0;
        DomainMatch match;
    };
    // A name as the cache keeps it: lowercased, without a trailing dot, in
    // a buffer of its own (most learns refresh a name already held, so the
    // text is compared before any string is built).
    struct NameText {
        char text[kMaxName];
        std::size_t len = 0;
        bool assign(const char* name, std::size_t n) noexcept;  // false: not a name
        bool operator==(const std::string& held) const noexcept;
    };

    static std::uint64_t address_hash(const AddressWords& a) noexcept {
        const std::uint64_t h = a.lo * 0x9e3779b97f4a7c15ull;
        return h ^ ((a.hi + 0x632be59bd9b4e019ull) * 0xbf58476d1ce4e5b9ull);
    }
    static std::uint64_t finish_hash(std::uint64_t h, std::uint16_t port) noexcept {
        h ^= (h >> 31) ^ (std::uint64_t(port) * 0x94d049bb133111ebull);
        h *= 0xff51afd7ed558ccdull;
        return h ^ (h >> 33);
    }
    std::size_t find_slot(const NameKey& key, std::uint64_t hash) const noexcept {  // or npos
        if (slots_.empty()) return std::size_t(-1);
        const std::uint32_t h32 = static_cast<std::uint32_t>(hash);
        for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
            const Slot& s = slots_[i];
            if (s.entry == 0) return std::size_t(-1);
            if (s.hash == h32 && nodes_[s.entry - 1].key == key) return i;
        }
    }
    // The address summary: kFilterBitsPerSlot bits per index slot, a bit
    // set for each address learned. Evictions leave their bits (a stale bit
    // costs a probe, never a wrong answer); growing the index rebuilds it.
    static constexpr std::size_t kFilterBitsPerSlot = 8;
    std::uint64_t filter_bit(const AddressWords& a) const noexcept {
        return ((a.lo ^ (a.hi * 0xc2b2ae3d27d4eb4full)) * 0x9e3779b97f4a7c15ull) >> filter_shift_;
    }
    void mark_filter(const AddressWords& a) noexcept {
        const std::uint64_t bit = filter_bit(a);
        filter_[bit >> 6] |= std::uint64_t{1} << (bit & 63);
    }
    void erase_slot(std::size_t i) noexcept;
    bool grow_slots() noexcept;
    void unlink(std::uint32_t e) noexcept;
    void link_newest(std::uint32_t e) noexcept;
    std::int64_t expiry(std::int64_t t, std::int64_t ttl_ms) const noexcept;
    bool absorb_text(const NameKey& key, const NameText& text, std::uint32_t* held,
                     std::int64_t first_seen, std::int64_t expires, std::uint8_t origin) noexcept;
    // The id of `text` with one more reference, interned on first use into
    // *held (which keeps a reference of its own until the caller releases
    // it), or 0 (counted as refused) when memory runs out.
    std::uint32_t take_name(const NameText& text, std::uint32_t* held) noexcept;
    std::uint32_t intern(const NameText& text);  // may throw bad_alloc
    std::uint32_t find_name(const NameText& text, std::uint64_t hash) const noexcept;  // or 0
    void index_name(std::uint32_t id) noexcept;  // within the room grow_name_index() made
    void grow_name_index();                      // may throw bad_alloc
    void index_all_names() noexcept;             // into an emptied index, within its room
    void release(std::uint32_t id) noexcept;
    void free_retired_names() noexcept;  // every name without an entry
    void evict_oldest() noexcept;
    static constexpr std::size_t kMinRetired = 4096;

    std::size_t capacity_;
    std::int64_t grace_ms_;
    mutable std::mutex mutex_;
    std::vector<Slot> slots_;  // power-of-two size, at most half full
    std::size_t mask_ = 0;
    std::vector<std::uint64_t> filter_;  // slots_.size() * kFilterBitsPerSlot bits
    unsigned filter_shift_ = 63;         // 64 - log2(filter bits)
    std::vector<Node> nodes_;
    std::vector<std::uint32_t> free_nodes_;
    std::uint32_t oldest_ = kNil, newest_ = kNil;
    std::size_t used_ = 0;
    std::vector<NameRec> names_;
    // Open addressing over the interned names' ids (0 = empty), by their
    // text's hash; at most half full.
    std::vector<std::uint32_t> name_index_;
    std::vector<std::uint32_t> free_names_;
    std::size_t retired_ = 0;  // interned names without an entry
    std::int64_t newest_time_ = INT64_MIN;
    Stats stats_;
};

// The names of one pass's name outputs (NameColumns), interned: code
// i + 1 is names()[i].
class NameDictionary {
public:
    // The code of `name` (>= 1), or 0 when memory ran out (failed() then
    // says so).
    std::uint32_t code(const char* name, std::size_t len) noexcept;
    const std::vector<std::string>& names() const noexcept { return names_; }
    bool failed() const noexcept { return failed_; }

private:
    std::unordered_map<std::string, std::uint32_t> index_;
    std::vector<std::string> names_;
    bool failed_ = false;
};

}  // namespace nkclass
