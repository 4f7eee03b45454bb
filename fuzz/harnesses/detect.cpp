// Fuzzes the payload detectors through their entry points: detect() on
// both sides of a flow, the classifier's inspector (detect() plus a
// domain-table lookup of the extracted name) and its block path, which
// must agree with per-flow calls; and the DNS tunnelling stage over the
// flow and its mirror image.
//
// Input: byte 0 picks the IP protocol (even: TCP, odd below 0x80: UDP,
// else the byte itself); bytes 1-2 and 3-4 the source and destination
// ports (big-endian); bytes 5-6 the initiator's payload length (cut to
// what is left); the initiator's bytes, then the responder's.
#include <cstdint>
#include <vector>

#include "fuzz_input.hpp"
#include "nkclass/detectors.hpp"
#include "nkclass/dns_tunnel.hpp"
#include "nkclass/domains.hpp"
#include "nkclass/vocab.hpp"

namespace {

const nkclass::DetectorInspector& inspector() {
    static const nkclass::DetectorInspector insp = [] {
        auto table = std::make_shared<nkclass::DomainTable>();
        const std::vector<std::string> suffixes = {"example.com", "pool.example", "torproject.org",
                                                   "a.b.c", "com"};
        const std::uint32_t services[] = {1, 2, 3, 4, 5};
        const std::uint8_t activities[] = {1, 2, 3, 4, 5};
        fuzz::check(table->build(suffixes, services, activities).ok, "domain table builds");
        return nkclass::DetectorInspector(table);
    }();
    return insp;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint8_t sel = in.u8();
    const std::uint8_t protocol = sel % 2 == 0 ? 6 : sel < 0x80 ? 17 : sel;
    const std::uint16_t sport = in.u16();
    const std::uint16_t dport = in.u16();
    std::size_t src_len = in.u16();
    const std::uint8_t* src_at = in.take(&src_len);
    std::size_t dst_len = in.left();
    const std::uint8_t* dst_at = in.take(&dst_len);
    const auto src = fuzz::exact_copy(src_at, src_len);
    const auto dst = fuzz::exact_copy(dst_at, dst_len);

    nkclass::Detection det;
    nkclass::detect(protocol, sport, dport, src.get(), src_len, dst.get(), dst_len, &det);
    fuzz::check(det.app < nkclass::kAppCount, "app code in the vocabulary");
    fuzz::check(det.activity < nkclass::kActivityCount, "activity code in the vocabulary");
    fuzz::check(det.coin < nkclass::kCoinCount, "coin code in range");
    fuzz::check(det.name_len <= nkclass::kMaxName && det.name[det.name_len] == '\0',
                "name NUL-terminated within kMaxName");
    fuzz::check(det.agent_len <= nkclass::kMaxAgent && det.agent[det.agent_len] == '\0',
                "agent NUL-terminated within kMaxAgent");
    for (std::size_t i = 0; i < det.name_len; ++i)
        fuzz::check(det.name[i] > 0x20 && det.name[i] < 0x7f &&
                        !(det.name[i] >= 'A' && det.name[i] <= 'Z'),
                    "name is lowercase printable ASCII");
    fuzz::check(det.app != 0 || (det.activity == 0 && det.name_len == 0),
                "nothing but an app is reported");

    nkclass::Candidate found[4];
    nkclass::Detection again;
    const std::size_t k = inspector().inspect_detail(protocol, sport, dport, src.get(), src_len,
                                                      dst.get(), dst_len, found, 4, &again);
    fuzz::check(k <= 4, "candidates within capacity");
    fuzz::check(again.app == det.app && again.activity == det.activity &&
                    again.name_len == det.name_len,
                "detect() is deterministic");
    fuzz::check((k == 0) == (det.app == 0), "a detection gives a candidate");

    // The classifier's block path over the flow and its mirror image (the
    // sides swapped) must propose what per-flow calls propose.
    std::vector<std::uint8_t> src_block(src.get(), src.get() + src_len);
    src_block.insert(src_block.end(), dst.get(), dst.get() + dst_len);
    std::vector<std::uint8_t> dst_block(dst.get(), dst.get() + dst_len);
    dst_block.insert(dst_block.end(), src.get(), src.get() + src_len);
    const auto src_data = fuzz::exact_copy(src_block.data(), src_block.size());
    const auto dst_data = fuzz::exact_copy(dst_block.data(), dst_block.size());
    const std::int64_t src_offsets[] = {0, std::int64_t(src_len), std::int64_t(src_block.size())};
    const std::int64_t dst_offsets[] = {0, std::int64_t(dst_len), std::int64_t(dst_block.size())};
    const std::uint16_t sports[] = {sport, dport}, dports[] = {dport, sport};
    const std::uint8_t protocols[] = {protocol, protocol};
    nkclass::FlowColumns cols;
    cols.n = 2;
    cols.src_port = sports;
    cols.dst_port = dports;
    cols.protocol = protocols;
    cols.src_payload.data = src_data.get();
    cols.src_payload.offsets = src_offsets;
    cols.dst_payload.data = dst_data.get();
    cols.dst_payload.offsets = dst_offsets;
    nkclass::PayloadCandidates block[2];
    inspector().inspect_block(cols, 0, 2, block);
    for (int i = 0; i < 2; ++i) {
        nkclass::Candidate one[nkclass::PayloadCandidates::kMax];
        const std::size_t m = inspector().inspect(
            protocol, sports[i], dports[i], src_data.get() + src_offsets[i],
            std::size_t(src_offsets[i + 1] - src_offsets[i]), dst_data.get() + dst_offsets[i],
            std::size_t(dst_offsets[i + 1] - dst_offsets[i]), one, nkclass::PayloadCandidates::kMax);
        bool same = block[i].n == m;
        for (std::size_t j = 0; same && j < m; ++j)
            same = block[i].c[j].app == one[j].app && block[i].c[j].activity == one[j].activity &&
                   block[i].c[j].rank == one[j].rank && block[i].c[j].evidence == one[j].evidence &&
                   block[i].c[j].service == one[j].service;
        fuzz::check(same, "inspect_block proposes what per-flow inspect() proposes");
    }

    // The DNS tunnelling stage over the same two flows, every zone scored:
    // a flow is a member or not, with condition bits only.
    const std::uint64_t packets[] = {std::uint64_t(sel) << 56, 1};
    cols.packets = packets;
    std::uint8_t masks[2];
    nkclass::DnsTunnelThresholds every_zone;
    every_zone.min_queries = 0;
    nkclass::dns_tunnel_conditions(cols, every_zone, masks);
    for (std::uint8_t m : masks)
        fuzz::check(m == 0 || (m & ~(nkclass::kDnsTunnelMember |
                                     nkclass::kDnsTunnelConditionMask)) == 0 &&
                                  (m & nkclass::kDnsTunnelMember) != 0,
                    "a DNS tunnel mask is 0 or a member's condition bits");
    const bool dns = (protocol == 6 || protocol == 17) && (sport == 53 || dport == 53);
    fuzz::check(dns || (masks[0] == 0 && masks[1] == 0), "only DNS flows take part");
    return 0;
}
