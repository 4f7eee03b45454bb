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
    // The protocol's table and rule are selected, not branched on: the
    // protocol varies flow to flow (masks and an offset, as GCC turns the
    // plain conditionals into branches). The source port's rule is read only
    // when the server port has none: source ports are spread over the whole
    // table, and reading every flow's cost more in misses (with the AS
    // table beside it in the caches) than the branch costs.
    std::uint16_t rule_for(std::uint8_t protocol, std::uint16_t src_port,
                           std::uint16_t dst_port) const noexcept {
        const bool udp = protocol == kProtoUdp;
        const std::uint16_t* ports = by_port_.data() + std::size_t{udp} * kUdp;
        const std::uint16_t by_dst = ports[dst_port];
        const std::uint16_t by_port = by_dst != 0 ? by_dst : ports[src_port];
        const bool transport_protocol = udp || protocol == kProtoTcp;
        const auto transport = static_cast<std::uint16_t>(-std::uint16_t{transport_protocol});
        return static_cast<std::uint16_t>((by_port & transport) |
                                          (by_protocol_[protocol] & ~transport));
    }

private:
    static constexpr std::size_t kUdp = 65536;  // where UDP's ports start in by_port_
    std::vector<std::uint16_t> by_port_;        // TCP's 65536 ports, then UDP's
    std::array<std::uint16_t, 256> by_protocol_{};
};

}  // namespace nkclass
