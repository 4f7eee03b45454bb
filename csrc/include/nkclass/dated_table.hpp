// Dated lists: address entries that hold only for validity intervals (Tor
// relays, mining pool and VPN endpoints, proxies), matched against a
// flow's start time.
//
// The addresses go into an ordinary PrefixTable whose label is a *key*
// (1-based: label k is key k - 1); this table holds, per key, the intervals
// in which the key's entries are valid and the verdict code each interval
// carries. Time is flow time in ms since the epoch, UTC; an interval
// [start, end) holds for start <= t < end.
//
// Build merges overlapping or touching intervals of the same (key,
// verdict) into one, then orders each key's intervals by start and keeps
// the running maximum of their ends ("reach"), so a query is one binary
// search plus a backward walk over the intervals that can still contain t:
// O(log k + m) for a key of k intervals of which m contain t. Immutable
// after build; queries are thread-safe and allocate nothing.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nkclass/types.hpp"

namespace nkclass {

class DatedIntervals {
public:
    // Rows: key[i] in [0, n_keys), [start[i], end[i]) with start < end,
    // verdict[i] >= 1. Fails naming the row on an empty or reversed
    // interval, a key out of range or a verdict of 0.
    BuildStatus build(const std::uint32_t* key, const std::int64_t* start,
                      const std::int64_t* end, const std::uint16_t* verdict, std::size_t n,
                      std::size_t n_keys);

    std::size_t keys() const noexcept { return offsets_.empty() ? 0 : offsets_.size() - 1; }
    std::size_t intervals() const noexcept { return start_.size(); }

    // Calls f(verdict) for every interval of the key behind prefix label
    // `label` (1-based; 0 or out of range: none) that contains t. Returns
    // the number of calls.
    template <typename F>
    std::size_t for_each_at(label_t label, std::int64_t t, F&& f) const noexcept {
        if (label == kNoLabel || label > keys()) return 0;
        const std::uint32_t lo = offsets_[label - 1], hi = offsets_[label];
        // Last interval starting at or before t; earlier ones may still
        // reach past t while their running maximum end does.
        const std::int64_t* first = start_.data() + lo;
        std::size_t i = static_cast<std::size_t>(
            std::upper_bound(first, start_.data() + hi, t) - start_.data());
        std::size_t found = 0;
        while (i > lo) {
            --i;
            if (reach_[i] <= t) break;
            if (end_[i] > t) {
                f(verdict_[i]);
                ++found;
            }
        }
        return found;
    }

    // The merged rows, key by key in start order (for inspection and tests).
    const std::vector<std::uint32_t>& offsets() const noexcept { return offsets_; }
    const std::vector<std::int64_t>& starts() const noexcept { return start_; }
    const std::vector<std::int64_t>& ends() const noexcept { return end_; }
    const std::vector<std::uint16_t>& verdicts() const noexcept { return verdict_; }

private:
    std::vector<std::uint32_t> offsets_;  // n_keys + 1: key k's intervals are [offsets_[k], offsets_[k+1])
    std::vector<std::int64_t> start_, end_, reach_;
    std::vector<std::uint16_t> verdict_;
};

}  // namespace nkclass
