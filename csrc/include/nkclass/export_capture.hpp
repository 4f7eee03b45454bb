// Flow export datagrams from a capture file: a pcap or pcapng of UDP
// export traffic (NetFlow v5/v9, IPFIX, sFlow) fed in chunks of any size;
// each UDP payload goes to an ExportDecoder with its source address as the
// exporter and its capture time as the receive time.
//
// Frames that are not IP, not UDP, malformed or IP fragments (an export
// datagram cut into fragments cannot be decoded from one of them) are
// counted and skipped. A corrupt or truncated capture stops at the bad
// record, as the flow meter does, and finish() reports it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "nkclass/export_decoder.hpp"
#include "nkclass/flow_meter.hpp"

namespace nkclass {

struct ExportCaptureCounters {
    std::uint64_t packets = 0;    // packet records read
    std::uint64_t udp = 0;        // of those, whole UDP datagrams decoded
    std::uint64_t not_udp = 0;    // non-IP, malformed or not UDP
    std::uint64_t fragments = 0;  // IP fragments, skipped
};

class ExportCapture {
public:
    // `cfg` must pass validate().
    explicit ExportCapture(const ExportDecoderConfig& cfg);
    ~ExportCapture();
    ExportCapture(const ExportCapture&) = delete;
    ExportCapture& operator=(const ExportCapture&) = delete;

    void feed(const std::uint8_t* data, std::size_t n);
    MeterStatus finish();

    ExportDecoder& decoder() noexcept;
    const ExportCaptureCounters& counters() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nkclass
