// NetFlow v5, NetFlow v9 and IPFIX datagrams into records (see
// nkclass/export_decoder.hpp for the contract).
#include <algorithm>
#include <optional>

#include "export_internal.hpp"
#include "nkclass/bytes.hpp"

namespace nkclass::collect {

using bytes::be16;
using bytes::be32;

namespace {

std::uint64_t be_uint(const std::uint8_t* p, std::size_t len) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < len; ++i) v = (v << 8) | p[i];
    return v;
}

void set_v4(ipv6_net_t* a, const std::uint8_t* p) noexcept { *a = map_ipv4(be32(p)); }

// NetFlow v5 --------------------------------------------------------------

constexpr std::size_t kV5Header = 24;
constexpr std::size_t kV5Record = 48;
constexpr std::size_t kV5MaxRecords = 30;

}  // namespace

void decode_netflow_v5(DecoderState& s, const std::uint8_t* p, std::size_t n,
                       const ipv6_net_t& exporter) {
    ++s.counters.netflow_v5;
    if (n < kV5Header) {
        ++s.counters.decode_errors;
        return;
    }
    const std::size_t count = be16(p + 2);
    const std::uint32_t uptime = be32(p + 4);
    const std::int64_t now_ms = std::int64_t(be32(p + 8)) * 1000 + be32(p + 12) / 1000000;
    const std::uint16_t sampling = be16(p + 22);
    const std::uint32_t rate = (sampling >> 14) != 0 && (sampling & 0x3FFF) != 0
                                   ? (sampling & 0x3FFFu) : 1u;
    const std::size_t fits = (n - kV5Header) / kV5Record;
    // A count above the format's 30 or past the datagram is damage; the
    // records that are whole are still read.
    if (count > kV5MaxRecords || count > fits || count == 0) ++s.counters.decode_errors;
    const std::size_t take = std::min({count, fits, kV5MaxRecords});
    for (std::size_t i = 0; i < take; ++i) {
        const std::uint8_t* r = p + kV5Header + i * kV5Record;
        Record& o = s.new_record();
        set_v4(&o.src, r);
        set_v4(&o.dst, r + 4);
        o.exporter = exporter;
        o.packets = std::uint64_t(be32(r + 16)) * rate;
        o.bytes = std::uint64_t(be32(r + 20)) * rate;
        // sysUptime-relative times; a signed difference survives the wrap.
        o.ts_start = now_ms - std::int32_t(uptime - be32(r + 24));
        o.ts_end = now_ms - std::int32_t(uptime - be32(r + 28));
        o.src_port = be16(r + 32);
        o.dst_port = be16(r + 34);
        o.tcp_flags = r[37];
        o.protocol = r[38];
        o.src_as = be16(r + 40);
        o.dst_as = be16(r + 42);
        o.sampling_rate = rate;
        ++s.counters.records;
    }
}

// v9 / IPFIX templates ----------------------------------------------------

namespace {

constexpr std::size_t kV9Header = 20;
constexpr std::size_t kIpfixHeader = 16;
constexpr std::size_t kSetHeader = 4;
constexpr std::uint16_t kMinDataSet = 256;
// No real template has more fields than this; more is garbage.
constexpr std::size_t kMaxTemplateFields = 512;
// NTP era 0 starts 2,208,988,800 s before the Unix epoch.
constexpr std::int64_t kNtpToUnixSeconds = 2208988800LL;

// The role of an IANA element (enterprise elements are always skipped) and
// whether `length` fits it. Reduced-size encoding (RFC 7011 section 6.2)
// lets unsigned counters take 1 to 8 bytes.
bool role_of(std::uint16_t id, std::uint16_t length, Role* role) {
    const bool var = length == kVariableLength;
    auto uint_upto = [&](Role r, std::uint16_t most) {
        *role = r;
        return !var && length >= 1 && length <= most;
    };
    auto exact = [&](Role r, std::uint16_t want) {
        *role = r;
        return length == want;
    };
    switch (id) {
        case 1: return uint_upto(Role::kOctets, 8);
        case 2: return uint_upto(Role::kPackets, 8);
        case 85: return uint_upto(Role::kOctetsTotal, 8);
        case 86: return uint_upto(Role::kPacketsTotal, 8);
        case 4: return uint_upto(Role::kProtocol, 1);
        case 6: return uint_upto(Role::kTcpFlags, 2);
        case 7: return uint_upto(Role::kSrcPort, 2);
        case 11: return uint_upto(Role::kDstPort, 2);
        case 8: return exact(Role::kSrc4, 4);
        case 12: return exact(Role::kDst4, 4);
        case 27: return exact(Role::kSrc6, 16);
        case 28: return exact(Role::kDst6, 16);
        case 16: return uint_upto(Role::kSrcAs, 4);
        case 17: return uint_upto(Role::kDstAs, 4);
        case 22: return exact(Role::kFirstUptime, 4);
        case 21: return exact(Role::kLastUptime, 4);
        case 150: return exact(Role::kStartSec, 4);
        case 151: return exact(Role::kEndSec, 4);
        case 152: return exact(Role::kStartMs, 8);
        case 153: return exact(Role::kEndMs, 8);
        case 154: case 156: return exact(Role::kStartNtp, 8);
        case 155: case 157: return exact(Role::kEndNtp, 8);
        case 158: return exact(Role::kStartDeltaUs, 4);
        case 159: return exact(Role::kEndDeltaUs, 4);
        case 160: return exact(Role::kSysInitMs, 8);
        case 34: case 50: return uint_upto(Role::kSamplingInterval, 4);
        case 48: case 302: return uint_upto(Role::kSamplerId, 8);
        case 305: return uint_upto(Role::kPacketInterval, 4);
        case 306: return uint_upto(Role::kPacketSpace, 4);
        default:
            *role = Role::kSkip;
            return true;
    }
}

std::int64_t ntp_to_unix_ms(std::uint64_t ntp) noexcept {
    const std::int64_t secs = std::int64_t(ntp >> 32) - kNtpToUnixSeconds;
    return secs * 1000 + std::int64_t(((ntp & 0xFFFFFFFFull) * 1000) >> 32);
}

// The values of one data or options record before they become a Record
// (unset: not in its template).
struct Values {
    std::optional<std::uint64_t> octets, packets, sampling, sampler, pkt_interval;
    std::uint64_t octets_total = 0, packets_total = 0, pkt_space = 0;
    std::optional<std::int64_t> start, end, sys_init_ms;
    std::optional<std::uint32_t> first_uptime, last_uptime, start_delta_us, end_delta_us;
};

struct Header {
    bool ipfix;
    std::uint32_t uptime_ms;  // v9 only
    std::int64_t export_ms;
    std::uint32_t domain;
};

class TemplatedDecoder {
public:
    TemplatedDecoder(DecoderState& s, const ipv6_net_t& exporter, std::int64_t received_ms,
                     const Header& h)
        : s_(s), exporter_(exporter), received_ms_(received_ms), h_(h) {}

    // Each returns false when the set was damaged (counted by the caller).
    bool templates(const std::uint8_t* p, std::size_t n, bool options);

private:
    TemplateKey key(std::uint16_t template_id) const {
        return TemplateKey{exporter_, h_.domain, template_id, std::uint8_t(h_.ipfix ? 10 : 9)};
    }
    void store(std::uint16_t template_id, Template&& t);
    void withdraw(std::uint16_t template_id);

    DecoderState& s_;
    ipv6_net_t exporter_;
    std::int64_t received_ms_;
    Header h_;
};

void TemplatedDecoder::store(std::uint16_t template_id, Template&& t) {
    ++s_.counters.templates;
    t.received_ms = received_ms_;
    const TemplateKey k = key(template_id);
    auto it = s_.templates.find(k);
    if (it != s_.templates.end()) {
        it->second = std::move(t);
    } else if (s_.templates.size() >= s_.cfg.max_templates) {
        ++s_.counters.templates_dropped;
    } else {
        s_.templates.emplace(k, std::move(t));
    }
}

void TemplatedDecoder::withdraw(std::uint16_t template_id) {
    // Template id 2 withdraws every template of the domain, 3 every options
    // template (RFC 7011 section 8.1).
    if (template_id == 2 || template_id == 3) {
        const bool options = template_id == 3;
        for (auto it = s_.templates.begin(); it != s_.templates.end();) {
            const TemplateKey& k = it->first;
            if (k.version == 10 && k.domain == h_.domain &&
                std::memcmp(k.exporter.bytes, exporter_.bytes, 16) == 0 &&
                it->second.options == options) {
                it = s_.templates.erase(it);
                ++s_.counters.templates_withdrawn;
            } else {
                ++it;
            }
        }
        return;
    }
    if (s_.templates.erase(key(template_id)) != 0) ++s_.counters.templates_withdrawn;
}

bool TemplatedDecoder::templates(const std::uint8_t* p, std::size_t n, bool options) {
    std::size_t at = 0;
    // Records until what is left is too short for a record header (padding).
    while (n - at >= 4) {
        const std::uint16_t template_id = be16(p + at);
        const std::size_t count = be16(p + at + 2);
        std::size_t scope_count = 0;
        std::size_t field_count = count;
        at += 4;
        if (h_.ipfix && count == 0) {  // withdrawal
            withdraw(template_id);
            continue;
        }
        if (options) {
            if (n - at < 2) return false;
            if (h_.ipfix) {
                scope_count = be16(p + at);
                at += 2;
                if (scope_count == 0 || scope_count > field_count) {
                    ++s_.counters.bad_templates;
                    return true;  // the rest of the set cannot be framed
                }
            } else {
                // v9: the two lengths are in bytes of (type, length) pairs.
                const std::size_t scope_bytes = count;
                const std::size_t option_bytes = be16(p + at);
                at += 2;
                if (scope_bytes % 4 != 0 || option_bytes % 4 != 0) {
                    ++s_.counters.bad_templates;
                    return true;
                }
                scope_count = scope_bytes / 4;
                field_count = scope_count + option_bytes / 4;
            }
        }
        if (template_id < kMinDataSet || field_count == 0 || field_count > kMaxTemplateFields) {
            ++s_.counters.bad_templates;
            return true;
        }
        Template t;
        t.options = options;
        t.fields.reserve(field_count);
        bool bad = false;
        std::size_t fixed = 0;
        for (std::size_t i = 0; i < field_count; ++i) {
            if (n - at < 4) return false;
            std::uint16_t id = be16(p + at);
            const std::uint16_t length = be16(p + at + 2);
            at += 4;
            bool enterprise = false;
            if (h_.ipfix && (id & 0x8000) != 0) {
                if (n - at < 4) return false;
                at += 4;  // the enterprise number: its elements are skipped
                enterprise = true;
                id &= 0x7FFF;
            }
            if (length == 0 || (!h_.ipfix && length == kVariableLength)) bad = true;
            Role role = Role::kSkip;
            // v9 options scope fields use their own type space (1 system,
            // 2 interface, ...): they are skipped, not mapped.
            const bool scope = i < scope_count && !h_.ipfix;
            if (!enterprise && !scope && !role_of(id, length, &role)) bad = true;
            if (length == kVariableLength) {
                t.variable = true;
                fixed += 1;
            } else {
                fixed += length;
            }
            t.fields.push_back(Field{length, role});
        }
        // A record longer than any datagram is absurd.
        if (bad || fixed > 65535 - kSetHeader - kIpfixHeader) {
            ++s_.counters.bad_templates;
            continue;
        }
        t.min_record_bytes = fixed;
        store(template_id, std::move(t));
    }
    return true;
}

std::uint32_t* lookup_rate(DecoderState& s, const SamplerKey& k) {
    auto it = s.samplers.find(k);
    return it == s.samplers.end() ? nullptr : &it->second;
}

// Calls visit(field, value, length) for each field of a record starting at
// `at`, whose framing the caller has checked (so no bound is tested here).
template <typename Visit>
void for_each_value(const Template& t, const std::uint8_t* p, std::size_t at, Visit&& visit) {
    for (const Field& f : t.fields) {
        std::size_t len = f.length;
        if (len == kVariableLength) {
            len = p[at++];
            if (len == 255) {
                len = be16(p + at);
                at += 2;
            }
        }
        visit(f, p + at, len);
        at += len;
    }
}

// Decodes one data set (the two passes share the framing checks of the
// first, so the second cannot go out of bounds).
bool data_set(DecoderState& s, const Template& t, const std::uint8_t* p, std::size_t n,
              const Header& h, const ipv6_net_t& exporter, const TemplateKey& domain_key) {
    std::size_t at = 0;
    while (n - at >= t.min_record_bytes) {
        const std::size_t start = at;
        // Framing pass: find the record's end without reading values.
        if (t.variable) {
            for (const Field& f : t.fields) {
                std::size_t len = f.length;
                if (len == kVariableLength) {
                    if (n - at < 1) return false;
                    len = p[at++];
                    if (len == 255) {
                        if (n - at < 2) return false;
                        len = be16(p + at);
                        at += 2;
                    }
                }
                if (n - at < len) return false;
                at += len;
            }
        } else {
            at += t.min_record_bytes;
        }
        Values v;
        if (t.options) {
            // Options records only announce sampling rates.
            ++s.counters.options_records;
            for_each_value(t, p, start, [&v](const Field& f, const std::uint8_t* q,
                                             std::size_t len) {
                switch (f.role) {
                    case Role::kSamplingInterval: v.sampling = be_uint(q, len); break;
                    case Role::kSamplerId: v.sampler = be_uint(q, len); break;
                    case Role::kPacketInterval: v.pkt_interval = be_uint(q, len); break;
                    case Role::kPacketSpace: v.pkt_space = be_uint(q, len); break;
                    default: break;
                }
            });
            std::uint64_t rate = 0;
            if (v.sampling) {
                rate = *v.sampling;
            } else if (v.pkt_interval) {
                const std::uint64_t interval = *v.pkt_interval;
                rate = interval == 0 ? 0 : (interval + v.pkt_space) / interval;
            } else {
                continue;  // options of another kind
            }
            if (rate == 0 || rate > 0xFFFFFFFFull) {
                ++s.counters.sampling_zero;
                continue;
            }
            const SamplerKey k{domain_key, v.sampler.value_or(0)};
            auto it = s.samplers.find(k);
            if (it != s.samplers.end()) {
                it->second = std::uint32_t(rate);
            } else if (s.samplers.size() < kMaxSamplers) {
                s.samplers.emplace(k, std::uint32_t(rate));
            }
            continue;
        }
        Record& o = s.new_record();
        o.exporter = exporter;
        for_each_value(t, p, start, [&v, &o](const Field& f, const std::uint8_t* q,
                                             std::size_t len) {
            switch (f.role) {
                case Role::kSkip: break;
                case Role::kOctets: v.octets = be_uint(q, len); break;
                case Role::kPackets: v.packets = be_uint(q, len); break;
                case Role::kOctetsTotal: v.octets_total = be_uint(q, len); break;
                case Role::kPacketsTotal: v.packets_total = be_uint(q, len); break;
                case Role::kProtocol: o.protocol = q[0]; break;
                case Role::kTcpFlags: o.tcp_flags = std::uint8_t(be_uint(q, len)); break;
                case Role::kSrcPort: o.src_port = std::uint16_t(be_uint(q, len)); break;
                case Role::kDstPort: o.dst_port = std::uint16_t(be_uint(q, len)); break;
                case Role::kSrc4: set_v4(&o.src, q); break;
                case Role::kDst4: set_v4(&o.dst, q); break;
                case Role::kSrc6: std::memcpy(o.src.bytes, q, 16); break;
                case Role::kDst6: std::memcpy(o.dst.bytes, q, 16); break;
                case Role::kSrcAs: o.src_as = std::uint32_t(be_uint(q, len)); break;
                case Role::kDstAs: o.dst_as = std::uint32_t(be_uint(q, len)); break;
                case Role::kFirstUptime: v.first_uptime = be32(q); break;
                case Role::kLastUptime: v.last_uptime = be32(q); break;
                case Role::kStartSec: v.start = std::int64_t(be32(q)) * 1000; break;
                case Role::kEndSec: v.end = std::int64_t(be32(q)) * 1000; break;
                case Role::kStartMs: v.start = std::int64_t(be_uint(q, 8)); break;
                case Role::kEndMs: v.end = std::int64_t(be_uint(q, 8)); break;
                case Role::kStartNtp: v.start = ntp_to_unix_ms(be_uint(q, 8)); break;
                case Role::kEndNtp: v.end = ntp_to_unix_ms(be_uint(q, 8)); break;
                case Role::kStartDeltaUs: v.start_delta_us = be32(q); break;
                case Role::kEndDeltaUs: v.end_delta_us = be32(q); break;
                case Role::kSysInitMs: v.sys_init_ms = std::int64_t(be_uint(q, 8)); break;
                case Role::kSamplingInterval: v.sampling = be_uint(q, len); break;
                case Role::kSamplerId: v.sampler = be_uint(q, len); break;
                case Role::kPacketInterval:
                case Role::kPacketSpace: break;
            }
        });
        // Times: absolute fields first, then sysUptime-relative ones (v9:
        // against the header's uptime and export time; IPFIX: from the
        // system's init time), then deltas, else the export time.
        auto uptime_ms = [&](std::uint32_t up) -> std::int64_t {
            if (!h.ipfix) return h.export_ms - std::int32_t(h.uptime_ms - up);
            return v.sys_init_ms ? *v.sys_init_ms + up : h.export_ms;
        };
        o.ts_start = v.start ? *v.start
                     : v.first_uptime ? uptime_ms(*v.first_uptime)
                     : v.start_delta_us ? h.export_ms - *v.start_delta_us / 1000
                                        : h.export_ms;
        o.ts_end = v.end ? *v.end
                   : v.last_uptime ? uptime_ms(*v.last_uptime)
                   : v.end_delta_us ? h.export_ms - *v.end_delta_us / 1000
                                    : o.ts_start;
        std::uint32_t rate = 1;
        if (v.sampling && *v.sampling != 0 && *v.sampling <= 0xFFFFFFFFull) {
            rate = std::uint32_t(*v.sampling);
        } else {
            if (v.sampling) ++s.counters.sampling_zero;
            const std::uint32_t* found =
                v.sampler ? lookup_rate(s, SamplerKey{domain_key, *v.sampler}) : nullptr;
            if (found == nullptr) found = lookup_rate(s, SamplerKey{domain_key, 0});
            if (found != nullptr) rate = *found;
        }
        const std::uint64_t packets = v.packets.value_or(v.packets_total);
        const std::uint64_t octets = v.octets.value_or(v.octets_total);
        o.packets = packets * rate;
        o.bytes = octets * rate;
        o.sampling_rate = rate;
        ++s.counters.records;
    }
    return true;
}

}  // namespace

void decode_templated(DecoderState& s, const std::uint8_t* p, std::size_t n,
                      const ipv6_net_t& exporter, std::int64_t received_ms, bool ipfix) {
    ++(ipfix ? s.counters.ipfix : s.counters.netflow_v9);
    const std::size_t header = ipfix ? kIpfixHeader : kV9Header;
    if (n < header) {
        ++s.counters.decode_errors;
        return;
    }
    // One count per damaged datagram, however many faults it has.
    bool damaged = false;
    struct CountOnce {
        bool& damaged;
        std::uint64_t& errors;
        ~CountOnce() { if (damaged) ++errors; }
    } count_once{damaged, s.counters.decode_errors};
    Header h{};
    h.ipfix = ipfix;
    if (ipfix) {
        h.export_ms = std::int64_t(be32(p + 4)) * 1000;
        h.domain = be32(p + 12);
        const std::size_t length = be16(p + 2);
        // The message length frames the sets; a datagram shorter than it was
        // cut (its whole sets are still read), one longer carries garbage.
        if (length < header || length != n) damaged = true;
        if (length >= header) n = std::min(n, length);
    } else {
        h.uptime_ms = be32(p + 4);
        h.export_ms = std::int64_t(be32(p + 8)) * 1000;
        h.domain = be32(p + 16);
    }
    TemplatedDecoder dec(s, exporter, received_ms, h);
    const TemplateKey domain_key{exporter, h.domain, 0, std::uint8_t(ipfix ? 10 : 9)};
    std::size_t at = header;
    while (n - at >= kSetHeader) {
        const std::uint16_t set_id = be16(p + at);
        const std::size_t length = be16(p + at + 2);
        if (length < kSetHeader || length > n - at) {
            damaged = true;
            return;
        }
        const std::uint8_t* body = p + at + kSetHeader;
        const std::size_t body_n = length - kSetHeader;
        at += length;
        bool ok = true;
        const std::uint16_t template_set = ipfix ? 2 : 0;
        const std::uint16_t options_set = ipfix ? 3 : 1;
        if (set_id == template_set || set_id == options_set) {
            ok = dec.templates(body, body_n, set_id == options_set);
        } else if (set_id >= kMinDataSet) {
            auto it = s.templates.find(TemplateKey{exporter, h.domain, set_id,
                                                   std::uint8_t(ipfix ? 10 : 9)});
            if (it == s.templates.end()) {
                ++s.counters.template_misses;
            } else if (received_ms - it->second.received_ms > s.cfg.template_timeout_ms) {
                s.templates.erase(it);
                ++s.counters.templates_expired;
                ++s.counters.template_misses;
            } else {
                ok = data_set(s, it->second, body, body_n, h, exporter, domain_key);
            }
        }
        // Set ids 2..255 (v9) and 4..255 (IPFIX) are reserved: skipped.
        if (!ok) {
            damaged = true;
            return;
        }
    }
    // Bytes left that cannot hold a set header: v9 pads, IPFIX must not.
    if (at != n && ipfix) damaged = true;
}

}  // namespace nkclass::collect
