// Fuzzes the flow export decoder: NetFlow v5, v9, IPFIX and sFlow v5
// datagrams, with the template cache, expiry, withdrawal and sampling state
// carried from one datagram to the next.
//
// Input: byte 0 picks max_templates (bits 0-1: 1, 2, 16, 65536), the
// template timeout (bits 2-3: 1 ms .. 30 min) and payload_bytes (bits 4-5:
// 0, 7, 128, 512); then datagrams, each a 16-bit length, one byte of
// receive-time advance (seconds) and one byte of exporter, then its bytes.
// Properties: every record decoded is drained once; payloads are at most
// payload_bytes; the cache holds at most max_templates; a record's sampling
// rate is at least 1.
#include <cstdint>
#include <vector>

#include "fuzz_input.hpp"
#include "nkclass/export_decoder.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint8_t conf = in.u8();
    static const std::size_t kTemplates[] = {1, 2, 16, 65536};
    static const std::int64_t kTimeouts[] = {1, 1000, 60000, 1800000};
    static const std::uint32_t kPayload[] = {0, 7, 128, 512};
    nkclass::ExportDecoderConfig cfg;
    cfg.max_templates = kTemplates[conf & 3];
    cfg.template_timeout_ms = kTimeouts[(conf >> 2) & 3];
    cfg.payload_bytes = kPayload[(conf >> 4) & 3];
    nkclass::ExportDecoder dec(cfg);
    std::int64_t now = 1700000000000;
    std::uint64_t drained = 0;
    while (in.left() > 0) {
        std::size_t n = in.u16();
        now += std::int64_t(in.u8()) * 1000;
        nkclass::ipv6_net_t exporter = nkclass::map_ipv4(0x7F000000u | in.u8());
        const std::uint8_t* p = in.take(&n);
        const auto copy = fuzz::exact_copy(p, n);
        dec.decode(copy.get(), n, exporter, now);
        fuzz::check(dec.templates_held() <= cfg.max_templates, "at most max_templates held");
        const std::size_t k = dec.ready();
        std::vector<std::int64_t> ts_start(k), ts_end(k), offsets(k + 1);
        std::vector<std::uint8_t> src(16 * k), dst(16 * k), exp(16 * k), proto(k), flags(k);
        std::vector<std::uint16_t> sport(k), dport(k);
        std::vector<std::uint64_t> packets(k), bytes(k);
        std::vector<std::uint32_t> src_as(k), dst_as(k), rate(k);
        std::vector<std::uint8_t> payload(dec.payload_size(k));
        const nkclass::ExportColumnsOut out{
            {ts_start.data(), ts_end.data(), src.data(), dst.data(), sport.data(), dport.data(),
             proto.data(), packets.data(), bytes.data(), flags.data()},
            src_as.data(),
            dst_as.data(),
            rate.data(),
            exp.data(),
            payload.data(),
            offsets.data()};
        dec.drain(k, out);
        drained += k;
        fuzz::check(offsets[k] == std::int64_t(payload.size()), "offsets end at the payload size");
        for (std::size_t i = 0; i < k; ++i) {
            fuzz::check(rate[i] >= 1, "a sampling rate is at least 1");
            fuzz::check(offsets[i + 1] - offsets[i] <= std::int64_t(cfg.payload_bytes),
                        "a payload is at most payload_bytes");
        }
        fuzz::check(dec.ready() == 0, "drain empties the queue");
    }
    fuzz::check(drained == dec.counters().records, "every record is drained once");
    return 0;
}
