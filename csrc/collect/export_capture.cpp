// ExportCapture: the capture container parser and frame decoder of the flow
// meter, feeding UDP payloads to an ExportDecoder.
#include "nkclass/export_capture.hpp"

#include "../meter/packet_decode.hpp"
#include "../meter/pcap_container.hpp"

namespace nkclass {

namespace {
constexpr std::uint8_t kUdp = 17;
}

struct ExportCapture::Impl final : meter::PacketSink {
    explicit Impl(const ExportDecoderConfig& cfg) : decoder(cfg), capture(*this) {}

    void on_packet(std::uint32_t link_type, std::int64_t ts_ms, const std::uint8_t* frame,
                   std::uint32_t caplen, std::uint32_t, bool, std::uint32_t) override {
        ++counters.packets;
        meter::PacketInfo pkt;
        if (meter::decode_frame(link_type, frame, caplen, &pkt) != meter::Decoded::kIp ||
            pkt.protocol != kUdp) {
            ++counters.not_udp;
            return;
        }
        if (pkt.fragment) {
            ++counters.fragments;
            return;
        }
        ++counters.udp;
        decoder.decode(pkt.payload, pkt.payload_len, pkt.src, ts_ms);
    }

    ExportDecoder decoder;
    meter::ChunkedCapture capture;
    ExportCaptureCounters counters;
};

ExportCapture::ExportCapture(const ExportDecoderConfig& cfg) : impl_(new Impl(cfg)) {}
ExportCapture::~ExportCapture() = default;

void ExportCapture::feed(const std::uint8_t* data, std::size_t n) {
    impl_->capture.feed(data, n, [] {});  // payloads are decoded as they arrive
}

MeterStatus ExportCapture::finish() { return impl_->capture.finish(); }

ExportDecoder& ExportCapture::decoder() noexcept { return impl_->decoder; }

const ExportCaptureCounters& ExportCapture::counters() const noexcept {
    return impl_->counters;
}

}  // namespace nkclass
