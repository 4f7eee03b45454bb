// The columns every flow source (the pcap meter, the flow export decoder)
// drains its records into, and the row writers both drains share.
//
// Contract
// - FlowRecordColumnsOut: k rows each; addresses 16 bytes a row in network
//   byte order (IPv4 as ::ffff:a.b.c.d); ports host byte order; timestamps
//   milliseconds since the Unix epoch (UTC). Every pointer must be non-null
//   and hold k rows.
// - A payload column is one buffer plus k + 1 offsets starting at 0.
// - Thread-safety: the helpers write only through the pointers given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "nkclass/types.hpp"

namespace nkclass {

struct FlowRecordColumnsOut {
    std::int64_t* ts_start;
    std::int64_t* ts_end;
    std::uint8_t* src_ip;
    std::uint8_t* dst_ip;
    std::uint16_t* src_port;
    std::uint16_t* dst_port;
    std::uint8_t* protocol;
    std::uint64_t* packets;
    std::uint64_t* bytes;
    std::uint8_t* tcp_flags;
};

// Writes row `j` of `out` from a record with fields of the same names
// (`src` and `dst` as ipv6_net_t). O(1).
template <typename Record>
inline void put_record(const FlowRecordColumnsOut& out, std::size_t j, const Record& r) noexcept {
    out.ts_start[j] = r.ts_start;
    out.ts_end[j] = r.ts_end;
    std::memcpy(out.src_ip + 16 * j, r.src.bytes, 16);
    std::memcpy(out.dst_ip + 16 * j, r.dst.bytes, 16);
    out.src_port[j] = r.src_port;
    out.dst_port[j] = r.dst_port;
    out.protocol[j] = r.protocol;
    out.packets[j] = r.packets;
    out.bytes[j] = r.bytes;
    out.tcp_flags[j] = r.tcp_flags;
}

// Appends row `j`'s `len` payload bytes from `from` at `*at` in `data` and
// sets offsets[j + 1]; offsets[0] must already be 0. O(len).
inline void put_payload(std::uint8_t* data, std::int64_t* offsets, std::int64_t* at,
                        std::size_t j, const std::uint8_t* from, std::uint32_t len) noexcept {
    if (len != 0) std::memcpy(data + *at, from, len);
    *at += len;
    offsets[j + 1] = *at;
}

// Forgets the `k` rows just drained from the front of a queue of records
// (`rows` appended at the back, `payload` their bytes, `head` the first row
// not drained). Resets the queue once empty, so it never outgrows one drain
// cycle.
template <typename Queue>
inline void pop_drained(Queue& q, std::size_t k) noexcept {
    q.head += k;
    if (q.head == q.rows.size()) {
        q.rows.clear();
        q.payload.clear();
        q.head = 0;
    }
}

}  // namespace nkclass
