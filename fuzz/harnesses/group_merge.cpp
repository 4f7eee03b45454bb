// Fuzzes merge_groups, which reads serialized roaring sets from report
// pickles: no read outside the buffer, a refusal only for a damaged set or
// a sum past 2^64 - 1, and on success the sums and the united sets of each
// group equal a std::set / plain-sum reference.
//
// Input layout: u8 rows (1 + v % 8); per row: u8 key (three buckets, two
// paths, two extras, so rows often share a key), u8 bytes (255 stands for
// 2^64 - 1, so two such rows overflow), then four sets (hosts, peers,
// hosts /64, peers /64), each: u8 mode (% 4: 0 none, 1 raw bytes (u8
// length, bytes), 2 a valid set (u8 count, count u16 values), 3 a valid set
// with one byte xored (as 2, then u8 position, u8 mask)).
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "../../csrc/third_party/croaring/roaring.h"
#include "fuzz_input.hpp"
#include "nkclass/aggregate.hpp"

namespace {

enum Mode { kNone, kRaw, kValid, kDamaged };

struct Row {
    std::int64_t bucket;
    std::uint16_t path;
    std::uint8_t activity = 0;
    std::uint32_t extra;
    std::uint64_t sums[3];
    std::uint64_t sizes[4] = {0, 0, 0, 0};
    Mode mode[4];
    std::set<std::uint64_t> values[4];
};

std::string serialize(const std::set<std::uint64_t>& values, bool wide) {
    std::string out;
    if (!wide) {
        roaring_bitmap_t* b = roaring_bitmap_create();
        for (std::uint64_t v : values) roaring_bitmap_add(b, static_cast<std::uint32_t>(v));
        roaring_bitmap_run_optimize(b);
        out.resize(roaring_bitmap_portable_size_in_bytes(b));
        roaring_bitmap_portable_serialize(b, out.data());
        roaring_bitmap_free(b);
    } else {
        roaring64_bitmap_t* b = roaring64_bitmap_create();
        for (std::uint64_t v : values) roaring64_bitmap_add(b, v);
        out.resize(roaring64_bitmap_portable_size_in_bytes(b));
        roaring64_bitmap_portable_serialize(b, out.data());
        roaring64_bitmap_free(b);
    }
    return out;
}

// The set at [p, p + n) as values, or false when it does not read back.
bool read_back(const char* p, std::size_t n, bool wide, std::set<std::uint64_t>* out) {
    const char* reason = nullptr;
    if (!wide) {
        roaring_bitmap_t* b = roaring_bitmap_portable_deserialize_safe(p, n);
        if (b == nullptr) return false;
        const bool ok = roaring_bitmap_internal_validate(b, &reason);
        roaring_uint32_iterator_t* it = roaring_iterator_create(b);
        while (ok && it->has_value) {
            out->insert(it->current_value);
            roaring_uint32_iterator_advance(it);
        }
        roaring_uint32_iterator_free(it);
        roaring_bitmap_free(b);
        return ok;
    }
    roaring64_bitmap_t* b = roaring64_bitmap_portable_deserialize_safe(p, n);
    if (b == nullptr) return false;
    const bool ok = roaring64_bitmap_internal_validate(b, &reason);
    roaring64_iterator_t* it = roaring64_iterator_create(b);
    while (ok && roaring64_iterator_has_value(it)) {
        out->insert(roaring64_iterator_value(it));
        roaring64_iterator_advance(it);
    }
    roaring64_iterator_free(it);
    roaring64_bitmap_free(b);
    return ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::size_t n = 1 + in.u8() % 8;
    std::vector<Row> rows(n);
    std::string buffer;
    std::vector<std::int64_t> offsets;
    for (Row& row : rows) {
        const std::uint8_t key = in.u8();
        row.bucket = key % 3;
        row.path = (key >> 2) & 1;
        row.extra = (key >> 3) & 1;
        const std::uint8_t bytes = in.u8();
        row.sums[0] = 1;
        row.sums[1] = bytes == 255 ? ~std::uint64_t{0} : bytes;
        row.sums[2] = 0;
        offsets.push_back(static_cast<std::int64_t>(buffer.size()));
        for (int k = 0; k < 4; ++k) {
            const bool wide = k >= 2;
            row.mode[k] = static_cast<Mode>(in.u8() % 4);
            if (row.mode[k] == kRaw) {
                std::size_t len = in.u8();
                const std::uint8_t* p = in.take(&len);
                buffer.append(reinterpret_cast<const char*>(p), len);
            } else if (row.mode[k] != kNone) {
                const std::size_t count = in.u8();
                for (std::size_t j = 0; j < count; ++j) {
                    const std::uint64_t v = in.u16();
                    row.values[k].insert(wide ? v << 40 | (v & 7) : v * 37 % 200000);
                }
                std::string set = serialize(row.values[k], wide);
                row.sizes[k] = row.values[k].size();
                if (row.mode[k] == kDamaged && !set.empty()) {
                    const std::size_t at = in.u8() % set.size();
                    set[at] = static_cast<char>(set[at] ^ in.u8());
                }
                buffer += set;
            }
            offsets.push_back(static_cast<std::int64_t>(buffer.size()));
        }
    }

    std::vector<std::int64_t> bucket;
    std::vector<std::uint16_t> path;
    std::vector<std::uint8_t> activity;
    std::vector<std::uint32_t> extra;
    std::vector<std::uint64_t> sums, sizes;
    for (const Row& row : rows) {
        bucket.push_back(row.bucket);
        path.push_back(row.path);
        activity.push_back(row.activity);
        extra.push_back(row.extra);
        sums.insert(sums.end(), row.sums, row.sums + 3);
        sizes.insert(sizes.end(), row.sizes, row.sizes + 4);
    }
    auto block = fuzz::exact_copy(reinterpret_cast<const std::uint8_t*>(buffer.data()),
                                  buffer.size());
    nkclass::GroupRows input;
    input.n = n;
    input.bucket = bucket.data();
    input.path = path.data();
    input.activity = activity.data();
    input.extra = extra.data();
    input.sums = sums.data();
    input.sizes = sizes.data();
    input.offsets = offsets.data();
    input.buffer = reinterpret_cast<const char*>(block.get());
    input.buffer_size = buffer.size();
    nkclass::MergedGroups out;
    const nkclass::BuildStatus status = nkclass::merge_groups(input, &out);

    // The reference: each row's group (by first row with its key), sums
    // with overflow, and the union of the sets where every holder is valid.
    std::vector<std::size_t> group_of(n);
    std::vector<std::size_t> firsts;
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t g = 0;
        while (g < firsts.size() &&
               !(rows[firsts[g]].bucket == rows[i].bucket && rows[firsts[g]].path == rows[i].path &&
                 rows[firsts[g]].extra == rows[i].extra))
            ++g;
        if (g == firsts.size()) firsts.push_back(i);
        group_of[i] = g;
    }
    bool overflow = false, damaged = false;
    std::vector<std::uint64_t> want_sums(3 * firsts.size(), 0);
    for (std::size_t i = 0; i < n; ++i)
        for (int k = 0; k < 3; ++k)
            overflow |= __builtin_add_overflow(want_sums[3 * group_of[i] + k], rows[i].sums[k],
                                               &want_sums[3 * group_of[i] + k]);
    for (std::size_t g = 0; g < firsts.size(); ++g)
        for (int k = 0; k < 4; ++k) {
            int holders = 0;
            bool bad = false;
            for (std::size_t i = 0; i < n; ++i)
                if (group_of[i] == g && rows[i].mode[k] != kNone &&
                    offsets[5 * i + k + 1] > offsets[5 * i + k]) {
                    ++holders;
                    bad |= rows[i].mode[k] == kRaw || rows[i].mode[k] == kDamaged;
                }
            damaged |= holders > 1 && bad;
        }
    if (!status.ok) {
        fuzz::check(status.index < n, "a refusal names an input row");
        fuzz::check(overflow || damaged, "only an overflow or a damaged set is refused");
        return 0;
    }
    fuzz::check(!overflow, "an overflowing sum is refused");
    fuzz::check(out.first_row.size() == firsts.size(), "one group per distinct key");
    fuzz::check(out.offsets.size() == 5 * firsts.size() && out.sizes.size() == 4 * firsts.size(),
                "offsets and sizes per group");
    for (std::size_t g = 0; g < firsts.size(); ++g) {
        fuzz::check(out.first_row[g] == firsts[g], "groups in first-appearance order");
        for (int k = 0; k < 3; ++k)
            fuzz::check(out.sums[3 * g + k] == want_sums[3 * g + k], "sums add up");
        for (int k = 0; k < 4; ++k) {
            const std::int64_t a = out.offsets[5 * g + k], b = out.offsets[5 * g + k + 1];
            fuzz::check(0 <= a && a <= b && b <= static_cast<std::int64_t>(out.buffer.size()),
                        "output bounds inside the output buffer");
            std::set<std::uint64_t> want;
            bool all_valid = true;
            int holders = 0;
            for (std::size_t i = 0; i < n; ++i)
                if (group_of[i] == g && offsets[5 * i + k + 1] > offsets[5 * i + k]) {
                    ++holders;
                    all_valid &= rows[i].mode[k] == kValid;
                    want.insert(rows[i].values[k].begin(), rows[i].values[k].end());
                }
            fuzz::check((holders == 0) == (a == b), "a set exactly where a row had one");
            if (holders == 0 || !all_valid) continue;
            std::set<std::uint64_t> got;
            fuzz::check(read_back(out.buffer.data() + a, static_cast<std::size_t>(b - a), k >= 2,
                                  &got),
                        "a united set reads back");
            fuzz::check(got == want, "the set is the union of the rows' sets");
            fuzz::check(out.sizes[4 * g + k] == want.size(), "the size is the union's");
        }
    }
    return 0;
}
