// Native decoder of flow export datagrams: NetFlow v5, NetFlow v9
// (RFC 3954), IPFIX (RFC 7011) and sFlow v5, into flow records of the
// canonical schema.
//
// Contract
// - Input: one UDP payload at a time, with the exporter's address (the
//   datagram's source; templates are kept per exporter) and the time it was
//   received (milliseconds since the Unix epoch). The version is told from
//   the first bytes: 5, 9 and 10 as the first 16-bit word, 5 as the first
//   32-bit word for sFlow.
// - Templates (v9, IPFIX) are kept per (exporter, version, source id or
//   observation domain, template id) and expire template_timeout_ms after
//   they were last received (by receive time). IPFIX withdrawals (a template
//   record of no fields; template id 2 or 3 withdraws every template or
//   options template of the domain) remove them. At most max_templates are
//   held; a new template past that is dropped and counted.
// - Records: addresses as ipv6_net_t (IPv4 mapped), ports, protocol, OR of
//   TCP flags, packets, bytes, src/dst AS (0 when not exported), start and
//   end in Unix milliseconds (from sysUptime-relative, absolute seconds,
//   milliseconds, NTP micro/nanoseconds or delta fields, else the export
//   time), and the sampling rate the counts were scaled by (1: unsampled).
// - Sampling: packets and bytes are multiplied by the rate. NetFlow v5: the
//   header's sampling interval (mode bits set, interval > 0). v9/IPFIX: the
//   record's own samplingInterval (34) or samplerRandomInterval (50), else
//   the rate an options record of the same exporter and domain announced for
//   the record's sampler id (48 or 302), else for the domain, else 1. An
//   options record's rate is samplingInterval, samplerRandomInterval or
//   (samplingPacketInterval + samplingPacketSpace) / samplingPacketInterval
//   (305, 306). sFlow: the flow sample's sampling rate; packets = rate,
//   bytes = frame length * rate.
// - sFlow flow samples: raw packet headers (Ethernet, IPv4, IPv6) are
//   decoded by the flow meter's frame decoder; the first payload_bytes of
//   the sampled packet's L4 payload become src_payload, so the classifier's
//   payload detectors read it as they read pcap flows. Sampled IPv4/IPv6
//   records (formats 2, 3) are read too; the extended gateway record (1003)
//   gives the AS numbers. Counter samples are counted only.
// - Bad input is counted and skipped, never fatal, never read out of
//   bounds: truncated or garbage datagrams and sets (decode_errors; the
//   complete sets or records before the bad spot are kept), data sets of an
//   unknown or expired template (template_misses), templates of zero or
//   absurd field lengths or counts, or with a known element in a length it
//   cannot have (bad_templates), and a sampling rate of 0 (sampling_zero:
//   an options record's rate is ignored, an sFlow sample is skipped, a
//   record's own rate falls back to the announced one).
// - Thread-safety: none inside one decoder; use one per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "nkclass/flow_columns.hpp"
#include "nkclass/types.hpp"

namespace nkclass {

struct ExportDecoderConfig {
    std::int64_t template_timeout_ms = 1800000;  // > 0
    std::size_t max_templates = 65536;           // >= 1
    std::uint32_t payload_bytes = 512;           // sFlow header payload kept, <= 65535
};

// Returns nullptr when `cfg` is valid, else a static reason.
const char* validate(const ExportDecoderConfig& cfg) noexcept;

struct ExportCounters {
    std::uint64_t datagrams = 0;         // datagrams given to decode()
    std::uint64_t records = 0;           // flow records produced
    std::uint64_t netflow_v5 = 0;        // datagrams of each version
    std::uint64_t netflow_v9 = 0;
    std::uint64_t ipfix = 0;
    std::uint64_t sflow = 0;
    std::uint64_t unknown_version = 0;   // datagrams of no version above
    std::uint64_t decode_errors = 0;     // truncated or garbage datagrams, sets, samples
    std::uint64_t templates = 0;         // templates and options templates received
    std::uint64_t templates_withdrawn = 0;
    std::uint64_t templates_expired = 0;
    std::uint64_t templates_dropped = 0;  // refused because max_templates were held
    std::uint64_t bad_templates = 0;
    std::uint64_t template_misses = 0;   // data sets of an unknown or expired template
    std::uint64_t options_records = 0;   // options data records read
    std::uint64_t sampling_zero = 0;     // sampling rates of 0 ignored or skipped
    std::uint64_t sflow_flow_samples = 0;
    std::uint64_t sflow_counter_samples = 0;
    std::uint64_t sflow_non_ip = 0;      // sampled headers that carry no IP packet
};

// Destination of drain(): the record columns of k rows (see
// nkclass/flow_columns.hpp), then the export fields; src_payload_offsets has
// k + 1 entries from 0 into payload_size(k) bytes.
struct ExportColumnsOut : FlowRecordColumnsOut {
    std::uint32_t* src_as;
    std::uint32_t* dst_as;
    std::uint32_t* sampling_rate;
    std::uint8_t* exporter;
    std::uint8_t* src_payload;
    std::int64_t* src_payload_offsets;
};

class ExportDecoder {
public:
    // `cfg` must pass validate().
    explicit ExportDecoder(const ExportDecoderConfig& cfg);
    ~ExportDecoder();
    ExportDecoder(const ExportDecoder&) = delete;
    ExportDecoder& operator=(const ExportDecoder&) = delete;

    // Decodes one datagram of `n` bytes. Reads only [data, data + n).
    void decode(const std::uint8_t* data, std::size_t n, const ipv6_net_t& exporter,
                std::int64_t received_ms);

    // Records decoded and not yet drained.
    std::size_t ready() const noexcept;
    // Payload bytes of the next `k` (<= ready()) records.
    std::size_t payload_size(std::size_t k) const noexcept;
    // Moves the next `k` (<= ready()) records into `out`.
    void drain(std::size_t k, const ExportColumnsOut& out) noexcept;

    const ExportCounters& counters() const noexcept;
    // Templates held now (expired ones included until they are looked up).
    std::size_t templates_held() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nkclass
