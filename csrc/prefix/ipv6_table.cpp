// IPv6 interval table and the two-family PrefixTable (see prefix_table.hpp).
//
// Prefixes form a laminar family (two prefixes are nested or disjoint), so a
// sweep over the sorted prefix starts with a stack of open prefixes yields
// the disjoint intervals and their longest covering label in O(n log n).
#include <algorithm>
#include <numeric>

#include "nkclass/prefix_table.hpp"

namespace nkclass {

namespace {

constexpr u128 kAllOnes = ~u128(0);

u128 prefix_mask(unsigned length) {
    return length == 0 ? u128(0) : (kAllOnes << (128 - length));
}

u128 prefix_last(u128 start, unsigned length) {
    return start | ~prefix_mask(length);
}

struct Row {
    u128 start;
    u128 last;
    std::uint8_t length;
    label_t label;
    std::uint32_t input;
};

}  // namespace

std::size_t Ipv6Table::memory_bytes() const noexcept {
    return starts_.size() * sizeof(u128) + labels_.size() * sizeof(label_t) +
           index_.size() * sizeof(std::uint32_t);
}

BuildStatus Ipv6Table::build(const Ipv6Prefix* in, std::size_t n, Duplicates dup) {
    std::vector<Row> rows;
    rows.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        const Ipv6Prefix& r = in[i];
        if (r.length > 128) return BuildStatus::failure(i, "IPv6 prefix length above 128");
        if (r.label == kNoLabel || r.label > kMaxLabel)
            return BuildStatus::failure(i, "label must be between 1 and 2**31-1");
        const u128 start = to_u128(r.network);
        if (start & ~prefix_mask(r.length))
            return BuildStatus::failure(i, "host bits set below the prefix length");
        rows.push_back({start, prefix_last(start, r.length), r.length, r.label,
                        static_cast<std::uint32_t>(i)});
    }
    // Containing prefixes first; equal prefixes in input order.
    std::stable_sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
        if (a.start != b.start) return a.start < b.start;
        return a.length < b.length;
    });
    std::vector<Row> unique;
    unique.reserve(rows.size());
    for (const Row& r : rows) {
        if (!unique.empty() && unique.back().start == r.start && unique.back().length == r.length) {
            if (dup == Duplicates::kError)
                return BuildStatus::failure(std::max(unique.back().input, r.input),
                                            "duplicate prefix");
            // kLastWins: a later input row replaces the earlier one.
            if (r.input > unique.back().input) unique.back() = r;
            continue;
        }
        unique.push_back(r);
    }

    starts_.clear();
    labels_.clear();
    auto emit = [this](u128 start, label_t label) {
        if (!starts_.empty() && starts_.back() == start) {
            labels_.back() = label;
        } else if (!labels_.empty() && labels_.back() == label) {
            return;  // same label continues: no new interval
        } else {
            starts_.push_back(start);
            labels_.push_back(label);
        }
        if (labels_.size() >= 2 && labels_[labels_.size() - 2] == labels_.back()) {
            starts_.pop_back();
            labels_.pop_back();
        }
    };
    emit(0, kNoLabel);
    std::vector<const Row*> open;
    // Close every open prefix that ends before `pos`, resuming the label of
    // whatever encloses it right after its last address.
    auto close_until = [&](u128 pos, bool all) {
        while (!open.empty() && (all || open.back()->last < pos)) {
            const Row* top = open.back();
            open.pop_back();
            if (top->last == kAllOnes) continue;  // nothing after the end of space
            emit(top->last + 1, open.empty() ? kNoLabel : open.back()->label);
        }
    };
    for (const Row& r : unique) {
        close_until(r.start, false);
        emit(r.start, r.label);
        open.push_back(&r);
    }
    close_until(0, true);

    // Direct index on the top bits: about one bucket per interval, at least
    // 2^8 and at most 2^20 buckets (4 MiB).
    index_bits_ = 8;
    while (index_bits_ < 20 && (std::size_t(1) << index_bits_) < starts_.size()) ++index_bits_;
    const std::size_t buckets = std::size_t(1) << index_bits_;
    index_.assign(buckets + 1, 0);
    std::size_t k = 0;
    for (std::size_t b = 0; b < buckets; ++b) {
        const u128 bucket_start = u128(b) << (128 - index_bits_);
        while (k + 1 < starts_.size() && starts_[k + 1] <= bucket_start) ++k;
        index_[b] = static_cast<std::uint32_t>(k);  // interval holding the bucket's first address
    }
    index_[buckets] = static_cast<std::uint32_t>(starts_.size() - 1);
    return BuildStatus::success();
}

label_t Ipv6Table::lookup_u128(u128 key) const noexcept {
    const std::size_t b = static_cast<std::size_t>(key >> (128 - index_bits_));
    std::size_t lo = index_[b];      // starts_[lo] <= key
    std::size_t hi = index_[b + 1];  // the answer is in [lo, hi]
    // Invariant: starts_[lo] <= key; find the last start <= key.
    while (lo < hi) {
        const std::size_t mid = (lo + hi + 1) >> 1;
        if (starts_[mid] <= key) lo = mid; else hi = mid - 1;
    }
    return labels_[lo];
}

void Ipv6Table::lookup(const ipv6_net_t* addrs, std::size_t n, label_t* out) const noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = lookup_u128(to_u128(addrs[i]));
}

BuildStatus PrefixTable::build(const Ipv4Prefix* v4, std::size_t n4, const Ipv6Prefix* v6,
                               std::size_t n6, Duplicates dup, unsigned first_stride) {
    // IPv6 rows inside ::ffff:0:0/96 become IPv4 rows (see the header);
    // `origin` remembers every row's input position for error reports, v4
    // rows first, then v6 rows.
    std::vector<Ipv4Prefix> rows4(v4, v4 + n4);
    std::vector<std::size_t> origin4(n4);
    std::iota(origin4.begin(), origin4.end(), std::size_t(0));
    std::vector<Ipv6Prefix> rows6;
    std::vector<std::size_t> origin6;
    rows6.reserve(n6);
    for (std::size_t i = 0; i < n6; ++i) {
        ipv4_host_t net4;
        if (v6[i].length >= 96 && v6[i].length <= 128 && ipv4_mapped(v6[i].network, &net4)) {
            rows4.push_back({net4, static_cast<std::uint8_t>(v6[i].length - 96), v6[i].label});
            origin4.push_back(n4 + i);
        } else {
            rows6.push_back(v6[i]);
            origin6.push_back(n4 + i);
        }
    }
    BuildStatus s = v4_.build(rows4.data(), rows4.size(), dup, first_stride);
    if (!s.ok) return BuildStatus::failure(origin4[s.index], s.reason);
    s = v6_.build(rows6.data(), rows6.size(), dup);
    if (!s.ok) return BuildStatus::failure(origin6[s.index], s.reason);
    return BuildStatus::success();
}

void PrefixTable::lookup_v6(const ipv6_net_t* addrs, std::size_t n, label_t* out) const noexcept {
    for (std::size_t i = 0; i < n; ++i) out[i] = lookup_one_v6(addrs[i]);
}

}  // namespace nkclass
