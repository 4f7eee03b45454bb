// The C interface: nk_classify over column pointers, and the pass both
// classify entry points share (scratch for columns the caller did not ask
// for, exporter AS numbers to AS entries, the peer's AS number and
// organisation from its entry).
#include <string>
#include <vector>

#include "capi.hpp"

using nkclass::capi::fail;

namespace nkclass::capi {

namespace {

// A caller column, or scratch of n values when it is NULL.
template <typename T>
T* column_or_scratch(T* given, std::vector<T>& scratch, std::size_t n) {
    if (given != nullptr) return given;
    scratch.resize(n);
    return scratch.data();
}

// Exporter AS numbers as AS entry ids (0: none; the table decides).
std::vector<std::uint32_t> entry_ids(const CompiledRuleset& rules, const std::uint32_t* numbers,
                                     std::size_t n) {
    std::vector<std::uint32_t> ids(n);
    for (std::size_t i = 0; i < n; ++i) ids[i] = rules.entry_for_number(numbers[i]);
    return ids;
}

}  // namespace

nk_status classify_columns(const nk_classifier* classifier, FlowColumns cols, nk_pair_cache* cache,
                           const nk_labels* out, const char* function) {
    if (cache != nullptr && cols.ts_end == nullptr)
        return fail(NK_E_ARGUMENT, std::string(function) +
                                       ": missing column 'ts_end': a pair cache needs each flow's "
                                       "end time (its expiry runs on flow time)");
    const std::size_t n = cols.n;
    const CompiledRuleset& rules = *classifier->compiled;
    const RulesetImage& image = rules.image();
    const std::uint32_t* given_src = cols.src_as;
    const std::uint32_t* given_dst = cols.dst_as;
    std::vector<std::uint32_t> src_ids, dst_ids, peer_ids;
    cols.src_as = cols.dst_as = nullptr;
    const bool as_stage = image.as_stage;
    if (as_stage && given_src != nullptr) {
        src_ids = entry_ids(rules, given_src, n);
        cols.src_as = src_ids.data();
    }
    if (as_stage && given_dst != nullptr) {
        dst_ids = entry_ids(rules, given_dst, n);
        cols.dst_as = dst_ids.data();
    }

    std::vector<std::uint16_t> path, evidence;
    std::vector<std::uint8_t> side, app, activity, confidence;
    std::vector<std::uint32_t> service;
    LabelColumns labels{column_or_scratch(out->path, path, n),
                        column_or_scratch(out->side, side, n),
                        column_or_scratch(out->service, service, n),
                        column_or_scratch(out->app, app, n),
                        column_or_scratch(out->activity, activity, n),
                        column_or_scratch(out->evidence, evidence, n),
                        column_or_scratch(out->confidence, confidence, n)};
    const bool want_peer = out->peer_as != nullptr || out->peer_org != nullptr;
    if (as_stage && want_peer) {
        peer_ids.resize(n);
        labels.peer_as = peer_ids.data();
    }
    rules.classifier().classify(cols, labels, cache != nullptr ? &cache->cache : nullptr);

    if (!want_peer) return NK_OK;
    for (std::size_t i = 0; i < n; ++i) {
        if (!as_stage) {
            if (out->peer_as) out->peer_as[i] = 0;
            if (out->peer_org) out->peer_org[i] = 0;
            continue;
        }
        const std::uint32_t id = peer_ids[i];
        if (out->peer_org) out->peer_org[i] = image.as_orgs[id];
        if (out->peer_as) {
            // The exporter's number for the peer where given, else the table's.
            const bool peer_is_src = labels.side[i] == kSideDst;
            const std::uint32_t* given = peer_is_src ? given_src : given_dst;
            const std::uint32_t number = given != nullptr ? given[i] : 0;
            out->peer_as[i] = number != 0 ? number : image.as_numbers[id];
        }
    }
    return NK_OK;
}

}  // namespace nkclass::capi

namespace {

nk_status check_payload(const std::uint8_t* data, const std::int64_t* offsets, std::size_t n,
                        const char* name) {
    if ((data == nullptr) != (offsets == nullptr))
        return fail(NK_E_ARGUMENT, std::string("nk_classify: column '") + name +
                                       "': give the bytes and their offsets together");
    if (offsets == nullptr) return NK_OK;
    if (offsets[0] < 0)
        return fail(NK_E_ARGUMENT, std::string("nk_classify: column '") + name +
                                       "': the first offset is " + std::to_string(offsets[0]) +
                                       ", below 0");
    for (std::size_t i = 0; i < n; ++i)
        if (offsets[i + 1] < offsets[i])
            return fail(NK_E_ARGUMENT, std::string("nk_classify: column '") + name + "': row " +
                                           std::to_string(i) + " ends at offset " +
                                           std::to_string(offsets[i + 1]) + ", before it starts (" +
                                           std::to_string(offsets[i]) + ")");
    return NK_OK;
}

nk_status address(const std::uint32_t* v4, const std::uint8_t* v6, nkclass::AddressColumn* out,
                  const char* name) {
    if ((v4 == nullptr) == (v6 == nullptr))
        return fail(NK_E_ARGUMENT, std::string("nk_classify: column '") + name + "': give " + name +
                                       "4 (uint32) or " + name + "6 (16-byte rows), exactly one");
    out->v4 = v4;
    out->v6 = reinterpret_cast<const nkclass::ipv6_net_t*>(v6);
    return NK_OK;
}

}  // namespace

extern "C" {

nk_status nk_classify(const nk_classifier* classifier, const nk_flow_columns* flows,
                      nk_pair_cache* cache, const nk_labels* out) {
    if (classifier == nullptr || flows == nullptr || out == nullptr)
        return fail(NK_E_ARGUMENT, "nk_classify: classifier, flows and out must not be NULL");
    nkclass::FlowColumns cols;
    cols.n = flows->n;
    if (cols.n != 0) {
        nk_status s;
        if ((s = address(flows->src_ip4, flows->src_ip6, &cols.src_ip, "src_ip")) != NK_OK ||
            (s = address(flows->dst_ip4, flows->dst_ip6, &cols.dst_ip, "dst_ip")) != NK_OK)
            return s;
        const char* missing = !flows->src_port   ? "src_port"
                              : !flows->dst_port ? "dst_port"
                              : !flows->protocol ? "protocol"
                                                 : nullptr;
        if (missing != nullptr)
            return fail(NK_E_ARGUMENT, std::string("nk_classify: missing column '") + missing +
                                           "'; a flow batch needs src_ip, dst_ip, src_port, "
                                           "dst_port, protocol");
        if ((s = check_payload(flows->src_payload, flows->src_payload_offsets, cols.n,
                               "src_payload")) != NK_OK ||
            (s = check_payload(flows->dst_payload, flows->dst_payload_offsets, cols.n,
                               "dst_payload")) != NK_OK)
            return s;
    }
    cols.src_port = flows->src_port;
    cols.dst_port = flows->dst_port;
    cols.protocol = flows->protocol;
    cols.src_payload = {flows->src_payload, flows->src_payload_offsets};
    cols.dst_payload = {flows->dst_payload, flows->dst_payload_offsets};
    cols.ts_start = flows->ts_start;
    cols.ts_end = flows->ts_end;
    cols.packets = flows->packets;
    cols.bytes = flows->bytes;
    cols.tcp_flags = flows->tcp_flags;
    cols.src_as = flows->src_as;
    cols.dst_as = flows->dst_as;
    return nkclass::capi::guarded("nk_classify", [&] {
        return nkclass::capi::classify_columns(classifier, cols, cache, out, "nk_classify");
    });
}

}  // extern "C"
