// pcap (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcap-04.html) and
// pcapng (draft-ietf-opsawg-pcapng) record parsing. Headers are read with
// the file's byte order; every length is bounded before the record is
// touched, so a corrupt length stops parsing instead of reading past it.
#include "pcap_container.hpp"

#include <cstdio>

#include "nkclass/bytes.hpp"
#include "nkclass/flow_meter.hpp"

namespace nkclass::meter {

namespace {

using bytes::be32;
using bytes::le32;

constexpr std::uint32_t kPcapMagicMicros = 0xa1b2c3d4;
constexpr std::uint32_t kPcapMagicNanos = 0xa1b23c4d;
constexpr std::uint32_t kPcapMagicMicrosSwapped = 0xd4c3b2a1;
constexpr std::uint32_t kPcapMagicNanosSwapped = 0x4d3cb2a1;
constexpr std::size_t kPcapHeaderBytes = 24;
constexpr std::size_t kPcapRecordHeaderBytes = 16;

constexpr std::uint32_t kBlockSectionHeader = 0x0a0d0d0a;  // same in both byte orders
constexpr std::uint32_t kBlockInterface = 1;
constexpr std::uint32_t kBlockSimplePacket = 3;
constexpr std::uint32_t kBlockEnhancedPacket = 6;
constexpr std::uint32_t kByteOrderMagic = 0x1a2b3c4d;
constexpr std::size_t kBlockMinBytes = 12;  // type, length, trailing length
constexpr std::uint16_t kOptTsResol = 9;
constexpr std::uint8_t kDefaultTsResol = 6;

inline std::size_t pad4(std::size_t n) noexcept { return (n + 3) & ~std::size_t(3); }

std::string hex32(std::uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

// Timestamps beyond this (year ~285000) are clamped, so the flow table's
// time differences can never overflow.
constexpr unsigned __int128 kMaxTimestampMs = std::uint64_t(1) << 53;

// pcapng timestamp units -> milliseconds, without overflow.
std::int64_t pcapng_ms(std::uint64_t ticks, std::uint8_t resol) noexcept {
    unsigned __int128 ms;
    if (resol & 0x80) {
        const unsigned shift = resol & 0x7f;
        ms = (static_cast<unsigned __int128>(ticks) * 1000u) >> shift;
    } else if (resol <= 3) {
        ms = ticks;
        for (unsigned i = resol; i < 3; ++i) ms *= 10;
    } else if (resol - 3 > 19) {
        ms = 0;  // finer than 10^-22 s: every 64-bit timestamp is below 1 ms
    } else {
        std::uint64_t div = 1;
        for (unsigned i = 3; i < resol; ++i) div *= 10;
        ms = ticks / div;
    }
    return static_cast<std::int64_t>(ms < kMaxTimestampMs ? ms : kMaxTimestampMs);
}

}  // namespace

std::uint16_t CaptureParser::rd16(const std::uint8_t* p) const noexcept {
    return big_endian_ ? static_cast<std::uint16_t>((p[0] << 8) | p[1])
                       : static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

std::uint32_t CaptureParser::rd32(const std::uint8_t* p) const noexcept {
    return big_endian_ ? be32(p) : le32(p);
}

void CaptureParser::fail(std::uint64_t offset, std::string reason) {
    if (!error_.empty()) return;
    error_ = std::move(reason);
    error_offset_ = offset;
}

ParseStep CaptureParser::parse(const std::uint8_t* p, std::size_t n, std::uint64_t offset) {
    std::size_t pos = 0;
    std::size_t need = 0;
    while (!failed()) {
        const std::uint8_t* r = p + pos;
        const std::size_t avail = n - pos;
        const std::uint64_t at = offset + pos;
        std::size_t used = 0;
        switch (format_) {
            case Format::kUnknown:
                if (avail < 4) {
                    need = 4;
                    return {pos, need};
                }
                if (le32(r) == kBlockSectionHeader) {
                    format_ = Format::kPcapng;
                    continue;
                }
                used = pcap_header(r, avail, at, &need);
                break;
            case Format::kPcap:
                used = pcap_record(r, avail, at, &need);
                break;
            case Format::kPcapng:
                used = pcapng_block(r, avail, at, &need);
                break;
        }
        if (used == 0) break;
        pos += used;
    }
    return {pos, failed() ? 0 : need};
}

std::size_t CaptureParser::pcap_header(const std::uint8_t* p, std::size_t n, std::uint64_t off,
                                       std::size_t* need) {
    const std::uint32_t magic = le32(p);
    if (magic == kPcapMagicMicros || magic == kPcapMagicNanos) {
        big_endian_ = false;
    } else if (magic == kPcapMagicMicrosSwapped || magic == kPcapMagicNanosSwapped) {
        big_endian_ = true;
    } else {
        fail(off, "not a pcap or pcapng file: unknown magic number " + hex32(be32(p)));
        return 0;
    }
    if (n < kPcapHeaderBytes) {
        *need = kPcapHeaderBytes;
        return 0;
    }
    pcap_nanos_ = rd32(p) == kPcapMagicNanos;
    // The upper bits of the link type field carry FCS information.
    pcap_link_type_ = rd32(p + 20) & 0xffff;
    pcap_snaplen_ = rd32(p + 16);
    format_ = Format::kPcap;
    return kPcapHeaderBytes;
}

std::size_t CaptureParser::pcap_record(const std::uint8_t* p, std::size_t n, std::uint64_t off,
                                       std::size_t* need) {
    if (n < kPcapRecordHeaderBytes) {
        *need = kPcapRecordHeaderBytes;
        return 0;
    }
    const std::uint32_t caplen = rd32(p + 8);
    if (caplen > kMaxCaplen) {
        fail(off, "packet record claims a captured length of " + std::to_string(caplen) +
                      " bytes, more than the " + std::to_string(kMaxCaplen) + "-byte limit");
        return 0;
    }
    const std::size_t size = kPcapRecordHeaderBytes + caplen;
    if (n < size) {
        *need = size;
        return 0;
    }
    const std::uint32_t frac = rd32(p + 4);
    const std::int64_t ts_ms = std::int64_t(rd32(p)) * 1000 +
                               (pcap_nanos_ ? frac / 1000000 : frac / 1000);
    // A classic header's snap length of 0 says nothing (pcapng's means none).
    const bool uncut = pcap_snaplen_ != 0 && caplen < pcap_snaplen_;
    sink_.on_packet(pcap_link_type_, ts_ms, p + kPcapRecordHeaderBytes, caplen, rd32(p + 12),
                    uncut, pcap_snaplen_);
    return size;
}

std::size_t CaptureParser::pcapng_block(const std::uint8_t* p, std::size_t n, std::uint64_t off,
                                        std::size_t* need) {
    if (n < kBlockMinBytes) {
        *need = kBlockMinBytes;
        return 0;
    }
    const std::uint32_t type = rd32(p);
    if (type == kBlockSectionHeader) {
        // A section fixes its own byte order, announced by the magic at +8.
        if (le32(p + 8) == kByteOrderMagic) big_endian_ = false;
        else if (be32(p + 8) == kByteOrderMagic) big_endian_ = true;
        else {
            fail(off, "pcapng section header has a bad byte-order magic " + hex32(be32(p + 8)));
            return 0;
        }
    }
    const std::uint32_t len = rd32(p + 4);
    if (len < kBlockMinBytes || len % 4 != 0 || len > kMaxBlockBytes) {
        fail(off, "pcapng block of type " + hex32(type) + " has an invalid length of " +
                      std::to_string(len) + " bytes");
        return 0;
    }
    if (n < len) {
        *need = len;
        return 0;
    }
    if (rd32(p + len - 4) != len) {
        fail(off, "pcapng block of type " + hex32(type) + ": trailing length " +
                      std::to_string(rd32(p + len - 4)) + " differs from the leading " +
                      std::to_string(len));
        return 0;
    }
    switch (type) {
        case kBlockSectionHeader: section_header(p, len, off); break;
        case kBlockInterface: interface_description(p, len, off); break;
        case kBlockEnhancedPacket: enhanced_packet(p, len, off); break;
        case kBlockSimplePacket: simple_packet(p, len, off); break;
        default: break;  // statistics, name resolution, custom blocks: not needed
    }
    return failed() ? 0 : len;
}

void CaptureParser::section_header(const std::uint8_t*, std::size_t len, std::uint64_t off) {
    if (len < 28) fail(off, "pcapng section header block is shorter than 28 bytes");
    interfaces_.clear();  // interface ids are numbered per section
}

void CaptureParser::interface_description(const std::uint8_t* b, std::size_t len,
                                          std::uint64_t off) {
    if (len < 20) {
        fail(off, "pcapng interface description block is shorter than 20 bytes");
        return;
    }
    Interface itf{rd16(b + 8), rd32(b + 12), kDefaultTsResol};
    const std::size_t end = len - 4;
    for (std::size_t o = 16; o + 4 <= end;) {
        const std::uint16_t code = rd16(b + o);
        const std::uint16_t size = rd16(b + o + 2);
        if (code == 0) break;  // opt_endofopt
        if (o + 4 + size > end) break;  // a bad option list does not hide the interface
        if (code == kOptTsResol && size >= 1) itf.tsresol = b[o + 4];
        o += 4 + pad4(size);
    }
    interfaces_.push_back(itf);
}

void CaptureParser::enhanced_packet(const std::uint8_t* b, std::size_t len, std::uint64_t off) {
    if (len < 32) {
        fail(off, "pcapng enhanced packet block is shorter than 32 bytes");
        return;
    }
    const std::uint32_t iface = rd32(b + 8);
    const std::uint32_t caplen = rd32(b + 20);
    if (caplen > kMaxCaplen || 28 + pad4(caplen) + 4 > len) {
        fail(off, "pcapng enhanced packet block claims a captured length of " +
                      std::to_string(caplen) + " bytes, more than its block of " +
                      std::to_string(len) + " bytes holds");
        return;
    }
    if (iface >= interfaces_.size()) {
        fail(off, "pcapng enhanced packet block names interface " + std::to_string(iface) +
                      ", but the section describes " + std::to_string(interfaces_.size()));
        return;
    }
    const Interface& itf = interfaces_[iface];
    const std::uint64_t ticks = (std::uint64_t(rd32(b + 12)) << 32) | rd32(b + 16);
    last_ts_ms_ = pcapng_ms(ticks, itf.tsresol);
    sink_.on_packet(itf.link_type, last_ts_ms_, b + 28, caplen, rd32(b + 24),
                    itf.snaplen == 0 || caplen < itf.snaplen, itf.snaplen);
}

void CaptureParser::simple_packet(const std::uint8_t* b, std::size_t len, std::uint64_t off) {
    if (len < 16 || interfaces_.empty()) {
        fail(off, "pcapng simple packet block is shorter than 16 bytes or has no interface");
        return;
    }
    const Interface& itf = interfaces_[0];
    const std::uint32_t wire_len = rd32(b + 8);
    std::uint32_t caplen = static_cast<std::uint32_t>(len - 16);
    if (wire_len < caplen) caplen = wire_len;
    if (itf.snaplen != 0 && itf.snaplen < caplen) caplen = itf.snaplen;
    // Simple packets carry no timestamp: they inherit the previous packet's.
    sink_.on_packet(itf.link_type, last_ts_ms_, b + 12, caplen, wire_len,
                    itf.snaplen == 0 || caplen < itf.snaplen, itf.snaplen);
}

MeterStatus ChunkedCapture::status() const {
    MeterStatus s;
    if (parser_.failed()) {
        s.kind = MeterStatus::Kind::kCorrupt;
        s.offset = parser_.error_offset();
        s.reason = parser_.error();
    }
    return s;
}

MeterStatus ChunkedCapture::finish(bool expect_input) {
    if (finished_) return status_;
    finished_ = true;
    if (parser_.failed()) {
        status_ = status();
    } else if (!pending_.empty() || (offset_ == 0 && expect_input)) {
        status_.kind = MeterStatus::Kind::kTruncated;
        status_.offset = offset_;
        status_.reason = offset_ == 0 && pending_.empty()
                             ? "the input is empty"
                             : "the input ends inside a record (" +
                                   std::to_string(pending_.size()) + " of its " +
                                   std::to_string(need_) + " bytes present)";
    }
    pending_.clear();
    pending_.shrink_to_fit();
    return status_;
}

}  // namespace nkclass::meter
