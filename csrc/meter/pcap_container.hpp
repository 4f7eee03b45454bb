// pcap and pcapng container parsing (private): turns file bytes into
// (link type, timestamp, frame) packet records.
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "nkclass/flow_meter.hpp"

namespace nkclass::meter {

class PacketSink {
public:
    // `wire_len` is the record's original length as written (unchecked);
    // `uncut` is true when the record says no snap length cut the frame
    // (its captured length is below a known snap length, or there is none),
    // and `snaplen` is that snap length (0: none, or not known).
    virtual void on_packet(std::uint32_t link_type, std::int64_t ts_ms,
                           const std::uint8_t* frame, std::uint32_t caplen,
                           std::uint32_t wire_len, bool uncut, std::uint32_t snaplen) = 0;

protected:
    ~PacketSink() = default;
};

// What one parse() call did: `consumed` bytes held complete records (or
// headers); the record after them needs `need` bytes in all before it can
// be parsed (0 once parsing failed).
struct ParseStep {
    std::size_t consumed;
    std::size_t need;
};

class CaptureParser {
public:
    explicit CaptureParser(PacketSink& sink) : sink_(sink) {}

    // Parses the complete records at the start of [p, p + n), which begins
    // at `offset` in the file.
    ParseStep parse(const std::uint8_t* p, std::size_t n, std::uint64_t offset);

    bool failed() const noexcept { return !error_.empty(); }
    const std::string& error() const noexcept { return error_; }
    std::uint64_t error_offset() const noexcept { return error_offset_; }

private:
    struct Interface {
        std::uint32_t link_type;
        std::uint32_t snaplen;  // 0: no limit
        std::uint8_t tsresol;  // pcapng if_tsresol: 10^-v s, or 2^-(v & 0x7f) s if bit 7
    };
    enum class Format { kUnknown, kPcap, kPcapng };

    std::uint16_t rd16(const std::uint8_t* p) const noexcept;
    std::uint32_t rd32(const std::uint8_t* p) const noexcept;
    void fail(std::uint64_t offset, std::string reason);
    // Each returns the record's size, or 0 when more bytes are needed
    // (*need set) or parsing failed.
    std::size_t pcap_header(const std::uint8_t* p, std::size_t n, std::uint64_t off,
                            std::size_t* need);
    std::size_t pcap_record(const std::uint8_t* p, std::size_t n, std::uint64_t off,
                            std::size_t* need);
    std::size_t pcapng_block(const std::uint8_t* p, std::size_t n, std::uint64_t off,
                             std::size_t* need);
    void section_header(const std::uint8_t* b, std::size_t len, std::uint64_t off);
    void interface_description(const std::uint8_t* b, std::size_t len, std::uint64_t off);
    void enhanced_packet(const std::uint8_t* b, std::size_t len, std::uint64_t off);
    void simple_packet(const std::uint8_t* b, std::size_t len, std::uint64_t off);

    PacketSink& sink_;
    Format format_ = Format::kUnknown;
    bool big_endian_ = false;  // byte order of the current file or section
    std::uint32_t pcap_link_type_ = 0;
    std::uint32_t pcap_snaplen_ = 0;  // 0: not given
    bool pcap_nanos_ = false;
    std::vector<Interface> interfaces_;
    std::int64_t last_ts_ms_ = 0;  // for pcapng simple packets, which carry none
    std::string error_;
    std::uint64_t error_offset_ = 0;
};

// A CaptureParser fed chunks of any size: carries the start of a record cut
// by a chunk's end to the next chunk, copying at most one record's worth.
class ChunkedCapture {
public:
    explicit ChunkedCapture(PacketSink& sink) : parser_(sink) {}

    // Consumes the next `n` bytes; `settle()` runs after every parse, while
    // the frames handed to the sink are still valid (they point into the
    // bytes being parsed). Ignored after a corrupt record or finish().
    template <class Settle>
    void feed(const std::uint8_t* data, std::size_t n, Settle&& settle) {
        if (finished_) return;
        while (!pending_.empty() && n > 0 && !parser_.failed()) {
            const std::size_t take = std::min(n, need_ - pending_.size());
            pending_.insert(pending_.end(), data, data + take);
            data += take;
            n -= take;
            if (pending_.size() < need_) return;
            const std::size_t used = parse(pending_.data(), pending_.size(), settle);
            pending_.erase(pending_.begin(), pending_.begin() + std::ptrdiff_t(used));
        }
        if (parser_.failed() || n == 0) return;
        const std::size_t used = parse(data, n, settle);
        if (!parser_.failed()) pending_.assign(data + used, data + n);
    }

    // Ends the input and says how it ended (later calls: the same); with
    // `expect_input` false, no bytes at all is not a truncation (the
    // packets came another way).
    MeterStatus finish(bool expect_input = true);

    // Whether any bytes were fed; the status so far (corrupt or fine).
    bool started() const noexcept { return offset_ != 0 || !pending_.empty(); }
    MeterStatus status() const;

private:
    template <class Settle>
    std::size_t parse(const std::uint8_t* p, std::size_t n, Settle& settle) {
        const ParseStep step = parser_.parse(p, n, offset_);
        settle();
        offset_ += step.consumed;
        need_ = step.need;
        return step.consumed;
    }

    CaptureParser parser_;
    std::vector<std::uint8_t> pending_;  // the start of a record cut by the chunk end
    std::size_t need_ = 0;               // bytes the record at offset_ needs in all
    std::uint64_t offset_ = 0;           // file offset of the first unparsed byte
    bool finished_ = false;
    MeterStatus status_;
};

}  // namespace nkclass::meter
