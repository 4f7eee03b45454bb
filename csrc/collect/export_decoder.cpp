// ExportDecoder: tells the protocol of a datagram, hands it to its decoder
// and moves the decoded records out as columns.
#include "nkclass/export_decoder.hpp"

#include "export_internal.hpp"
#include "nkclass/bytes.hpp"

namespace nkclass {

const char* validate(const ExportDecoderConfig& cfg) noexcept {
    if (cfg.template_timeout_ms <= 0) return "template_timeout_ms must be positive";
    if (cfg.max_templates < 1) return "max_templates must be at least 1";
    if (cfg.payload_bytes > 65535) return "payload_bytes must be at most 65535";
    return nullptr;
}

struct ExportDecoder::Impl {
    explicit Impl(const ExportDecoderConfig& cfg) : state(cfg) {}
    collect::DecoderState state;
};

ExportDecoder::ExportDecoder(const ExportDecoderConfig& cfg) : impl_(new Impl(cfg)) {}
ExportDecoder::~ExportDecoder() = default;

void ExportDecoder::decode(const std::uint8_t* data, std::size_t n, const ipv6_net_t& exporter,
                           std::int64_t received_ms) {
    collect::DecoderState& s = impl_->state;
    ++s.counters.datagrams;
    if (n >= 4 && bytes::be32(data) == 5) {
        collect::decode_sflow(s, data, n, exporter, received_ms);
        return;
    }
    const std::uint16_t version = n >= 2 ? bytes::be16(data) : 0;
    switch (version) {
        case 5: collect::decode_netflow_v5(s, data, n, exporter); return;
        case 9: collect::decode_templated(s, data, n, exporter, received_ms, false); return;
        case 10: collect::decode_templated(s, data, n, exporter, received_ms, true); return;
        default: ++s.counters.unknown_version; return;
    }
}

std::size_t ExportDecoder::ready() const noexcept {
    const collect::Output& o = impl_->state.out;
    return o.rows.size() - o.head;
}

std::size_t ExportDecoder::payload_size(std::size_t k) const noexcept {
    const collect::Output& o = impl_->state.out;
    std::size_t total = 0;
    for (std::size_t i = o.head; i < o.head + k; ++i) total += o.rows[i].payload_len;
    return total;
}

void ExportDecoder::drain(std::size_t k, const ExportColumnsOut& out) noexcept {
    collect::Output& o = impl_->state.out;
    std::int64_t at = 0;
    out.src_payload_offsets[0] = 0;
    for (std::size_t j = 0; j < k; ++j) {
        const collect::Record& r = o.rows[o.head + j];
        put_record(out, j, r);
        std::memcpy(out.exporter + 16 * j, r.exporter.bytes, 16);
        out.src_as[j] = r.src_as;
        out.dst_as[j] = r.dst_as;
        out.sampling_rate[j] = r.sampling_rate;
        put_payload(out.src_payload, out.src_payload_offsets, &at, j,
                    o.payload.data() + r.payload_at, r.payload_len);
    }
    pop_drained(o, k);
}

const ExportCounters& ExportDecoder::counters() const noexcept { return impl_->state.counters; }

std::size_t ExportDecoder::templates_held() const noexcept {
    return impl_->state.templates.size();
}

}  // namespace nkclass
