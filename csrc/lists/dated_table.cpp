// Dated interval table (see dated_table.hpp).
#include "nkclass/dated_table.hpp"

#include <numeric>

namespace nkclass {

BuildStatus DatedIntervals::build(const std::uint32_t* key, const std::int64_t* start,
                                  const std::int64_t* end, const std::uint16_t* verdict,
                                  std::size_t n, std::size_t n_keys) {
    if (n_keys >= 0xffffffffull) return BuildStatus::failure(0, "too many keys");
    for (std::size_t i = 0; i < n; ++i) {
        if (key[i] >= n_keys) return BuildStatus::failure(i, "key out of range");
        if (!(start[i] < end[i])) return BuildStatus::failure(i, "empty validity interval");
        if (verdict[i] == 0) return BuildStatus::failure(i, "verdict 0 is reserved");
    }
    // Sort by (key, verdict, start) and merge overlapping or touching
    // intervals of one (key, verdict).
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        if (key[a] != key[b]) return key[a] < key[b];
        if (verdict[a] != verdict[b]) return verdict[a] < verdict[b];
        return start[a] < start[b];
    });
    struct Row {
        std::uint32_t key;
        std::uint16_t verdict;
        std::int64_t start, end;
    };
    std::vector<Row> rows;
    rows.reserve(n);
    for (std::size_t i : order) {
        if (!rows.empty() && rows.back().key == key[i] && rows.back().verdict == verdict[i] &&
            start[i] <= rows.back().end) {
            rows.back().end = std::max(rows.back().end, end[i]);
        } else {
            rows.push_back({key[i], verdict[i], start[i], end[i]});
        }
    }
    std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
        if (a.key != b.key) return a.key < b.key;
        if (a.start != b.start) return a.start < b.start;
        return a.verdict < b.verdict;
    });
    offsets_.assign(n_keys + 1, 0);
    start_.resize(rows.size());
    end_.resize(rows.size());
    reach_.resize(rows.size());
    verdict_.resize(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const Row& r = rows[i];
        ++offsets_[r.key + 1];
        start_[i] = r.start;
        end_[i] = r.end;
        verdict_[i] = r.verdict;
        const bool same_key = i > 0 && rows[i - 1].key == r.key;
        reach_[i] = same_key ? std::max(reach_[i - 1], r.end) : r.end;
    }
    for (std::size_t k = 0; k < n_keys; ++k) offsets_[k + 1] += offsets_[k];
    return BuildStatus::success();
}

}  // namespace nkclass
