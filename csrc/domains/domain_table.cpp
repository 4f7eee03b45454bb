// Domain suffix matcher (see domains.hpp).
//
// Why a walk from the right: almost every name in traffic shares at most
// its last label or two with the table, so the lookup hashes one label at a
// time from the end and stops at the first suffix that no rule ends with.
// The builder stores every label-boundary suffix of every rule (interior
// entries, hash only) besides the rules themselves, so "no entry" at some
// suffix proves no longer suffix can match. A random name costs two or
// three probes and hashing only the labels probed; the longest rule seen on
// the walk is confirmed by a byte compare, so hash collisions cannot give a
// wrong answer, only an extra probe.
//
// Labels are hashed eight bytes at a time, lowercased in the word (SWAR),
// so the per-byte work is a few ALU operations instead of a multiply chain.
#include "nkclass/domains.hpp"

#include <cstring>

#include "nkclass/bytes.hpp"
#include "nkclass/vocab.hpp"

namespace nkclass {

namespace {

constexpr std::uint64_t kSeed = 0x243f6a8885a308d3ull;
constexpr std::uint64_t kMul = 0x9e3779b97f4a7c15ull;
constexpr std::size_t kMaxName = 253;
constexpr std::uint8_t kRule = 1;      // the suffix is a rule (text, service, activity)
constexpr std::uint8_t kInterior = 2;  // some longer rule ends with this suffix

inline unsigned char lower(unsigned char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + 32) : c;
}

inline std::uint64_t mix(std::uint64_t h, std::uint64_t w) noexcept {
    h = (h ^ w) * kMul;
    return h ^ (h >> 29);
}

// Hash of one label, lowercased. `p` must have 8 readable bytes past the
// label's end (the lookup copies names into a padded buffer).
inline std::uint64_t label_hash(const unsigned char* p, std::size_t n) noexcept {
    std::uint64_t h = mix(kSeed, n);
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        h = mix(h, bytes::lower8(bytes::load8(p + i)));
    }
    if (i < n) {
        std::uint64_t w = bytes::load8(p + i);
        // Keep the label's bytes only: the first n - i in memory order.
        const unsigned shift = 8u * static_cast<unsigned>(8 - (n - i));
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w &= ~0ull << shift;
#else
        w &= ~0ull >> shift;
#endif
        h = mix(h, bytes::lower8(w));
    }
    return h;
}

// The hash of a suffix extended by one more label on its left.
inline std::uint64_t extend(std::uint64_t suffix, std::uint64_t label) noexcept {
    const std::uint64_t h = mix(suffix, label);
    return h ? h : 1;  // 0 marks an empty slot
}

bool equal_lower(const unsigned char* name, const char* suffix, std::size_t len) noexcept {
    for (std::size_t i = 0; i < len; ++i)
        if (lower(name[i]) != static_cast<unsigned char>(suffix[i])) return false;
    return true;
}

// Where the label ending at p[end] starts: after the last '.' before
// `end`, or at 0. Looks eight bytes at a time from the end, since the walk
// from the last label is the lookup's common case.
std::size_t label_start(const unsigned char* p, std::size_t end) noexcept {
    std::size_t at = end;
    for (; at >= 8; at -= 8) {
        const std::uint64_t dots = bytes::eq_bytes8(bytes::load8(p + at - 8), '.');
        if (dots != 0) return at - 8 + bytes::last_flagged_byte(dots) + 1;
    }
    while (at > 0 && p[at - 1] != '.') --at;
    return at;
}

// A name copied into a buffer with 8 bytes of slack, so labels can be
// read a word at a time without reading outside the caller's bytes.
struct Padded {
    unsigned char bytes[kMaxName + DomainTable::kLookupSlack];
    std::size_t len;
    Padded(const char* s, std::size_t n) noexcept : len(n) {
        std::memcpy(bytes, s, n);
        std::memset(bytes + n, 0, DomainTable::kLookupSlack);
    }
};

}  // namespace

void DomainTable::add_interior(std::vector<Slot>& slots, std::uint64_t h) noexcept {
    const std::uint64_t mask = slots.size() - 1;
    std::uint64_t pos = h & mask;
    for (; slots[pos].hash != 0; pos = (pos + 1) & mask) {
        if (slots[pos].hash == h) {
            slots[pos].kind |= kInterior;
            return;
        }
    }
    slots[pos].hash = h;
    slots[pos].kind = kInterior;
}

BuildStatus DomainTable::build(const std::vector<std::string>& suffixes,
                               const std::uint32_t* services, const std::uint8_t* activities) {
    const std::size_t n = suffixes.size();
    std::vector<std::string> rows(n);
    std::size_t labels = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::string s = suffixes[i];
        if (!s.empty() && s.back() == '.') s.pop_back();
        if (s.empty()) return BuildStatus::failure(i, "empty domain suffix");
        if (s.size() > kMaxName) return BuildStatus::failure(i, "domain suffix longer than 253 bytes");
        if (activities[i] >= kActivityCount)
            return BuildStatus::failure(i, "activity code outside the vocabulary");
        if (services[i] == 0) return BuildStatus::failure(i, "service code 0 is reserved for no match");
        char prev = '.';
        for (char& ch : s) {
            const auto c = static_cast<unsigned char>(ch);
            if (c <= 0x20 || c >= 0x7f)
                return BuildStatus::failure(i, "domain suffix has a byte outside printable ASCII");
            if (ch == '.' && prev == '.')
                return BuildStatus::failure(i, "domain suffix has an empty label");
            if (ch == '.') ++labels;
            ch = static_cast<char>(lower(c));
            prev = ch;
        }
        ++labels;
        rows[i] = std::move(s);
    }
    std::size_t cap = 16;
    while (cap < 2 * labels + 16) cap <<= 1;
    std::vector<Slot> slots(cap);
    std::string text;
    const std::uint64_t mask = cap - 1;
    for (std::size_t i = 0; i < n; ++i) {
        const std::string& s = rows[i];
        const Padded name(s.data(), s.size());
        // Interior entries for every proper suffix, then the rule itself.
        std::uint64_t h = kSeed;
        std::size_t end = s.size();
        while (true) {
            std::size_t start = end;
            while (start > 0 && s[start - 1] != '.') --start;
            h = extend(h, label_hash(name.bytes + start, end - start));
            if (start == 0) break;
            add_interior(slots, h);
            end = start - 1;
        }
        // The rule takes over an interior entry of its own suffix; a rule
        // of the same text is a duplicate; another rule with an equal hash
        // (a 64-bit collision) keeps its slot and this one probes on.
        std::uint64_t pos = h & mask;
        for (; slots[pos].hash != 0; pos = (pos + 1) & mask) {
            const Slot& o = slots[pos];
            if (o.hash != h) continue;
            if (!(o.kind & kRule)) break;
            if (o.length == s.size() && text.compare(o.offset, o.length, s) == 0)
                return BuildStatus::failure(i, "duplicate domain suffix");
        }
        Slot& slot = slots[pos];
        slot.hash = h;
        slot.kind |= kRule;
        slot.offset = static_cast<std::uint32_t>(text.size());
        slot.length = static_cast<std::uint16_t>(s.size());
        slot.service = services[i];
        slot.activity = activities[i];
        text += s;
    }
    slots_ = std::move(slots);
    text_ = std::move(text);
    mask_ = mask;
    n_rows_ = n;
    return BuildStatus::success();
}

// The name's length without a trailing dot, or 0 when nothing can match it.
std::size_t DomainTable::matchable_length(const char* name, std::size_t len) const noexcept {
    if (n_rows_ == 0 || name == nullptr) return 0;
    if (len > 0 && name[len - 1] == '.') --len;
    return len <= kMaxName ? len : 0;
}

DomainMatch DomainTable::lookup(const char* name, std::size_t len) const noexcept {
    len = matchable_length(name, len);
    if (len == 0) return {};
    const Padded p(name, len);
    return match(p.bytes, len);
}

DomainMatch DomainTable::lookup_padded(const char* name, std::size_t len) const noexcept {
    len = matchable_length(name, len);
    if (len == 0) return {};
    return match(reinterpret_cast<const unsigned char*>(name), len);
}

// The walk itself, over a name with kLookupSlack readable bytes past `len`.
DomainMatch DomainTable::match(const unsigned char* name, std::size_t len) const noexcept {
    const Slot* slots = slots_.data();
    const char* text = text_.data();
    const Slot* best = nullptr;
    std::uint64_t h = kSeed;
    std::size_t end = len;
    while (true) {
        const std::size_t start = label_start(name, end);
        h = extend(h, label_hash(name + start, end - start));
        const std::size_t slen = len - start;
        bool deeper = false;
        for (std::uint64_t pos = h & mask_; slots[pos].hash != 0; pos = (pos + 1) & mask_) {
            const Slot& s = slots[pos];
            if (s.hash != h) continue;
            if (s.kind & kInterior) deeper = true;
            if ((s.kind & kRule) && s.length == slen &&
                equal_lower(name + start, text + s.offset, slen)) {
                best = &s;
                break;
            }
        }
        if (!deeper || start == 0) break;
        end = start - 1;
    }
    return best ? DomainMatch{best->service, best->activity} : DomainMatch{};
}

}  // namespace nkclass
