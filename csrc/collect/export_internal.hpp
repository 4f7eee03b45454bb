// Flow export decoding (private): the decoded record queue, the template
// cache and the per-protocol entry points shared by export_decoder.cpp,
// netflow.cpp and sflow.cpp.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <unordered_map>
#include <vector>

#include "nkclass/export_decoder.hpp"
#include "nkclass/types.hpp"

namespace nkclass::collect {

struct Record {
    std::int64_t ts_start;
    std::int64_t ts_end;
    ipv6_net_t src;
    ipv6_net_t dst;
    ipv6_net_t exporter;
    std::uint64_t packets;
    std::uint64_t bytes;
    std::uint32_t src_as;
    std::uint32_t dst_as;
    std::uint32_t sampling_rate;
    std::uint16_t src_port;
    std::uint16_t dst_port;
    std::uint8_t protocol;
    std::uint8_t tcp_flags;
    std::uint32_t payload_len;
    std::size_t payload_at;  // into Output::payload
};

// Decoded records waiting to be drained (appended at the back, drained
// from the front).
struct Output {
    std::vector<Record> rows;
    std::vector<std::uint8_t> payload;
    std::size_t head = 0;
};

// What a field of a template means to the canonical record.
enum class Role : std::uint8_t {
    kSkip,
    kOctets, kPackets, kOctetsTotal, kPacketsTotal,
    kProtocol, kTcpFlags, kSrcPort, kDstPort,
    kSrc4, kDst4, kSrc6, kDst6, kSrcAs, kDstAs,
    kFirstUptime, kLastUptime,        // ms of sysUptime (21, 22)
    kStartSec, kEndSec,               // 150, 151
    kStartMs, kEndMs,                 // 152, 153
    kStartNtp, kEndNtp,               // 154..157: NTP-format micro/nanoseconds
    kStartDeltaUs, kEndDeltaUs,       // 158, 159: before the export time
    kSysInitMs,                       // 160
    kSamplingInterval,                // 34, 50
    kSamplerId,                       // 48, 302
    kPacketInterval, kPacketSpace,    // 305, 306
};

inline constexpr std::uint16_t kVariableLength = 0xFFFF;

struct Field {
    std::uint16_t length;  // kVariableLength: variable (IPFIX)
    Role role;
};

struct Template {
    std::vector<Field> fields;
    std::size_t min_record_bytes = 0;  // fixed lengths + 1 per variable field
    bool variable = false;             // some field is of variable length
    bool options = false;
    std::int64_t received_ms = 0;
};

// Template cache key: exporter, version (9 or 10), source id or
// observation domain, template id.
struct TemplateKey {
    ipv6_net_t exporter;
    std::uint32_t domain;
    std::uint16_t template_id;
    std::uint8_t version;
    bool operator==(const TemplateKey& o) const noexcept {
        return std::memcmp(exporter.bytes, o.exporter.bytes, 16) == 0 && domain == o.domain &&
               template_id == o.template_id && version == o.version;
    }
};
struct TemplateKeyHash {
    std::size_t operator()(const TemplateKey& k) const noexcept {
        std::uint64_t a, b;
        std::memcpy(&a, k.exporter.bytes, 8);
        std::memcpy(&b, k.exporter.bytes + 8, 8);
        std::uint64_t h = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
        h ^= (std::uint64_t(k.domain) << 24) ^ (std::uint64_t(k.template_id) << 8) ^ k.version;
        h *= 0xBF58476D1CE4E5B9ull;
        return static_cast<std::size_t>(h ^ (h >> 31));
    }
};

// Sampling rates announced by options records, per (exporter, version,
// domain, sampler id); sampler id 0 holds a rate announced without one.
using SamplingKey = TemplateKey;  // template_id unused (0); sampler id below
struct SamplerKey {
    SamplingKey domain;
    std::uint64_t sampler;
    bool operator==(const SamplerKey& o) const noexcept {
        return domain == o.domain && sampler == o.sampler;
    }
};
struct SamplerKeyHash {
    std::size_t operator()(const SamplerKey& k) const noexcept {
        return TemplateKeyHash{}(k.domain) ^ (k.sampler * 0x94D049BB133111EBull);
    }
};

// Most sampler rates kept (a bound against exporters announcing endless ids).
inline constexpr std::size_t kMaxSamplers = 65536;

struct DecoderState {
    explicit DecoderState(const ExportDecoderConfig& c) : cfg(c) {}
    ExportDecoderConfig cfg;
    ExportCounters counters;
    Output out;
    std::unordered_map<TemplateKey, Template, TemplateKeyHash> templates;
    std::unordered_map<SamplerKey, std::uint32_t, SamplerKeyHash> samplers;

    Record& new_record() {
        out.rows.emplace_back();
        Record& r = out.rows.back();
        std::memset(&r, 0, sizeof r);
        return r;
    }
};

void decode_netflow_v5(DecoderState& s, const std::uint8_t* p, std::size_t n,
                       const ipv6_net_t& exporter);
// v9 (version 9) and IPFIX (version 10) share the template machinery.
void decode_templated(DecoderState& s, const std::uint8_t* p, std::size_t n,
                      const ipv6_net_t& exporter, std::int64_t received_ms, bool ipfix);
void decode_sflow(DecoderState& s, const std::uint8_t* p, std::size_t n,
                  const ipv6_net_t& exporter, std::int64_t received_ms);

}  // namespace nkclass::collect
