// sFlow v5 datagrams into records (see nkclass/export_decoder.hpp): one
// record per flow sample, its sampled header decoded by the flow meter's
// frame decoder, counts scaled by the sampling rate.
#include <algorithm>

#include "../meter/packet_decode.hpp"
#include "export_internal.hpp"
#include "nkclass/bytes.hpp"

namespace nkclass::collect {

using bytes::be32;

namespace {

// sFlow structures are XDR: big-endian 32-bit words, opaque data padded
// to a multiple of four bytes.
constexpr std::uint32_t kFlowSample = 1;
constexpr std::uint32_t kCounterSample = 2;
constexpr std::uint32_t kFlowSampleExpanded = 3;
constexpr std::uint32_t kCounterSampleExpanded = 4;
constexpr std::uint32_t kRawHeader = 1;
constexpr std::uint32_t kSampledIpv4 = 2;
constexpr std::uint32_t kSampledIpv6 = 3;
constexpr std::uint32_t kExtendedGateway = 1003;
// Header protocols of the raw packet header record.
constexpr std::uint32_t kHeaderEthernet = 1;
constexpr std::uint32_t kHeaderIpv4 = 11;
constexpr std::uint32_t kHeaderIpv6 = 12;
// Bounds against garbage counts (a datagram holds far fewer).
constexpr std::uint32_t kMaxSamples = 4096;

std::size_t padded(std::size_t n) { return (n + 3) & ~std::size_t(3); }

// Reads an sFlow address (type word, then 4 or 16 bytes); returns the bytes
// it took, 0 when damaged.
std::size_t read_address(const std::uint8_t* p, std::size_t n, ipv6_net_t* out) {
    if (n < 4) return 0;
    const std::uint32_t type = be32(p);
    if (type == 1 && n >= 8) {
        *out = map_ipv4(be32(p + 4));
        return 8;
    }
    if (type == 2 && n >= 20) {
        std::memcpy(out->bytes, p + 4, 16);
        return 20;
    }
    if (type == 0) {  // unknown address: no bytes follow
        *out = ipv6_net_t{};
        return 4;
    }
    return 0;
}

struct SampleParts {
    const std::uint8_t* header = nullptr;  // raw packet header record
    std::size_t header_len = 0;
    std::uint32_t header_protocol = 0;
    std::uint32_t frame_length = 0;
    const std::uint8_t* sampled_ip = nullptr;  // sampled IPv4/IPv6 record
    bool sampled_v6 = false;
    std::uint32_t src_as = 0, dst_as = 0;
    bool has_gateway = false;
};

// Extended gateway: next hop, router AS, source AS, source peer AS, then
// the destination AS path (segments of type, count, ASNs); the last AS of
// the path is the destination's.
bool read_gateway(const std::uint8_t* p, std::size_t n, SampleParts* parts) {
    ipv6_net_t next_hop;
    std::size_t at = read_address(p, n, &next_hop);
    if (at == 0 || n - at < 16) return false;
    parts->src_as = be32(p + at + 4);
    std::uint32_t segments = be32(p + at + 12);
    at += 16;
    std::uint32_t dst_as = 0;
    for (std::uint32_t i = 0; i < segments; ++i) {
        if (n - at < 8) return false;
        const std::uint32_t count = be32(p + at + 4);
        at += 8;
        if (count > (n - at) / 4) return false;
        if (count != 0) dst_as = be32(p + at + 4 * (count - 1));
        at += 4 * std::size_t(count);
    }
    parts->dst_as = dst_as;
    parts->has_gateway = true;
    return true;
}

// One flow sample's body from its record count on; false when damaged.
bool read_flow_records(const std::uint8_t* p, std::size_t n, SampleParts* parts) {
    if (n < 4) return false;
    const std::uint32_t records = be32(p);
    std::size_t at = 4;
    for (std::uint32_t i = 0; i < records; ++i) {
        if (n - at < 8) return false;
        const std::uint32_t tag = be32(p + at);
        const std::size_t length = be32(p + at + 4);
        at += 8;
        if (length > n - at) return false;
        const std::uint8_t* r = p + at;
        at += length;
        if ((tag >> 12) != 0) continue;  // enterprise formats: skipped
        switch (tag & 0xFFF) {
            case kRawHeader: {
                if (length < 16) return false;
                const std::size_t header_len = be32(r + 12);
                if (header_len > length - 16) return false;
                parts->header_protocol = be32(r);
                parts->frame_length = be32(r + 4);
                parts->header = r + 16;
                parts->header_len = header_len;
                break;
            }
            case kSampledIpv4:
                if (length < 32) return false;
                parts->sampled_ip = r;
                parts->sampled_v6 = false;
                break;
            case kSampledIpv6:
                if (length < 56) return false;
                parts->sampled_ip = r;
                parts->sampled_v6 = true;
                break;
            case kExtendedGateway:
                if (!read_gateway(r, length, parts)) return false;
                break;
            default: break;
        }
    }
    return true;
}

std::uint32_t link_type_of(std::uint32_t header_protocol) {
    switch (header_protocol) {
        case kHeaderEthernet: return meter::kLinkEthernet;
        case kHeaderIpv4: return meter::kLinkIpv4;
        case kHeaderIpv6: return meter::kLinkIpv6;
        default: return ~0u;  // decode_frame counts it as non-IP
    }
}

void emit_sample(DecoderState& s, const SampleParts& parts, std::uint32_t rate,
                 const ipv6_net_t& exporter, std::int64_t received_ms) {
    meter::PacketInfo pkt;
    Record r{};
    std::memset(&r, 0, sizeof r);
    std::uint64_t frame_length = 0;
    const std::uint8_t* payload = nullptr;
    std::size_t payload_len = 0;
    if (parts.header != nullptr &&
        meter::decode_frame(link_type_of(parts.header_protocol), parts.header,
                            parts.header_len, &pkt) == meter::Decoded::kIp) {
        r.src = pkt.src;
        r.dst = pkt.dst;
        r.src_port = pkt.src_port;
        r.dst_port = pkt.dst_port;
        r.protocol = pkt.protocol;
        r.tcp_flags = pkt.tcp_flags;
        frame_length = parts.frame_length;
        payload = pkt.payload;
        payload_len = std::min<std::size_t>(pkt.payload_len, s.cfg.payload_bytes);
    } else if (parts.sampled_ip != nullptr) {
        const std::uint8_t* q = parts.sampled_ip;
        frame_length = be32(q);
        r.protocol = std::uint8_t(be32(q + 4));
        std::size_t at = 8;
        if (parts.sampled_v6) {
            std::memcpy(r.src.bytes, q + 8, 16);
            std::memcpy(r.dst.bytes, q + 24, 16);
            at = 40;
        } else {
            r.src = map_ipv4(be32(q + 8));
            r.dst = map_ipv4(be32(q + 12));
            at = 16;
        }
        r.src_port = std::uint16_t(be32(q + at));
        r.dst_port = std::uint16_t(be32(q + at + 4));
        r.tcp_flags = std::uint8_t(be32(q + at + 8));
    } else {
        ++s.counters.sflow_non_ip;
        return;
    }
    r.exporter = exporter;
    r.ts_start = r.ts_end = received_ms;
    r.packets = rate;
    r.bytes = frame_length * rate;
    r.src_as = parts.src_as;
    r.dst_as = parts.dst_as;
    r.sampling_rate = rate;
    r.payload_at = s.out.payload.size();
    r.payload_len = std::uint32_t(payload_len);
    if (payload_len != 0) s.out.payload.insert(s.out.payload.end(), payload, payload + payload_len);
    s.out.rows.push_back(r);
    ++s.counters.records;
}

}  // namespace

void decode_sflow(DecoderState& s, const std::uint8_t* p, std::size_t n,
                  const ipv6_net_t& exporter, std::int64_t received_ms) {
    ++s.counters.sflow;
    ipv6_net_t agent;
    std::size_t at = n >= 4 ? read_address(p + 4, n - 4, &agent) : 0;
    if (at == 0 || n - 4 - at < 16) {
        ++s.counters.decode_errors;
        return;
    }
    at += 4;
    const std::uint32_t samples = be32(p + at + 12);
    at += 16;
    if (samples > kMaxSamples) {
        ++s.counters.decode_errors;
        return;
    }
    for (std::uint32_t i = 0; i < samples; ++i) {
        if (n - at < 8) {
            ++s.counters.decode_errors;
            return;
        }
        const std::uint32_t tag = be32(p + at);
        const std::size_t length = be32(p + at + 4);
        at += 8;
        if (length > n - at) {
            ++s.counters.decode_errors;
            return;
        }
        const std::uint8_t* body = p + at;
        at += padded(length) <= n - at ? padded(length) : length;
        if ((tag >> 12) != 0) continue;
        const std::uint32_t format = tag & 0xFFF;
        if (format == kCounterSample || format == kCounterSampleExpanded) {
            ++s.counters.sflow_counter_samples;
            continue;
        }
        if (format != kFlowSample && format != kFlowSampleExpanded) continue;
        ++s.counters.sflow_flow_samples;
        // The rate and where the record list starts differ by format.
        const std::size_t rate_at = format == kFlowSample ? 8 : 12;
        const std::size_t records_at = format == kFlowSample ? 28 : 40;
        if (length < records_at + 4) {
            ++s.counters.decode_errors;
            continue;
        }
        const std::uint32_t rate = be32(body + rate_at);
        if (rate == 0) {
            ++s.counters.sampling_zero;
            continue;
        }
        SampleParts parts;
        if (!read_flow_records(body + records_at, length - records_at, &parts)) {
            ++s.counters.decode_errors;
            continue;
        }
        emit_sample(s, parts, rate, exporter, received_ms);
    }
}

}  // namespace nkclass::collect
