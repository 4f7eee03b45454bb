// Domain suffix matcher (see domains.hpp).
//
// Why hash the name backwards: the suffixes worth probing end where the name
// ends, so one right-to-left FNV-1a pass yields, at every label boundary,
// exactly the hash the builder computed for that suffix. No per-lookup
// copy or lowercase buffer is needed.
#include "nkclass/domains.hpp"

#include "nkclass/vocab.hpp"

namespace nkclass {

namespace {

constexpr std::uint64_t kFnvOffset = 0xcbf29ce484222325ull;
constexpr std::uint64_t kFnvPrime = 0x100000001b3ull;
constexpr std::size_t kMaxLabels = 128;  // a 253-byte name has at most 127 labels

inline unsigned char lower(unsigned char c) noexcept {
    return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + 32) : c;
}

inline std::uint64_t step(std::uint64_t h, unsigned char c) noexcept {
    return (h ^ lower(c)) * kFnvPrime;
}

inline std::uint64_t finish(std::uint64_t h) noexcept {
    h ^= h >> 29;
    return h ? h : 1;
}

std::uint64_t suffix_hash(const char* s, std::size_t len) noexcept {
    std::uint64_t h = kFnvOffset;
    for (std::size_t i = len; i-- > 0;) h = step(h, static_cast<unsigned char>(s[i]));
    return finish(h);
}

bool equal_lower(const char* name, const char* suffix, std::size_t len) noexcept {
    for (std::size_t i = 0; i < len; ++i)
        if (lower(static_cast<unsigned char>(name[i])) != static_cast<unsigned char>(suffix[i]))
            return false;
    return true;
}

}  // namespace

BuildStatus DomainTable::build(const std::vector<std::string>& suffixes,
                               const std::uint32_t* services, const std::uint8_t* activities) {
    const std::size_t n = suffixes.size();
    std::size_t cap = 16;
    while (cap < 2 * n + 16) cap <<= 1;
    std::vector<Slot> slots(cap);
    std::string text;
    const std::uint64_t mask = cap - 1;
    for (std::size_t i = 0; i < n; ++i) {
        std::string s = suffixes[i];
        if (!s.empty() && s.back() == '.') s.pop_back();
        if (s.empty()) return BuildStatus::failure(i, "empty domain suffix");
        if (s.size() > 253) return BuildStatus::failure(i, "domain suffix longer than 253 bytes");
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
            ch = static_cast<char>(lower(c));
            prev = ch;
        }
        const std::uint64_t h = suffix_hash(s.data(), s.size());
        std::uint64_t pos = h & mask;
        while (slots[pos].hash != 0) {
            const Slot& o = slots[pos];
            if (o.hash == h && o.length == s.size() &&
                text.compare(o.offset, o.length, s) == 0)
                return BuildStatus::failure(i, "duplicate domain suffix");
            pos = (pos + 1) & mask;
        }
        Slot& slot = slots[pos];
        slot.hash = h;
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

DomainMatch DomainTable::lookup(const char* name, std::size_t len) const noexcept {
    if (n_rows_ == 0 || name == nullptr) return {};
    if (len > 0 && name[len - 1] == '.') --len;
    if (len == 0 || len > 253) return {};
    // Hashes of the label-boundary suffixes, shortest first.
    std::uint64_t hashes[kMaxLabels];
    std::size_t starts[kMaxLabels];
    std::size_t count = 0;
    std::uint64_t h = kFnvOffset;
    for (std::size_t i = len; i-- > 0;) {
        h = step(h, static_cast<unsigned char>(name[i]));
        if ((i == 0 || name[i - 1] == '.') && count < kMaxLabels) {
            hashes[count] = finish(h);
            starts[count] = i;
            ++count;
        }
    }
    const Slot* slots = slots_.data();
    const char* text = text_.data();
    for (std::size_t k = count; k-- > 0;) {  // longest first
        const std::uint64_t hk = hashes[k];
        const std::size_t slen = len - starts[k];
        for (std::uint64_t pos = hk & mask_; slots[pos].hash != 0; pos = (pos + 1) & mask_) {
            const Slot& s = slots[pos];
            if (s.hash == hk && s.length == slen && equal_lower(name + starts[k], text + s.offset, slen))
                return {s.service, s.activity};
        }
    }
    return {};
}

}  // namespace nkclass
