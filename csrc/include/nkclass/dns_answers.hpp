// DNS responses: the addresses a query name resolved to (A, AAAA, through
// CNAME chains), for learning address -> name mappings from the wire.
//
// The bytes are untrusted: every read is bounds-checked against `len`,
// compression pointers must point strictly backwards (no loops) and at most
// kMaxPointers are followed per name, names longer than 255 wire bytes are
// refused. A truncated message yields the records that are complete.
// No allocation, no global state: thread-safe and noexcept.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nkclass/detectors.hpp"
#include "nkclass/types.hpp"

namespace nkclass {

struct DnsAddressAnswer {
    ipv6_net_t address;  // IPv4 answers as ::ffff:a.b.c.d
    std::uint32_t ttl;   // seconds; a TTL with the top bit set counts as 0 (RFC 2181 8)
};

struct DnsAnswers {
    static constexpr std::size_t kMaxAddresses = 32;  // more are ignored
    static constexpr std::size_t kMaxChain = 8;       // CNAME names followed
    static constexpr std::size_t kMaxPointers = 32;   // compression hops per name
    char qname[kMaxName + 1];  // the question's name: lowercase, no trailing dot, NUL-ended
    std::uint8_t qname_len = 0;
    std::uint8_t n = 0;
    DnsAddressAnswer answers[kMaxAddresses];
};

// Parses one DNS message. `tcp` says the message is prefixed by its 2-byte
// length (DNS over TCP). Succeeds (returns true, out->n >= 1) only for a
// standard-query response (QR set, opcode 0, RCODE 0) with one question of
// class IN whose name is printable, holding at least one A or AAAA record
// of class IN in the answer section whose owner is the question name or a
// name a CNAME in the answer section leads to from it (records of other
// names are not taken: an answer section cannot teach what it was not
// asked). Records after the first malformed one are ignored.
bool parse_dns_answers(const std::uint8_t* p, std::size_t len, bool tcp,
                       DnsAnswers* out) noexcept;

}  // namespace nkclass
