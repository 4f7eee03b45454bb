// The C interface: the aggregation pass (nkclass/aggregate.hpp) over a
// labelled batch.
#include <string>

#include "capi.hpp"
#include "nkclass/aggregate.hpp"

using nkclass::capi::fail;

struct nk_aggregator {
    explicit nk_aggregator(nkclass::Bucket bucket) : aggregator(bucket) {}
    nkclass::Aggregator aggregator;
};

namespace {

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

// The start (ms) of bucket number `index` (see nkclass::bucket_index).
std::int64_t bucket_start_ms(std::int64_t index, nkclass::Bucket bucket) noexcept {
    constexpr std::int64_t kDay = 86400000;
    switch (bucket) {
        case nkclass::Bucket::kHour: return index * 3600000;
        case nkclass::Bucket::kDay: return index * kDay;
        case nkclass::Bucket::kWeek: return (index * 7 - 3) * kDay;  // week 0 holds Thu 1970-01-01
        case nkclass::Bucket::kMonth: break;
    }
    return days_from_civil(1970 + index / 12, static_cast<unsigned>(index % 12) + 1, 1) * kDay;
}

nk_status address(const std::uint32_t* v4, const std::uint8_t* v6, nkclass::AddressColumn* out,
                  const char* name) {
    if ((v4 == nullptr) == (v6 == nullptr))
        return fail(NK_E_ARGUMENT, std::string("nk_aggregator_add: column '") + name + "': give " +
                                       name + "4 (uint32) or " + name + "6 (16-byte rows), exactly one");
    out->v4 = v4;
    out->v6 = reinterpret_cast<const nkclass::ipv6_net_t*>(v6);
    return NK_OK;
}

}  // namespace

extern "C" {

nk_status nk_aggregator_new(uint32_t bucket, nk_aggregator** out) {
    if (out == nullptr) return fail(NK_E_ARGUMENT, "nk_aggregator_new: out is NULL");
    *out = nullptr;
    if (bucket > NK_BUCKET_MONTH)
        return fail(NK_E_ARGUMENT, "nk_aggregator_new: bucket must be NK_BUCKET_HOUR, _DAY, "
                                   "_WEEK or _MONTH, got " + std::to_string(bucket));
    return nkclass::capi::guarded("nk_aggregator_new", [&] {
        *out = new nk_aggregator(static_cast<nkclass::Bucket>(bucket));
        return NK_OK;
    });
}

void nk_aggregator_free(nk_aggregator* aggregator) { delete aggregator; }

nk_status nk_aggregator_add(nk_aggregator* aggregator, const nk_flow_columns* flows,
                            const nk_labels* labels, const uint32_t* extra) {
    if (aggregator == nullptr || flows == nullptr || labels == nullptr)
        return fail(NK_E_ARGUMENT, "nk_aggregator_add: aggregator, flows and labels must not be NULL");
    nkclass::AggregateBatch b;
    b.n = flows->n;
    if (b.n == 0) return NK_OK;
    const char* missing = !flows->ts_start   ? "ts_start"
                          : !labels->path     ? "path"
                          : !labels->activity ? "activity"
                          : !labels->side     ? "side"
                                              : nullptr;
    if (missing != nullptr)
        return fail(NK_E_ARGUMENT, std::string("nk_aggregator_add: missing column '") + missing +
                                       "'; aggregating needs ts_start, src_ip, dst_ip and the "
                                       "labels path, activity and side");
    if (nk_status s = address(flows->src_ip4, flows->src_ip6, &b.src_ip, "src_ip"); s != NK_OK)
        return s;
    if (nk_status s = address(flows->dst_ip4, flows->dst_ip6, &b.dst_ip, "dst_ip"); s != NK_OK)
        return s;
    for (std::size_t i = 0; i < b.n; ++i)
        if (flows->ts_start[i] < 0)
            return fail(NK_E_ARGUMENT, "nk_aggregator_add: column 'ts_start': row " +
                                           std::to_string(i) + " is before 1970 (" +
                                           std::to_string(flows->ts_start[i]) + " ms)");
    for (std::size_t i = 0; i < b.n; ++i)
        if (labels->side[i] > NK_SIDE_BOTH)
            return fail(NK_E_ARGUMENT, "nk_aggregator_add: column 'side': row " +
                                           std::to_string(i) + " is " +
                                           std::to_string(labels->side[i]) + ", not a side code");
    b.ts_start = flows->ts_start;
    b.path = labels->path;
    b.activity = labels->activity;
    b.side = labels->side;
    b.extra = extra;
    b.bytes = flows->bytes;
    b.packets = flows->packets;
    return nkclass::capi::guarded("nk_aggregator_add", [&] {
        const nkclass::BuildStatus status = aggregator->aggregator.add(b);
        if (!status.ok) return fail(NK_E_CORRUPT, std::string("nk_aggregator_add: ") + status.reason);
        return NK_OK;
    });
}

size_t nk_aggregator_group_count(const nk_aggregator* aggregator) {
    return aggregator ? aggregator->aggregator.group_count() : 0;
}

nk_status nk_aggregator_group(const nk_aggregator* aggregator, size_t index, nk_group* out) {
    if (aggregator == nullptr || out == nullptr)
        return fail(NK_E_ARGUMENT, "nk_aggregator_group: aggregator and out must not be NULL");
    const nkclass::Aggregator& a = aggregator->aggregator;
    if (index >= a.group_count())
        return fail(NK_E_ARGUMENT, "nk_aggregator_group: index " + std::to_string(index) +
                                       " is not below the group count " +
                                       std::to_string(a.group_count()));
    const nkclass::GroupKey& key = a.group_key(index);
    const std::uint64_t* sums = a.group_sums(index);
    out->bucket_start_ms = bucket_start_ms(key.bucket, a.bucket());
    out->path = key.path();
    out->activity = key.activity();
    out->extra = key.extra();
    out->flows = sums[0];
    out->bytes = sums[1];
    out->packets = sums[2];
    out->hosts = a.set_size(index, 0);
    out->peers = a.set_size(index, 1);
    out->hosts6 = a.set_size(index, 2);
    out->peers6 = a.set_size(index, 3);
    return NK_OK;
}

}  // extern "C"
