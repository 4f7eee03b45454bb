// The DNS message in a flow's payload, for the parsers that read one.
#pragma once

#include <cstddef>
#include <cstdint>

#include "nkclass/bytes.hpp"

namespace nkclass {

// Over TCP a DNS message follows its two-byte length (RFC 1035 4.2.2):
// steps `*p` past the prefix and cuts `*n` to that length. False when the
// bytes are too short for the prefix; over UDP the bytes are the message.
inline bool dns_message(bool tcp, const std::uint8_t** p, std::size_t* n) noexcept {
    if (!tcp) return true;
    if (*n < 2) return false;
    const std::size_t msg = bytes::be16(*p);
    *p += 2;
    *n -= 2;
    if (msg < *n) *n = msg;
    return true;
}

}  // namespace nkclass
