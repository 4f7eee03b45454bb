// Native pcap / pcapng flow meter: feed it the bytes of a capture file in
// chunks of any size, drain bidirectional flow records as columns.
//
// Contract
// - Input: a classic pcap file (either byte order, microsecond magic
//   0xa1b2c3d4 or nanosecond magic 0xa1b23c4d) or a pcapng file (sections of
//   either byte order; IDB, EPB and SPB are read, other blocks skipped).
//   Chunks may split records anywhere; memory stays bounded by one record
//   (at most kMaxBlockBytes) plus the flow table plus undrained records.
// - Link types: Ethernet (1, with 802.1Q/802.1ad/QinQ tags), Linux SLL (113)
//   and SLL2 (276), raw IP (12, 14, 101, 228, 229), BSD loopback (0).
//   Other link types count every packet as non-IP.
// - Tunnels: with FlowMeterConfig::decapsulate, tunnelled IP packets count
//   as their inner packets; the tunnel kind is part of the flow key.
// - Flows: keyed by the unordered 5-tuple; ports are 0 for protocols other
//   than TCP/UDP and for non-first IP fragments. `src` is the sender of the
//   flow's first packet. Addresses are ipv6_net_t (network byte order), IPv4
//   as ::ffff:a.b.c.d. Ports are host byte order integers.
// - Units: timestamps are milliseconds since the Unix epoch (UTC), truncated
//   from the capture's resolution. `bytes` sums the frame length on the wire
//   (pcap orig_len, i.e. including the link-layer header) of both directions,
//   matching the flow-record convention of the reference DPI engine used for
//   tests/data/pcap/expected_flows.csv; `packets` likewise sums both.
// - Wire lengths: a record's original length is checked, not trusted. It is
//   replaced by the captured length, and counted in `wire_len_fixed`, when it
//   is below the captured length, above kMaxWireLen, above the snap length of
//   a record the snap length did not cut (captured length below it: a longer
//   frame would have been cut), or more than kMaxTrailerBytes past an uncut
//   frame whose IP header says the packet ends inside the captured bytes:
//   such a record's wire length cannot be right, while its captured bytes
//   still decode. Captured lengths, which frame the file, are
//   never repaired: a bad one is corruption (see Errors).
// - Payload: the first `payload_bytes` L4 payload bytes each side sent. TCP
//   bytes are placed by sequence number relative to the side's first
//   segment (SYN counts one), retransmitted bytes are ignored, and the
//   prefix stops at the first hole. UDP payloads are concatenated in arrival
//   order; other protocols keep their whole IP payload (ICMP header
//   included).
// - Expiry: a flow is emitted when idle for idle_timeout_ms (by capture
//   time), when a packet arrives active_timeout_ms or more after its first
//   packet (the record is cut; the rest continues as a new record with the
//   same orientation), kCloseGraceMs after TCP RST or FINs from both sides
//   (so trailing ACKs stay in the flow), when the table is full (the least
//   recently seen flow is evicted and counted), and at finish(). The table
//   is full when it holds max_flows flows, or when a new flow or a new
//   payload buffer would take its memory past max_memory_bytes; closed flows
//   go first, then the least recently seen (never the packet's own flow).
// - Stratum: TCP flows whose first payload segments (of either side, up to
//   kStratumProbes) start a JSON object have every in-order segment
//   scanned for stratum share submissions and the pool's share difficulty
//   (nkclass/stratum_scan.hpp), whatever payload_bytes is: the counts cover
//   the record's whole life. A record cut by the active timeout starts its
//   continuation with a zero share count and the difficulty known so far.
// - Memory: the table holds kFlowStateBytes per flow plus, for each side that
//   sent payload, one buffer of payload_buffer_bytes(payload_bytes) (the
//   prefix and a bitmap of out-of-order bytes), plus kStratumStateBytes for
//   a flow whose shares are counted: at most peak_flow_bytes(payload_bytes)
//   per flow, e.g. 1,728 bytes at the default 512 and 148,030 bytes at 65535. max_memory_bytes bounds the sum; on top
//   come one record being assembled (kMaxBlockBytes at most) and the emitted
//   records not yet drained (finish() copies the whole table's payloads
//   there, so drain as you feed).
// - Errors: a corrupt record stops parsing after every complete packet
//   before it; finish() then reports the reason and the byte offset of the
//   record. Input ending mid-record is reported as truncated. No input can
//   make the meter read out of bounds.
// - Thread-safety: none inside one FlowMeter; use one per thread. Distinct
//   meters share nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "nkclass/flow_columns.hpp"
#include "nkclass/types.hpp"

namespace nkclass {

// Largest captured length accepted for one packet; anything larger is a
// corrupt header (real snap lengths are at most 262144).
inline constexpr std::uint32_t kMaxCaplen = 262144;
// Largest pcapng block accepted (options and name blocks can exceed a packet).
inline constexpr std::uint32_t kMaxBlockBytes = 16u << 20;
// How long a TCP flow closed by RST or FIN/FIN waits for stray packets.
inline constexpr std::int64_t kCloseGraceMs = 5000;
// Largest payload prefix per direction.
inline constexpr std::uint32_t kMaxPayloadBytes = 65535;
// Largest believable original (wire) length of one frame: libpcap's largest
// snap length, above any link's frame size and any offloaded super-packet.
inline constexpr std::uint32_t kMaxWireLen = 262144;
// Bytes a link may add after a complete IP packet that a capture leaves out
// (the Ethernet frame check sequence).
inline constexpr std::uint32_t kMaxTrailerBytes = 4;
// Table memory charged per flow besides payload buffers, an upper bound: the
// flow record (twice, for the slab's growth slack), its share of the hash
// index (at most half full, so up to four 8-byte buckets after a doubling)
// and its free-list entry.
inline constexpr std::size_t kFlowStateBytes = 320;
// Table memory charged for a flow whose stratum shares are counted (see
// nkclass/stratum_scan.hpp), an upper bound on its hash-map entry.
inline constexpr std::size_t kStratumStateBytes = 256;

// One side's payload buffer: the prefix plus one bit per byte.
constexpr std::size_t payload_buffer_bytes(std::uint32_t payload_bytes) noexcept {
    return std::size_t(payload_bytes) + (std::size_t(payload_bytes) + 7) / 8;
}
// The most table memory one flow can take (both sides sent payload).
constexpr std::size_t peak_flow_bytes(std::uint32_t payload_bytes) noexcept {
    return kFlowStateBytes + kStratumStateBytes + 2 * payload_buffer_bytes(payload_bytes);
}

struct FlowMeterConfig {
    std::uint32_t payload_bytes = 512;       // per direction, 0 .. kMaxPayloadBytes
    std::int64_t idle_timeout_ms = 120000;   // > 0
    std::int64_t active_timeout_ms = 1800000;  // > 0
    std::size_t max_flows = 1000000;         // 1 .. 2^30 flows held at once
    // Flow state and payload buffers held at once, at least
    // peak_flow_bytes(payload_bytes) (one flow always fits). The default
    // never binds before max_flows at the default payload_bytes.
    std::size_t max_memory_bytes = std::size_t(2) << 30;
    // Decode GRE (PPTP's included), VXLAN, Geneve, L2TPv2, L2TPv3 (Ethernet
    // pseudowires), IP-in-IP and 6in4 packets as the IP packets they carry (flows keyed and reported by the
    // inner addresses, FlowColumnsOut::tunnel naming the tunnel).
    bool decapsulate = true;
};

// Names of FlowColumnsOut::tunnel codes (0 = not tunnelled).
inline constexpr const char* kTunnelNames[] = {"none", "gre",  "pptp", "vxlan", "geneve",
                                               "ipip", "6in4", "l2tp", "l2tpv3"};

// Returns nullptr when `cfg` is valid, else a static reason.
const char* validate(const FlowMeterConfig& cfg) noexcept;

// Running totals since construction.
struct MeterCounters {
    std::uint64_t packets = 0;        // packet records read
    std::uint64_t bytes = 0;          // their wire lengths
    std::uint64_t non_ip = 0;         // frames that carry no IPv4/IPv6
    std::uint64_t malformed = 0;      // IP packets too short or inconsistent, skipped
    std::uint64_t ip_fragments = 0;   // IPv4 or IPv6 fragments (any offset)
    std::uint64_t flows_emitted = 0;  // records produced, evicted ones included
    std::uint64_t flows_evicted = 0;  // records forced out by a full table
    std::uint64_t memory_evictions = 0;  // of those, forced out by max_memory_bytes
    std::uint64_t wire_len_fixed = 0;    // records whose wire length was replaced
    std::uint64_t peak_memory_bytes = 0;  // most table memory held (<= max_memory_bytes)
    std::uint64_t truncated = 0;      // 1 when the input ended mid-record
};

// Outcome of a whole input, returned by finish().
struct MeterStatus {
    enum class Kind { kOk, kTruncated, kCorrupt };
    Kind kind = Kind::kOk;
    std::uint64_t offset = 0;  // byte offset of the bad or incomplete record
    std::string reason;        // empty when kOk
};

// Destination of drain(): the record columns of k rows (see
// nkclass/flow_columns.hpp), then the payloads: offsets have k + 1 entries
// starting at 0 into a buffer of payload_size(k, side) bytes. A side's
// payload and offsets may both be null: its payloads are then dropped.
struct FlowColumnsOut : FlowRecordColumnsOut {
    std::uint8_t* src_payload;
    std::int64_t* src_payload_offsets;
    std::uint8_t* dst_payload;
    std::int64_t* dst_payload_offsets;
    std::uint8_t* tunnel = nullptr;  // kTunnelNames code per row; nullptr: not written
    // Stratum counters per row (nullptr: not written): share submissions,
    // the latest share difficulty (NaN: none seen) and the StratumAlgo code.
    std::uint64_t* stratum_submits = nullptr;
    double* stratum_difficulty = nullptr;
    std::uint8_t* stratum_algo = nullptr;
};

class FlowMeter {
public:
    // `cfg` must pass validate().
    explicit FlowMeter(const FlowMeterConfig& cfg);
    ~FlowMeter();
    FlowMeter(const FlowMeter&) = delete;
    FlowMeter& operator=(const FlowMeter&) = delete;

    // Consumes the next `n` bytes of the file. Amortised O(n + packets).
    // Ignored after a corrupt record or after finish().
    void feed(const std::uint8_t* data, std::size_t n);

    // Adds one packet given without a capture file: `link_type` is a pcap
    // LINKTYPE_ value, `ts_ms` its capture time, `frame` its `caplen`
    // captured bytes (read during the call only) and `wire_len` its length
    // on the wire. A meter takes either feed() or add_packet(): returns
    // false (and ignores the packet) after bytes were fed, after finish(),
    // or for caplen above kMaxCaplen.
    bool add_packet(std::uint32_t link_type, std::int64_t ts_ms, const std::uint8_t* frame,
                    std::uint32_t caplen, std::uint32_t wire_len);

    // How the input stands so far: kCorrupt (reason, offset) once a record
    // stopped parsing, else kOk. finish() adds truncation.
    MeterStatus status() const;

    // Ends the input: emits every flow still in the table and reports how
    // the input ended. Later calls return the same status.
    MeterStatus finish();

    // Records emitted and not yet drained.
    std::size_t ready() const noexcept;
    // Payload bytes of the next `k` (<= ready()) records for one side.
    std::size_t payload_size(std::size_t k, bool src_side) const noexcept;
    // How many of the next `k` (<= ready()) records have payloads that fit
    // in `src_bytes` and `dst_bytes` together. O(result).
    std::size_t fitting(std::size_t k, std::size_t src_bytes, std::size_t dst_bytes) const noexcept;
    // Moves the next `k` (<= ready()) records into `out`.
    void drain(std::size_t k, const FlowColumnsOut& out) noexcept;

    const MeterCounters& counters() const noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nkclass
