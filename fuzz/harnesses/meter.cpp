// Fuzzes the pcap / pcapng flow meter: container parsing, frame decoding,
// the flow table (eviction by flows and by memory, expiry, payload
// assembly) and draining.
//
// Input: byte 0 picks payload_bytes (bits 0-2), max_flows (bits 3-4) and
// max_memory_bytes (bits 5-7); byte 1 the chunk size (bits 0-2) and the
// idle and active timeouts (bits 3-4, 5-6); the rest is the capture file.
// The file is metered twice, whole and in chunks, and the two runs must
// agree record for record (chunking never changes results); the records
// must account for every IP packet, and the table must stay within its
// memory bound.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_input.hpp"
#include "nkclass/flow_meter.hpp"

namespace {

struct Run {
    std::vector<std::int64_t> ts;
    std::vector<std::uint8_t> addresses[2];  // src, dst
    std::vector<std::uint64_t> counts;  // ports, protocol, flags, packets, bytes per row
    std::vector<std::uint8_t> payload[2];  // src, dst
    std::vector<std::int64_t> payload_lengths;
    std::vector<std::uint64_t> stratum;  // submits, difficulty bits, algo per row
    nkclass::MeterStatus status;
    nkclass::MeterCounters counters;
};

void drain_into(nkclass::FlowMeter& m, std::size_t at_most, std::uint32_t payload_bytes,
                Run* run) {
    while (m.ready() != 0) {
        const std::size_t k = std::min(at_most, m.ready());
        std::vector<std::int64_t> ts_start(k), ts_end(k);
        std::vector<std::uint8_t> src(16 * k), dst(16 * k), protocol(k), flags(k);
        std::vector<std::uint16_t> sport(k), dport(k);
        std::vector<std::uint64_t> packets(k), bytes(k);
        std::vector<std::uint8_t> sp(m.payload_size(k, true)), dp(m.payload_size(k, false));
        std::vector<std::int64_t> so(k + 1), dof(k + 1);
        std::vector<std::uint64_t> submits(k);
        std::vector<double> difficulty(k);
        std::vector<std::uint8_t> algo(k);
        nkclass::FlowColumnsOut out{{ts_start.data(), ts_end.data(), src.data(), dst.data(),
                                     sport.data(), dport.data(), protocol.data(), packets.data(),
                                     bytes.data(), flags.data()},
                                    sp.data(),
                                    so.data(),
                                    dp.data(),
                                    dof.data()};
        out.stratum_submits = submits.data();
        out.stratum_difficulty = difficulty.data();
        out.stratum_algo = algo.data();
        m.drain(k, out);
        fuzz::check(so[k] == std::int64_t(sp.size()) && dof[k] == std::int64_t(dp.size()),
                    "payload offsets end at the payload size");
        for (std::size_t i = 0; i < k; ++i) {
            fuzz::check(ts_start[i] <= ts_end[i], "a flow starts before it ends");
            fuzz::check(packets[i] >= 1, "a flow has a packet");
            fuzz::check(bytes[i] <= packets[i] * nkclass::kMaxWireLen,
                        "no packet counts more than kMaxWireLen bytes");
            for (const auto* o : {&so, &dof}) {
                const std::int64_t len = (*o)[i + 1] - (*o)[i];
                fuzz::check(len >= 0 && len <= std::int64_t(payload_bytes),
                            "a payload prefix is at most payload_bytes");
                run->payload_lengths.push_back(len);
            }
            fuzz::check(std::isnan(difficulty[i]) ||
                            (std::isfinite(difficulty[i]) && difficulty[i] > 0),
                        "a share difficulty is NaN or positive and finite");
            fuzz::check(algo[i] <= 2, "stratum algo code in range");
            fuzz::check(protocol[i] == 6 || (submits[i] == 0 && algo[i] == 0),
                        "only TCP flows count shares");
            std::uint64_t bits;
            std::memcpy(&bits, &difficulty[i], 8);
            run->stratum.insert(run->stratum.end(), {submits[i], bits, algo[i]});
            run->ts.push_back(ts_start[i]);
            run->ts.push_back(ts_end[i]);
            run->counts.insert(run->counts.end(), {sport[i], dport[i], protocol[i], flags[i],
                                                   packets[i], bytes[i]});
        }
        run->addresses[0].insert(run->addresses[0].end(), src.begin(), src.end());
        run->addresses[1].insert(run->addresses[1].end(), dst.begin(), dst.end());
        run->payload[0].insert(run->payload[0].end(), sp.begin(), sp.end());
        run->payload[1].insert(run->payload[1].end(), dp.begin(), dp.end());
    }
}

Run meter(const nkclass::FlowMeterConfig& cfg, const std::uint8_t* p, std::size_t n,
          std::size_t chunk, std::size_t drain_at_most) {
    Run run;
    nkclass::FlowMeter m(cfg);
    for (std::size_t at = 0; at < n; at += chunk) {
        const std::size_t k = std::min(chunk, n - at);
        // Each chunk in its own exact block: a read past it is reported.
        const auto piece = fuzz::exact_copy(p + at, k);
        m.feed(piece.get(), k);
        drain_into(m, drain_at_most, cfg.payload_bytes, &run);
    }
    run.status = m.finish();
    drain_into(m, drain_at_most, cfg.payload_bytes, &run);
    run.counters = m.counters();
    return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    fuzz::Input in(data, size);
    const std::uint8_t a = in.u8();
    const std::uint8_t b = in.u8();
    static const std::uint32_t kPayload[] = {0, 1, 7, 64, 512, 1500, 65535, 512};
    static const std::size_t kFlows[] = {1, 3, 64, 1000000};
    static const std::size_t kMemoryFlows[] = {0, 1, 2, 3, 8, 64, 1024, 0};
    static const std::size_t kChunk[] = {1, 2, 3, 7, 64, 1000, 4096, 1 << 20};
    static const std::int64_t kTimeout[] = {1, 1000, 120000, std::int64_t(1) << 62};

    nkclass::FlowMeterConfig cfg;
    cfg.payload_bytes = kPayload[a & 7];
    cfg.max_flows = kFlows[(a >> 3) & 3];
    const std::size_t memory_flows = kMemoryFlows[a >> 5];
    if (memory_flows != 0) {
        // Room for this many flows with payload both ways, plus some slack.
        cfg.max_memory_bytes = memory_flows * nkclass::peak_flow_bytes(cfg.payload_bytes) +
                               (a & 0x20 ? nkclass::kFlowStateBytes : 0);
    }
    cfg.idle_timeout_ms = kTimeout[(b >> 3) & 3];
    cfg.active_timeout_ms = kTimeout[(b >> 5) & 3];
    fuzz::check(nkclass::validate(cfg) == nullptr, "the harness builds valid configs");

    std::size_t n = in.left();
    const std::uint8_t* file = in.take(&n);
    const Run whole = meter(cfg, file, n, n == 0 ? 1 : n, std::size_t(1) << 30);
    const Run pieces = meter(cfg, file, n, kChunk[b & 7], 5);

    const nkclass::MeterCounters& c = whole.counters;
    fuzz::check(c.packets >= c.non_ip + c.malformed, "packet counters add up");
    std::uint64_t flow_packets = 0;
    for (std::size_t i = 4; i < whole.counts.size(); i += 6) flow_packets += whole.counts[i];
    fuzz::check(flow_packets == c.packets - c.non_ip - c.malformed,
                "every IP packet is in exactly one flow");
    fuzz::check(c.flows_emitted == whole.counts.size() / 6, "every emitted flow is drained");
    fuzz::check(c.flows_evicted >= c.memory_evictions, "memory evictions are evictions");
    fuzz::check(c.peak_memory_bytes <= cfg.max_memory_bytes, "the table stays within its memory");
    fuzz::check(c.wire_len_fixed <= c.packets, "fixed wire lengths are packets");

    fuzz::check(whole.status.kind == pieces.status.kind &&
                    whole.status.offset == pieces.status.offset &&
                    whole.status.reason == pieces.status.reason,
                "chunking does not change the status");
    fuzz::check(whole.ts == pieces.ts && whole.addresses[0] == pieces.addresses[0] &&
                    whole.addresses[1] == pieces.addresses[1] &&
                    whole.counts == pieces.counts && whole.payload[0] == pieces.payload[0] &&
                    whole.payload[1] == pieces.payload[1] &&
                    whole.payload_lengths == pieces.payload_lengths &&
                    whole.stratum == pieces.stratum,
                "chunking does not change the records");
    const nkclass::MeterCounters& d = pieces.counters;
    fuzz::check(c.packets == d.packets && c.bytes == d.bytes && c.non_ip == d.non_ip &&
                    c.malformed == d.malformed && c.flows_evicted == d.flows_evicted &&
                    c.wire_len_fixed == d.wire_len_fixed && c.truncated == d.truncated,
                "chunking does not change the counters");
    return 0;
}
