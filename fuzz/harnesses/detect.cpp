// Fuzzes the payload detectors through their entry points: detect() on
// both sides of a flow, and the classifier's inspector (detect() plus a
// domain-table lookup of the extracted name).
//
// Input: byte 0 picks the IP protocol (even: TCP, odd below 0x80: UDP,
// else the byte itself); bytes 1-2 and 3-4 the source and destination
// ports (big-endian); bytes 5-6 the initiator's payload length (cut to
// what is left); the initiator's bytes, then the responder's.
#include <cstdint>

#include "fuzz_input.hpp"
#include "nkclass/detectors.hpp"
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
    return 0;
}
