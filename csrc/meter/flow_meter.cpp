// FlowMeter: joins the container parser, the frame decoder and the flow
// table, and carries records that straddle feed() chunks.
#include "nkclass/flow_meter.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "flow_table.hpp"
#include "packet_decode.hpp"
#include "pcap_container.hpp"

namespace nkclass {

const char* validate(const FlowMeterConfig& cfg) noexcept {
    if (cfg.payload_bytes > kMaxPayloadBytes) return "payload_bytes must be at most 65535";
    if (cfg.idle_timeout_ms <= 0) return "idle_timeout_ms must be positive";
    if (cfg.active_timeout_ms <= 0) return "active_timeout_ms must be positive";
    if (cfg.max_flows < 1 || cfg.max_flows > (std::size_t(1) << 30))
        return "max_flows must be between 1 and 2**30";
    if (cfg.max_memory_bytes < peak_flow_bytes(cfg.payload_bytes))
        return "max_memory_bytes must hold at least one flow (peak_flow_bytes(payload_bytes))";
    return nullptr;
}

struct FlowMeter::Impl final : meter::PacketSink {
    struct Queued {
        meter::PacketInfo pkt;
        meter::KeyedPacket key;
        std::int64_t ts_ms;
        std::uint64_t bytes;
    };
    explicit Impl(const FlowMeterConfig& cfg)
        : decapsulate(cfg.decapsulate), table(cfg, &counters), capture(*this) {}

    void on_packet(std::uint32_t link_type, std::int64_t ts_ms, const std::uint8_t* frame,
                   std::uint32_t caplen, std::uint32_t wire_len, bool uncut,
                   std::uint32_t snaplen) override {
        ++counters.packets;
        meter::PacketInfo pkt;
        const meter::Decoded decoded =
            meter::decode_frame(link_type, frame, caplen, &pkt, decapsulate);
        // The wire length is only believed when it can be right (see the
        // header): a lying length would inflate every byte count after it.
        const bool impossible =
            wire_len < caplen || wire_len > kMaxWireLen ||
            (uncut && snaplen != 0 && wire_len > snaplen) ||
            (decoded == meter::Decoded::kIp && uncut && pkt.complete &&
             wire_len - caplen > kMaxTrailerBytes);
        if (impossible) ++counters.wire_len_fixed;
        const std::uint64_t bytes = impossible ? caplen : wire_len;
        counters.bytes += bytes;
        switch (decoded) {
            case meter::Decoded::kNonIp: ++counters.non_ip; return;
            case meter::Decoded::kMalformed: ++counters.malformed; return;
            case meter::Decoded::kIp: break;
        }
        if (pkt.fragment) ++counters.ip_fragments;
        // Packets go through a short in-order queue so that the table lines
        // each one touches are prefetched while earlier packets are added:
        // with tens of thousands of live flows every add() otherwise waits
        // on three or four cache misses in a row (bucket, flow, list
        // neighbours, payload buffer). Results are those of adding at once.
        if (queued == kQueue) add_oldest();
        Queued& q = queue[(first + queued) % kQueue];
        q.pkt = pkt;
        meter::FlowTable::key_into(pkt, &q.key);
        q.ts_ms = ts_ms;
        q.bytes = bytes;
        ++queued;
        table.prefetch_bucket(q.key.hash);
        if (queued > kFlowAt) table.prefetch_flow(at(queued - 1 - kFlowAt).key.hash);
        if (queued > kLinksAt) table.prefetch_links(at(queued - 1 - kLinksAt).key);
    }

    void add_oldest() {
        const Queued& q = queue[first];
        table.add(q.pkt, q.key, q.ts_ms, q.bytes);
        first = (first + 1) % kQueue;
        --queued;
    }

    // The packet `i` places after the oldest queued one.
    const Queued& at(std::size_t i) const { return queue[(first + i) % kQueue]; }

    // Adds every queued packet (their payload pointers point into the bytes
    // being parsed, so the queue is empty whenever parse() returns).
    void drain_queue() {
        while (queued != 0) add_oldest();
    }

    // Queue depth and the ages (packets since queued) at which the flow and
    // then its links are prefetched; the bucket is prefetched on arrival.
    // (At 8, 4 and 6 the links' prefetch still waited on the flow's line.)
    static constexpr std::size_t kQueue = 16;
    static constexpr std::size_t kFlowAt = 6;
    static constexpr std::size_t kLinksAt = 12;
    Queued queue[kQueue];
    std::size_t first = 0;
    std::size_t queued = 0;

    bool decapsulate;
    MeterCounters counters;
    meter::FlowTable table;
    meter::ChunkedCapture capture;
    bool packets_given = false;  // fed by add_packet(), not by file bytes
    bool finished = false;
    MeterStatus status;
};

FlowMeter::FlowMeter(const FlowMeterConfig& cfg) : impl_(new Impl(cfg)) {}
FlowMeter::~FlowMeter() = default;

void FlowMeter::feed(const std::uint8_t* data, std::size_t n) {
    if (impl_->packets_given) return;
    // The queue's payload pointers point into the bytes being parsed.
    impl_->capture.feed(data, n, [this] { impl_->drain_queue(); });
}

bool FlowMeter::add_packet(std::uint32_t link_type, std::int64_t ts_ms, const std::uint8_t* frame,
                           std::uint32_t caplen, std::uint32_t wire_len) {
    Impl& m = *impl_;
    if (m.finished || m.capture.started() || caplen > kMaxCaplen) return false;
    m.packets_given = true;
    // No snap length is known: the wire length is checked against the
    // captured one and kMaxWireLen only.
    m.on_packet(link_type, ts_ms, frame, caplen, wire_len, /*uncut=*/false, /*snaplen=*/0);
    m.drain_queue();  // the queued packet points into the caller's frame
    return true;
}

MeterStatus FlowMeter::status() const {
    const Impl& m = *impl_;
    return m.finished ? m.status : m.capture.status();
}

MeterStatus FlowMeter::finish() {
    Impl& m = *impl_;
    if (m.finished) return m.status;
    m.finished = true;
    m.table.flush();
    m.status = m.capture.finish(/*expect_input=*/!m.packets_given);
    if (m.status.kind == MeterStatus::Kind::kTruncated) m.counters.truncated = 1;
    return m.status;
}

std::size_t FlowMeter::ready() const noexcept {
    const meter::EmittedFlows& e = impl_->table.emitted();
    return e.rows.size() - e.head;
}

std::size_t FlowMeter::payload_size(std::size_t k, bool src_side) const noexcept {
    const meter::EmittedFlows& e = impl_->table.emitted();
    const int s = src_side ? 0 : 1;
    std::size_t total = 0;
    for (std::size_t i = e.head; i < e.head + k; ++i) total += e.rows[i].payload_len[s];
    return total;
}

std::size_t FlowMeter::fitting(std::size_t k, std::size_t src_bytes,
                              std::size_t dst_bytes) const noexcept {
    const meter::EmittedFlows& e = impl_->table.emitted();
    std::size_t room[2] = {src_bytes, dst_bytes};
    for (std::size_t j = 0; j < k; ++j) {
        const meter::EmittedFlow& r = e.rows[e.head + j];
        for (int s = 0; s < 2; ++s) {
            if (r.payload_len[s] > room[s]) return j;
            room[s] -= r.payload_len[s];
        }
    }
    return k;
}

void FlowMeter::drain(std::size_t k, const FlowColumnsOut& out) noexcept {
    meter::EmittedFlows& e = impl_->table.emitted();
    std::int64_t at[2] = {0, 0};
    std::uint8_t* payload[2] = {out.src_payload, out.dst_payload};
    std::int64_t* offsets[2] = {out.src_payload_offsets, out.dst_payload_offsets};
    for (int s = 0; s < 2; ++s)
        if (offsets[s] != nullptr) offsets[s][0] = 0;
    for (std::size_t j = 0; j < k; ++j) {
        const meter::EmittedFlow& r = e.rows[e.head + j];
        put_record(out, j, r);
        if (out.tunnel != nullptr) out.tunnel[j] = r.tunnel;
        if (out.stratum_submits != nullptr) out.stratum_submits[j] = r.stratum_submits;
        if (out.stratum_difficulty != nullptr)
            out.stratum_difficulty[j] =
                r.stratum_difficulty > 0 ? r.stratum_difficulty : std::nan("");
        if (out.stratum_algo != nullptr)
            out.stratum_algo[j] = static_cast<std::uint8_t>(r.stratum_algo);
        for (int s = 0; s < 2; ++s) {
            if (payload[s] == nullptr || offsets[s] == nullptr) continue;
            put_payload(payload[s], offsets[s], &at[s], j, e.payload.data() + r.payload_at[s],
                        r.payload_len[s]);
        }
    }
    pop_drained(e, k);
}

const MeterCounters& FlowMeter::counters() const noexcept { return impl_->counters; }

}  // namespace nkclass
