// Fuzzes the C interface with compiled ruleset files: nk_ruleset_load_bytes
// on any bytes, and, for a file that loads, everything built from it: the
// classifier labels a fixed batch (IPv4 and IPv6 rows, ports of every kind,
// payloads that reach the detectors and domain lists, flow-shape columns,
// start times inside the intervals of the test dated lists (2019-05-20),
// exporter AS numbers) through nk_classify, and the aggregator reports it.
//
// Input: byte 0 bit 0 set: the rest is a ruleset file whose length field
// and trailing CRC-32 the harness rewrites to match (so that mutations reach
// the structural checks behind the checksum); otherwise the rest is used
// as it is (`nkclass rules compile -o` files, damaged anywhere). Properties:
// a refusal has a message and an offset inside the input (or none); every
// label code names an entry of the ruleset's tables or the vocabulary;
// the batch labels the same twice; aggregated flows add up to the batch.
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_input.hpp"
#include "nkclass/nkclass.h"

namespace {

constexpr std::size_t kFlows = 6;
const std::uint8_t kV6[kFlows][16] = {
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 175, 45, 176, 9},
    {0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 10},
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 203, 0, 113, 5},
    {0x20, 0x01, 0x0d, 0xb8, 0, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2},
    {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 198, 51, 100, 7},
};
const std::uint16_t kSport[kFlows] = {50000, 40000, 443, 3333, 53, 51820};
const std::uint16_t kDport[kFlows] = {3333, 443, 51000, 50001, 40000, 9001};
const std::uint8_t kProto[kFlows] = {6, 6, 6, 6, 17, 17};
const char kPayload[] =
    "{\"id\":1,\"method\":\"login\",\"params\":{\"login\":\"x\"}}\n"
    "GET / HTTP/1.1\r\nHost: pool.example.org\r\n\r\n";
const std::int64_t kOffsets[kFlows + 1] = {0, 51, 51, 92, 92, 92, 92};
const std::int64_t kNoPayload[kFlows + 1] = {0, 0, 0, 0, 0, 0, 0};
constexpr std::int64_t kDay = 1558310400000;  // 2019-05-20 00:00 UTC, in ms
const std::int64_t kStart[kFlows] = {kDay + 1000, kDay + 2000, kDay + 3000,
                                     kDay + 4000, kDay + 5000, kDay + 6000};
const std::int64_t kEnd[kFlows] = {kDay + 61000, kDay + 2500, kDay + 3500,
                                   kDay + 64000, kDay + 5001, kDay + 66000};
const std::uint64_t kPackets[kFlows] = {40, 3, 3, 50, 1, 60};
const std::uint64_t kBytes[kFlows] = {4000, 300, 300, 5000, 80, 6000};
const std::uint8_t kFlags[kFlows] = {0x18, 0x02, 0x12, 0x18, 0, 0};
const std::uint32_t kAs[kFlows] = {0, 15169, 0, 4837, 0, 0};

struct Labels {
    std::uint16_t path[kFlows], evidence[kFlows];
    std::uint8_t side[kFlows], app[kFlows], activity[kFlows], confidence[kFlows];
    std::uint32_t service[kFlows], peer_as[kFlows], peer_org[kFlows];
    nk_labels out() {
        return {path, side, service, app, activity, evidence, confidence, peer_as, peer_org};
    }
};

bool same(const Labels& a, const Labels& b) { return std::memcmp(&a, &b, sizeof a) == 0; }

void use(const nk_ruleset* rules) {
    nk_classifier* clf = nullptr;
    fuzz::check(nk_classifier_new(rules, &clf) == NK_OK, "a loaded ruleset builds a classifier");
    nk_flow_columns cols;
    std::memset(&cols, 0, sizeof cols);
    cols.n = kFlows;
    cols.src_ip6 = kV6[0];
    std::uint8_t dst[kFlows][16];
    for (std::size_t i = 0; i < kFlows; ++i) std::memcpy(dst[i], kV6[(i + 3) % kFlows], 16);
    cols.dst_ip6 = dst[0];
    cols.src_port = kSport, cols.dst_port = kDport, cols.protocol = kProto;
    cols.src_payload = reinterpret_cast<const std::uint8_t*>(kPayload);
    cols.src_payload_offsets = kOffsets;
    cols.dst_payload = reinterpret_cast<const std::uint8_t*>("");
    cols.dst_payload_offsets = kNoPayload;
    cols.ts_start = kStart, cols.ts_end = kEnd, cols.packets = kPackets, cols.bytes = kBytes;
    cols.tcp_flags = kFlags, cols.src_as = kAs, cols.dst_as = kAs;

    Labels a, b;
    std::memset(&a, 0, sizeof a);
    std::memset(&b, 0, sizeof b);
    nk_labels out_a = a.out(), out_b = b.out();
    fuzz::check(nk_classify(clf, &cols, nullptr, &out_a) == NK_OK, "a valid batch labels");
    fuzz::check(nk_classify(clf, &cols, nullptr, &out_b) == NK_OK, "a valid batch labels");
    fuzz::check(same(a, b), "labelling is deterministic");
    const bool as_stage = nk_ruleset_has_as_stage(rules) != 0;
    for (std::size_t i = 0; i < kFlows; ++i) {
        fuzz::check(nk_ruleset_path_name(rules, a.path[i]) != nullptr, "path code in the table");
        fuzz::check(nk_ruleset_service_name(rules, a.service[i]) != nullptr,
                    "service code in the table");
        fuzz::check(nk_app_name(a.app[i]) != nullptr, "app code in the vocabulary");
        fuzz::check(nk_activity_name(a.activity[i]) != nullptr, "activity code in the vocabulary");
        fuzz::check(nk_side_name(a.side[i]) != nullptr, "side code");
        fuzz::check(nk_confidence_name(a.confidence[i]) != nullptr, "confidence code");
        fuzz::check(a.evidence[i] < (1u << NK_EVIDENCE_BITS), "evidence bits");
        fuzz::check(as_stage ? nk_ruleset_org_name(rules, a.peer_org[i]) != nullptr
                             : a.peer_org[i] == 0 && a.peer_as[i] == 0,
                    "organisation code in the table, or none without the AS stage");
    }

    nk_aggregator* agg = nullptr;
    fuzz::check(nk_aggregator_new(NK_BUCKET_HOUR, &agg) == NK_OK, "an aggregator");
    fuzz::check(nk_aggregator_add(agg, &cols, &out_a, a.service) == NK_OK, "labels aggregate");
    std::uint64_t flows = 0;
    for (std::size_t g = 0; g < nk_aggregator_group_count(agg); ++g) {
        nk_group group;
        fuzz::check(nk_aggregator_group(agg, g, &group) == NK_OK, "a group");
        flows += group.flows;
    }
    fuzz::check(flows == kFlows, "every flow in one group");
    nk_aggregator_free(agg);
    nk_classifier_free(clf);
}

// CRC-32 (ISO-HDLC, as zlib.crc32), bitwise: inputs are small.
std::uint32_t crc32(const std::uint8_t* p, std::size_t n) {
    std::uint32_t c = 0xffffffffu;
    for (std::size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const bool fix = (data[0] & 1) != 0;
    // A heap copy of exactly the file's bytes: a read past it is reported.
    std::vector<std::uint8_t> copy(data + 1, data + size);
    size -= 1;
    if (fix && size >= 36) {
        for (int k = 0; k < 8; ++k)
            copy[16 + k] = static_cast<std::uint8_t>(std::uint64_t(size) >> (8 * k));
        const std::uint32_t c = crc32(copy.data(), size - 4);
        for (int k = 0; k < 4; ++k) copy[size - 4 + k] = static_cast<std::uint8_t>(c >> (8 * k));
    }
    nk_ruleset* rules = nullptr;
    const nk_status status = nk_ruleset_load_bytes(copy.data(), copy.size(), &rules);
    if (status != NK_OK) {
        fuzz::check(rules == nullptr, "no ruleset on failure");
        fuzz::check(nk_last_error()[0] != '\0', "a refusal has a message");
        const std::uint64_t at = nk_last_error_offset();
        fuzz::check(at == UINT64_MAX || at <= size, "the error offset is inside the input");
        return 0;
    }
    use(rules);
    nk_ruleset_free(rules);
    return 0;
}
