// The C interface: the packet meter.
#include <limits>
#include <string>

#include "capi.hpp"

using nkclass::capi::fail;
using nkclass::capi::guarded;

namespace {

// The status a corrupt or truncated capture reports, recorded as the error.
nk_status meter_failure(const nkclass::MeterStatus& s) {
    switch (s.kind) {
        case nkclass::MeterStatus::Kind::kOk: return NK_OK;
        case nkclass::MeterStatus::Kind::kTruncated:
            return fail(NK_E_TRUNCATED, "capture truncated at byte " + std::to_string(s.offset) +
                                            ": " + s.reason, s.offset);
        case nkclass::MeterStatus::Kind::kCorrupt:
            return fail(NK_E_CORRUPT, "corrupt capture at byte " + std::to_string(s.offset) + ": " +
                                          s.reason, s.offset);
    }
    return NK_OK;
}

}  // namespace

extern "C" {

void nk_meter_config_init(nk_meter_config* config) {
    if (config == nullptr) return;
    const nkclass::FlowMeterConfig defaults;
    config->payload_bytes = defaults.payload_bytes;
    config->idle_timeout_ms = defaults.idle_timeout_ms;
    config->active_timeout_ms = defaults.active_timeout_ms;
    config->max_flows = defaults.max_flows;
    config->max_memory_bytes = defaults.max_memory_bytes;
}

nk_status nk_meter_new(const nk_meter_config* config, nk_meter** out) {
    if (out == nullptr) return fail(NK_E_ARGUMENT, "nk_meter_new: out is NULL");
    *out = nullptr;
    nkclass::FlowMeterConfig cfg;
    if (config != nullptr) {
        cfg.payload_bytes = config->payload_bytes;
        cfg.idle_timeout_ms = config->idle_timeout_ms;
        cfg.active_timeout_ms = config->active_timeout_ms;
        if (config->max_flows > std::numeric_limits<std::size_t>::max())
            return fail(NK_E_ARGUMENT, "nk_meter_new: max_flows must be between 1 and 2**30");
        cfg.max_flows = static_cast<std::size_t>(config->max_flows);
        cfg.max_memory_bytes = config->max_memory_bytes > std::numeric_limits<std::size_t>::max()
                                   ? std::numeric_limits<std::size_t>::max()
                                   : static_cast<std::size_t>(config->max_memory_bytes);
    }
    if (const char* why = nkclass::validate(cfg))
        return fail(NK_E_ARGUMENT, std::string("nk_meter_new: ") + why);
    return guarded("nk_meter_new", [&] {
        *out = new nk_meter(cfg);
        return NK_OK;
    });
}

void nk_meter_free(nk_meter* meter) { delete meter; }

nk_status nk_meter_feed(nk_meter* meter, const void* data, size_t size) {
    if (meter == nullptr || (data == nullptr && size != 0))
        return fail(NK_E_ARGUMENT, "nk_meter_feed: meter and data must not be NULL");
    if (meter->finished)
        return fail(NK_E_STATE, "nk_meter_feed: the meter was finished (nk_meter_finish)");
    if (meter->input == nk_meter::Input::kPackets)
        return fail(NK_E_STATE, "nk_meter_feed: this meter takes single packets "
                                "(nk_meter_add_packet), not capture bytes");
    meter->input = nk_meter::Input::kFile;
    return guarded("nk_meter_feed", [&] {
        meter->meter.feed(static_cast<const std::uint8_t*>(data), size);
        return meter_failure(meter->meter.status());
    });
}

nk_status nk_meter_add_packet(nk_meter* meter, uint32_t link_type, int64_t ts_ns,
                              const void* frame, size_t caplen, size_t wire_len) {
    if (meter == nullptr || (frame == nullptr && caplen != 0))
        return fail(NK_E_ARGUMENT, "nk_meter_add_packet: meter and frame must not be NULL");
    if (meter->finished)
        return fail(NK_E_STATE, "nk_meter_add_packet: the meter was finished (nk_meter_finish)");
    if (meter->input == nk_meter::Input::kFile)
        return fail(NK_E_STATE, "nk_meter_add_packet: this meter takes capture bytes "
                                "(nk_meter_feed), not single packets");
    if (caplen > nkclass::kMaxCaplen)
        return fail(NK_E_ARGUMENT, "nk_meter_add_packet: caplen " + std::to_string(caplen) +
                                       " is above the largest packet accepted (" +
                                       std::to_string(nkclass::kMaxCaplen) + ")");
    const std::size_t wire = wire_len > 0xffffffffu ? 0xffffffffu : wire_len;
    // ns to ms, rounded down (toward the past for times before the epoch).
    const std::int64_t ts_ms = ts_ns / 1000000 - (ts_ns % 1000000 < 0 ? 1 : 0);
    meter->input = nk_meter::Input::kPackets;
    return guarded("nk_meter_add_packet", [&] {
        meter->meter.add_packet(link_type, ts_ms, static_cast<const std::uint8_t*>(frame),
                                static_cast<std::uint32_t>(caplen), static_cast<std::uint32_t>(wire));
        return NK_OK;
    });
}

nk_status nk_meter_finish(nk_meter* meter) {
    if (meter == nullptr) return fail(NK_E_ARGUMENT, "nk_meter_finish: meter is NULL");
    meter->finished = true;
    return guarded("nk_meter_finish", [&] { return meter_failure(meter->meter.finish()); });
}

size_t nk_meter_ready(const nk_meter* meter) { return meter ? meter->meter.ready() : 0; }

nk_status nk_meter_drain(nk_meter* meter, const nk_flow_buffers* out, size_t* rows) {
    if (rows != nullptr) *rows = 0;
    if (meter == nullptr || out == nullptr || rows == nullptr)
        return fail(NK_E_ARGUMENT, "nk_meter_drain: meter, out and rows must not be NULL");
    const char* missing = !out->ts_start    ? "ts_start"
                          : !out->ts_end    ? "ts_end"
                          : !out->src_ip    ? "src_ip"
                          : !out->dst_ip    ? "dst_ip"
                          : !out->src_port  ? "src_port"
                          : !out->dst_port  ? "dst_port"
                          : !out->protocol  ? "protocol"
                          : !out->packets   ? "packets"
                          : !out->bytes     ? "bytes"
                          : !out->tcp_flags ? "tcp_flags"
                                            : nullptr;
    if (missing != nullptr && out->capacity != 0)
        return fail(NK_E_ARGUMENT, std::string("nk_meter_drain: buffer '") + missing + "' is NULL");
    if ((out->src_payload == nullptr) != (out->src_payload_offsets == nullptr) ||
        (out->dst_payload == nullptr) != (out->dst_payload_offsets == nullptr))
        return fail(NK_E_ARGUMENT,
                    "nk_meter_drain: give a side's payload buffer and its offsets together");
    const std::size_t k = std::min(meter->meter.ready(), out->capacity);
    const std::size_t unlimited = std::numeric_limits<std::size_t>::max();
    const std::size_t src_room = out->src_payload ? out->src_payload_capacity : unlimited;
    const std::size_t dst_room = out->dst_payload ? out->dst_payload_capacity : unlimited;
    const std::size_t fit = meter->meter.fitting(k, src_room, dst_room);
    if (fit == 0 && k != 0)
        return fail(NK_E_BUFFER,
                    "nk_meter_drain: the next record's payload needs " +
                        std::to_string(meter->meter.payload_size(1, true)) + " (src) and " +
                        std::to_string(meter->meter.payload_size(1, false)) +
                        " (dst) bytes; the buffers hold " + std::to_string(out->src_payload_capacity) +
                        " and " + std::to_string(out->dst_payload_capacity));
    if (fit == 0) return NK_OK;
    nkclass::FlowColumnsOut cols{{out->ts_start, out->ts_end, out->src_ip, out->dst_ip,
                                  out->src_port, out->dst_port, out->protocol, out->packets,
                                  out->bytes, out->tcp_flags},
                                 out->src_payload,
                                 out->src_payload_offsets,
                                 out->dst_payload,
                                 out->dst_payload_offsets};
    meter->meter.drain(fit, cols);
    *rows = fit;
    return NK_OK;
}

void nk_flow_columns_from_buffers(const nk_flow_buffers* buffers, size_t rows,
                                  nk_flow_columns* columns) {
    if (buffers == nullptr || columns == nullptr) return;
    *columns = nk_flow_columns{};
    columns->n = rows;
    columns->src_ip6 = buffers->src_ip;
    columns->dst_ip6 = buffers->dst_ip;
    columns->src_port = buffers->src_port;
    columns->dst_port = buffers->dst_port;
    columns->protocol = buffers->protocol;
    columns->src_payload = buffers->src_payload;
    columns->src_payload_offsets = buffers->src_payload_offsets;
    columns->dst_payload = buffers->dst_payload;
    columns->dst_payload_offsets = buffers->dst_payload_offsets;
    columns->ts_start = buffers->ts_start;
    columns->ts_end = buffers->ts_end;
    columns->packets = buffers->packets;
    columns->bytes = buffers->bytes;
    columns->tcp_flags = buffers->tcp_flags;
}

void nk_meter_get_counters(const nk_meter* meter, nk_meter_counters* counters) {
    if (meter == nullptr || counters == nullptr) return;
    const nkclass::MeterCounters& c = meter->meter.counters();
    counters->packets = c.packets;
    counters->bytes = c.bytes;
    counters->non_ip = c.non_ip;
    counters->malformed = c.malformed;
    counters->ip_fragments = c.ip_fragments;
    counters->flows_emitted = c.flows_emitted;
    counters->flows_evicted = c.flows_evicted;
    counters->memory_evictions = c.memory_evictions;
    counters->wire_len_fixed = c.wire_len_fixed;
}

}  // extern "C"
