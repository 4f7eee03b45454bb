// Domain suffix matcher: server name -> (service code, activity code).
//
// Build once from rows (suffix, service, activity), then look up without
// failure. A suffix matches a name when it equals the name or ends it at a
// label boundary: "fbcdn.net" matches "fbcdn.net" and "a.fbcdn.net", never
// "notfbcdn.net". The longest matching suffix wins. Comparison is ASCII
// case-insensitive and a trailing dot on the name is ignored.
//
// Structure: one open-addressing hash table keyed by 64-bit hashes of
// label-boundary suffixes, built label by label from the right. Besides the
// rules it holds an "interior" entry for every proper suffix of a rule, so
// a lookup walks the name's labels from the last one and stops at the
// first suffix no rule ends with; the longest rule met on the walk is
// confirmed by a byte compare. Cost O(labels probed), usually two or three
// probes into a table of ~24 bytes per suffix; no allocation. Immutable
// after build(); lookups are thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nkclass/types.hpp"

namespace nkclass {

struct DomainMatch {
    std::uint32_t service = 0;  // 0 = no match (the sentinel)
    std::uint8_t activity = 0;
};

class DomainTable {
public:
    // Rows: suffixes[i] -> (services[i], activities[i]). A suffix is stored
    // lowercased without a trailing dot. Fails (naming the row) on an empty
    // suffix, one longer than 253 bytes, an empty label ("a..b", leading
    // dot), a byte outside the printable ASCII range, a service code of 0,
    // or a suffix that equals an earlier row's after normalisation.
    BuildStatus build(const std::vector<std::string>& suffixes, const std::uint32_t* services,
                      const std::uint8_t* activities);

    // The longest matching suffix's row data, or {0, 0}.
    DomainMatch lookup(const char* name, std::size_t len) const noexcept;

    // The same for a name followed by at least kLookupSlack readable bytes
    // (any values), which labels are read through a word at a time. lookup()
    // copies the name into such a buffer; the detectors' names already sit
    // in one, and the copy's stores stalled the loads right after them.
    static constexpr std::size_t kLookupSlack = 8;
    DomainMatch lookup_padded(const char* name, std::size_t len) const noexcept;

    std::size_t size() const noexcept { return n_rows_; }

private:
    struct Slot {
        std::uint64_t hash = 0;    // 0 = empty slot (real hashes are never 0)
        std::uint32_t service = 0;
        std::uint32_t offset = 0;  // into text_ (rules only)
        std::uint16_t length = 0;
        std::uint8_t activity = 0;
        std::uint8_t kind = 0;     // bit 0: a rule; bit 1: a longer rule ends with it
    };
    static void add_interior(std::vector<Slot>& slots, std::uint64_t h) noexcept;
    std::size_t matchable_length(const char* name, std::size_t len) const noexcept;
    DomainMatch match(const unsigned char* name, std::size_t len) const noexcept;
    std::vector<Slot> slots_;
    std::string text_;  // the normalised suffixes, back to back
    std::uint64_t mask_ = 0;
    std::size_t n_rows_ = 0;
};

}  // namespace nkclass
