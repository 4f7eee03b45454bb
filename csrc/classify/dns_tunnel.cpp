// The DNS tunnelling stage (see dns_tunnel.hpp).
//
// One pass reads each DNS flow's first query and accumulates its zone's
// sums (zones and distinct names in hash tables keyed by their lowercased
// bytes); a second pass scores each zone once; a third writes each flow's
// mask. Only flows on port 53 with a query are touched, so the stage costs
// little on batches of other traffic.
#include "nkclass/dns_tunnel.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "nkclass/bytes.hpp"
#include "nkclass/dns_wire.hpp"

namespace nkclass {

namespace {

using bytes::be16;

// A question name's labels (at most 127 fit in 255 wire bytes) and type.
struct Question {
    static constexpr std::size_t kMaxLabels = 128;
    const std::uint8_t* label[kMaxLabels];
    std::uint8_t len[kMaxLabels];
    std::size_t count = 0;
    std::uint16_t qtype = 0;
};

// The question of the DNS standard query at the start of p[0, n), after the
// 2-byte length over TCP; false when the bytes are not one. The question
// name of a query is never compressed: a pointer or reserved label type is
// refused, as is a name past 255 wire bytes or the end of the bytes.
bool first_query(const std::uint8_t* p, std::size_t n, bool tcp, Question* q) noexcept {
    if (p == nullptr || !dns_message(tcp, &p, &n) || n < 12) return false;
    const std::uint16_t flags = be16(p + 2);
    if ((flags & 0x8000) != 0 || ((flags >> 11) & 0xf) != 0 || be16(p + 4) != 1) return false;
    std::size_t i = 12, wire = 1;
    q->count = 0;
    while (true) {
        if (i >= n) return false;
        const std::size_t l = p[i];
        if (l == 0) {
            ++i;
            break;
        }
        if (l > 63 || i + 1 + l > n) return false;
        wire += l + 1;
        if (wire > 255) return false;
        q->label[q->count] = p + i + 1;
        q->len[q->count] = static_cast<std::uint8_t>(l);
        ++q->count;
        i += 1 + l;
    }
    if (q->count == 0 || i + 4 > n) return false;
    q->qtype = be16(p + i);
    return true;
}

// The types tunnels put their data in (besides A, which ordinary lookups
// dominate): CNAME, NULL, MX, TXT, SRV and the private-use range.
bool data_type(std::uint16_t t) noexcept {
    return t == 5 || t == 10 || t == 15 || t == 16 || t == 33 || (t >= 65280 && t <= 65534);
}

// How many trailing labels form the zone (see dns_tunnel.hpp).
std::size_t zone_labels(const Question& q) noexcept {
    if (q.count <= 2) return q.count;
    const bool short_suffix = q.len[q.count - 1] == 2 && q.len[q.count - 2] <= 3;
    return short_suffix ? 3 : 2;
}

void append_lower(std::string* s, const std::uint8_t* p, std::size_t n) {
    for (std::size_t k = 0; k < n; ++k) s->push_back(bytes::lower(static_cast<char>(p[k])));
}

struct Zone {
    std::uint32_t flows = 0, names = 0, long_label = 0, data_type = 0;
    std::uint64_t queries = 0, subdomain_chars = 0;
    double entropy = 0;  // summed over flows
};

std::uint8_t score(const Zone& z, const DnsTunnelThresholds& t) noexcept {
    const std::uint64_t F = z.flows;  // below 2^32: name_chars * F cannot overflow
    std::uint8_t m = 0;
    if (z.subdomain_chars >= std::uint64_t(t.name_chars) * F) m |= 1u << 0;
    if (std::uint64_t(z.long_label) * 2 >= F) m |= 1u << 1;
    if (z.entropy >= t.entropy_bits * static_cast<double>(F)) m |= 1u << 2;
    if (std::uint64_t(z.data_type) * 2 >= F) m |= 1u << 3;
    if (z.names >= t.names) m |= 1u << 4;
    if (z.queries >= t.queries) m |= 1u << 5;
    return m;
}

}  // namespace

const char* validate_dns_tunnel(const DnsTunnelThresholds& t) noexcept {
    if (t.min_conditions > kDnsTunnelConditions) return "dns_tunnel min_conditions must be 0..6";
    if (t.name_chars < 1 || t.name_chars > 253) return "dns_tunnel name_chars must be 1..253";
    if (t.label_bytes < 1 || t.label_bytes > 63) return "dns_tunnel label_bytes must be 1..63";
    // Written so that NaN fails too.
    if (!(t.entropy_bits > 0 && t.entropy_bits <= 8)) return "dns_tunnel entropy_bits must be in (0, 8]";
    if (t.names < 1) return "dns_tunnel names must be at least 1";
    if (t.queries < 1) return "dns_tunnel queries must be at least 1";
    return nullptr;
}

std::size_t dns_tunnel_conditions(const FlowColumns& cols, const DnsTunnelThresholds& t,
                                  std::uint8_t* out) {
    const std::size_t n = cols.n;
    for (std::size_t i = 0; i < n; ++i) out[i] = 0;
    constexpr std::uint32_t kNone = std::numeric_limits<std::uint32_t>::max();
    if (n == 0 || n >= kNone || (cols.src_payload.data == nullptr && cols.dst_payload.data == nullptr))
        return 0;

    std::unordered_map<std::string, std::uint32_t> zone_ids;
    std::unordered_set<std::string> names;
    std::vector<Zone> zones;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> members;  // (flow, zone)
    Question q;
    std::string zone_key, name_key;
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t proto = cols.protocol[i];
        if ((proto != 6 && proto != 17) || (cols.src_port[i] != 53 && cols.dst_port[i] != 53))
            continue;
        const bool tcp = proto == 6;
        if (!first_query(cols.src_payload.at(i), cols.src_payload.length(i), tcp, &q) &&
            !first_query(cols.dst_payload.at(i), cols.dst_payload.length(i), tcp, &q))
            continue;
        const std::size_t sub = q.count - zone_labels(q);
        zone_key.clear();
        for (std::size_t k = sub; k < q.count; ++k) {
            if (k != sub) zone_key.push_back('.');
            append_lower(&zone_key, q.label[k], q.len[k]);
        }
        const auto [it, fresh] = zone_ids.try_emplace(zone_key, std::uint32_t(zones.size()));
        if (fresh) zones.emplace_back();
        Zone& z = zones[it->second];
        members.emplace_back(static_cast<std::uint32_t>(i), it->second);

        name_key.clear();
        std::uint32_t counts[256] = {};
        std::uint64_t chars = 0;
        bool long_label = false;
        for (std::size_t k = 0; k < sub; ++k) {
            append_lower(&name_key, q.label[k], q.len[k]);
            name_key.push_back('.');
            for (std::size_t b = 0; b < q.len[k]; ++b)
                ++counts[static_cast<std::uint8_t>(bytes::lower(static_cast<char>(q.label[k][b])))];
            chars += q.len[k];
            long_label = long_label || q.len[k] >= t.label_bytes;
        }
        name_key += zone_key;
        z.flows += 1;
        z.names += names.insert(name_key).second;
        z.long_label += long_label;
        z.data_type += data_type(q.qtype);
        z.subdomain_chars += sub == 0 ? 0 : chars + (sub - 1);
        if (chars != 0) {
            double sum = 0;
            for (std::uint32_t c : counts)
                if (c != 0) sum += c * std::log2(static_cast<double>(c));
            z.entropy += std::log2(static_cast<double>(chars)) - sum / static_cast<double>(chars);
        }
        const std::uint64_t flow_queries =
            cols.packets != nullptr && cols.packets[i] / 2 > 1 ? cols.packets[i] / 2 : 1;
        z.queries = z.queries > std::numeric_limits<std::uint64_t>::max() - flow_queries
                        ? std::numeric_limits<std::uint64_t>::max()
                        : z.queries + flow_queries;
    }

    std::vector<std::uint8_t> masks(zones.size());
    for (std::size_t k = 0; k < zones.size(); ++k)
        masks[k] = zones[k].queries >= t.min_queries
                       ? static_cast<std::uint8_t>(score(zones[k], t) | kDnsTunnelMember)
                       : 0;
    for (const auto& [flow, zone] : members) out[flow] = masks[zone];
    return zones.size();
}

}  // namespace nkclass
