// Port rule tables (see port_table.hpp).
#include "nkclass/port_table.hpp"

#include <algorithm>
#include <numeric>
#include <set>
#include <tuple>

namespace nkclass {

PortTable::PortTable() : by_port_(2 * kUdp, 0) {}

namespace {

bool is_transport(std::uint8_t protocol) {
    return protocol == 0 || protocol == kProtoTcp || protocol == kProtoUdp;
}

}  // namespace

BuildStatus PortTable::build(const PortRule* rows, std::size_t n, Duplicates dup) {
    if (n > 65535) return BuildStatus::failure(65535, "more than 65535 port rules");
    std::vector<PortRule> norm(rows, rows + n);
    for (std::size_t i = 0; i < n; ++i) {
        if (!is_transport(norm[i].protocol)) {
            norm[i].first_port = norm[i].last_port = 0;  // ports mean nothing here
        } else if (norm[i].first_port > norm[i].last_port) {
            return BuildStatus::failure(i, "port range ends before it starts");
        }
    }
    auto width = [&norm](std::size_t i) { return unsigned(norm[i].last_port - norm[i].first_port); };
    if (dup == Duplicates::kError) {
        std::set<std::tuple<std::uint8_t, std::uint16_t, std::uint16_t>> seen;
        for (std::size_t i = 0; i < n; ++i)
            if (!seen.emplace(norm[i].protocol, norm[i].first_port, norm[i].last_port).second)
                return BuildStatus::failure(i, "duplicate port rule");
    }
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), std::size_t(0));
    // Widest first so narrower ranges paint over them; stable, so among
    // equally wide rules the later row paints last and wins.
    std::stable_sort(order.begin(), order.end(),
                     [&](std::size_t a, std::size_t b) { return width(a) > width(b); });
    std::fill(by_port_.begin(), by_port_.end(), 0);
    by_protocol_.fill(0);
    for (std::size_t k = 0; k < n; ++k) {
        const PortRule& r = norm[order[k]];
        const auto id = static_cast<std::uint16_t>(order[k] + 1);
        if (r.protocol == 0 || r.protocol == kProtoTcp)
            std::fill(by_port_.begin() + r.first_port, by_port_.begin() + r.last_port + 1, id);
        if (r.protocol == 0 || r.protocol == kProtoUdp)
            std::fill(by_port_.begin() + kUdp + r.first_port,
                      by_port_.begin() + kUdp + r.last_port + 1, id);
        if (!is_transport(r.protocol)) by_protocol_[r.protocol] = id;
    }
    return BuildStatus::success();
}

}  // namespace nkclass
