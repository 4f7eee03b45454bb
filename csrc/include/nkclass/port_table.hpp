// Port and protocol rules: which application and activity a transport port
// (or a bare IP protocol such as ESP) suggests.
//
// Build once from rule rows, then look up without failure. A rule id is an
// index into the caller's rule list plus one; 0 means "no rule".
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "nkclass/prefix_table.hpp"  // Duplicates
#include "nkclass/types.hpp"

namespace nkclass {

inline constexpr std::uint8_t kProtoIcmp = 1;
inline constexpr std::uint8_t kProtoTcp = 6;
inline constexpr std::uint8_t kProtoUdp = 17;

// One rule row. `protocol` is an IP protocol number; 0 with ports means
// "TCP and UDP". For TCP/UDP rules [first_port, last_port] is inclusive; for
// any other protocol the ports are ignored and the rule applies to the
// protocol as a whole.
struct PortRule {
    std::uint8_t protocol;
    std::uint16_t first_port;
    std::uint16_t last_port;
};

class PortTable {
public:
    PortTable();

    // Narrower port ranges win over wider ones; among equally wide ranges
    // the later row wins. Two rows with the same protocol and range fail
    // the build under Duplicates::kError. Rule ids are row index + 1, so at
    // most 65535 rows.
    BuildStatus build(const PortRule* rows, std::size_t n, Duplicates dup);

    // The rule for a flow: the destination (server) port's rule if any,
    // else the source port's, for TCP and UDP; the protocol's rule otherwise.
    std::uint16_t rule_for(std::uint8_t protocol, std::uint16_t src_port,
                           std::uint16_t dst_port) const noexcept {
        const std::uint16_t* ports =
            protocol == kProtoTcp ? tcp_.data() : protocol == kProtoUdp ? udp_.data() : nullptr;
        if (ports == nullptr) return by_protocol_[protocol];
        const std::uint16_t r = ports[dst_port];
        return r ? r : ports[src_port];
    }

private:
    std::vector<std::uint16_t> tcp_;  // 65536 entries
    std::vector<std::uint16_t> udp_;  // 65536 entries
    std::array<std::uint16_t, 256> by_protocol_{};
};

}  // namespace nkclass
