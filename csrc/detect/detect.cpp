// The detector dispatch (see detectors.hpp): a switch on the first byte of
// each side picks the one or two detectors that can match, so most
// payloads cost a handful of compares.
#include "detect_internal.hpp"
#include "nkclass/domains.hpp"

namespace nkclass {

namespace det {

bool set_name(Detection* out, const std::uint8_t* s, std::size_t len, std::uint8_t kind) noexcept {
    if (len > 0 && s[len - 1] == '.') --len;
    if (len == 0 || len > kMaxName || !bytes::copy_name_lower(out->name, s, len)) return false;
    return name_written(out, len, kind);
}

bool name_written(Detection* out, std::size_t len, std::uint8_t kind) noexcept {
    if (len > 0 && out->name[len - 1] == '.') --len;
    if (len == 0) return false;
    out->name[len] = '\0';
    out->name_len = static_cast<std::uint8_t>(len);
    out->name_kind = kind;
    return true;
}

void set_agent(Detection* out, const std::uint8_t* s, std::size_t len) noexcept {
    if (len > kMaxAgent) len = kMaxAgent;
    std::memcpy(out->agent, s, len);
    out->agent[len] = '\0';
    out->agent_len = static_cast<std::uint8_t>(len);
}

namespace {

inline bool json_start(std::uint8_t c) noexcept {
    return c == '{' || c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

bool tcp_side(Bytes b, bool client, std::uint16_t sport, std::uint16_t dport,
              Detection* out) noexcept {
    if (b.n == 0) return false;
    const std::uint8_t c = b[0];
    if (json_start(c)) return detect_stratum(b, out);
    if (c >= 0x14 && c <= 0x17) return detect_tls(b, client, out);
    if (c >= 'A' && c <= 'Z')
        return detect_http(b, client, out) || detect_banner(b, client, out);
    switch (c) {
        case '*': case '+': case '2': return detect_banner(b, client, out);
        case 0x13: return detect_bittorrent(b, out);
        case 0x01: case 0xF9: case 0x0B: case 0x0A: case 0xFA:
            return detect_coin_p2p_tcp(b, out);
        case 0x00: return detect_dns(b, true, sport, dport, out);
        default: return false;
    }
}

bool udp_side(Bytes b, Bytes other, bool client, std::uint16_t sport, std::uint16_t dport,
              Detection* out) noexcept {
    if (b.n == 0) return false;
    if ((sport == 500 || dport == 500 || sport == 4500 || dport == 4500) &&
        detect_ike(b, sport, dport, out))
        return true;
    if ((sport == 30303 || dport == 30303) && detect_discv4(b, sport, dport, out)) return true;
    if (detect_dns(b, false, sport, dport, out)) return true;
    const std::uint8_t c = b[0];
    if (c >= 0xc0 && detect_quic(b, out)) return true;
    if (c >= 1 && c <= 4 && client && detect_wireguard(b, other, sport, dport, out)) return true;
    if (client && (c == 0x08 || c == 0x38 || c == 0x50) &&
        detect_openvpn(b, other, false, sport, dport, out))
        return true;
    if (c == 'd') return detect_bittorrent(b, out);
    return false;
}

void reset(Detection* out) noexcept {
    out->app = out->activity = out->rank = out->activity_rank = 0;
    out->evidence = 0;
    out->coin = kCoinUnknown;
    out->name_kind = kNameNone;
    out->name_len = out->agent_len = 0;
    out->name[0] = out->agent[0] = '\0';
}

}  // namespace
}  // namespace det

bool tor_like_server_name(const char* name, std::size_t len) noexcept {
    if (len < 4 + 8 + 4 || len > 4 + 20 + 4) return false;
    if (std::memcmp(name, "www.", 4) != 0) return false;
    const char* tld = name + len - 4;
    if (std::memcmp(tld, ".com", 4) != 0 && std::memcmp(tld, ".net", 4) != 0) return false;
    bool digit = false;
    int consonants = 0, best = 0;
    for (const char* p = name + 4; p < tld; ++p) {
        const char c = *p;
        if (c >= '2' && c <= '7') {
            digit = true;
            consonants = 0;
        } else if (c >= 'a' && c <= 'z') {
            const bool vowel = c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
            consonants = vowel ? 0 : consonants + 1;
            if (consonants > best) best = consonants;
        } else {
            return false;
        }
    }
    return digit || best >= 5;
}

void detect(std::uint8_t protocol, std::uint16_t src_port, std::uint16_t dst_port,
            const std::uint8_t* src, std::size_t src_len, const std::uint8_t* dst,
            std::size_t dst_len, Detection* out) noexcept {
    using namespace det;
    reset(out);
    const Bytes s{src, src ? src_len : 0};
    const Bytes d{dst, dst ? dst_len : 0};
    bool found = false;
    if (protocol == 6) {
        found = tcp_side(s, true, src_port, dst_port, out) ||
                (s.n > 0 && s[0] == 0x00 && detect_openvpn(s, d, true, src_port, dst_port, out)) ||
                (s.n > 0 && (s[0] == 4 || s[0] == 5) && detect_socks(s, d, out)) ||
                (s.n > 0 && s[0] == 'd' && detect_bittorrent(s, out));
        if (!found || out->activity == 0) {
            Detection reply;
            reset(&reply);
            if (tcp_side(d, false, dst_port, src_port, &reply) &&
                (!found || reply.activity != 0)) {
                if (found && reply.name_len == 0 && out->name_len != 0) {
                    std::memcpy(reply.name, out->name, out->name_len + 1u);
                    reply.name_len = out->name_len;
                    reply.name_kind = out->name_kind;
                }
                *out = reply;
                found = true;
            }
        }
    } else if (protocol == 17) {
        found = udp_side(s, d, true, src_port, dst_port, out) ||
                udp_side(d, s, false, dst_port, src_port, out);
    }
    if (!found) {
        reset(out);
        return;
    }
    // Names are written in place and count only once accepted; a refused
    // one leaves its bytes behind, so terminate the name actually kept.
    out->name[out->name_len] = '\0';
    if (out->app == kAppTls && out->name_kind == kNameSni && out->activity == 0 &&
        tor_like_server_name(out->name, out->name_len)) {
        out->activity = kActTor;
        out->activity_rank = kRankNamed;
        out->evidence |= kEvSni;
    }
}

std::size_t DetectorInspector::inspect_detail(std::uint8_t protocol, std::uint16_t src_port,
                                              std::uint16_t dst_port, const std::uint8_t* src,
                                              std::size_t src_len, const std::uint8_t* dst,
                                              std::size_t dst_len, Candidate* out,
                                              std::size_t cap, Detection* det) const noexcept {
    detect(protocol, src_port, dst_port, src, src_len, dst, dst_len, det);
    if (det->app == 0 || cap == 0) return 0;
    std::size_t k = 0;
    const bool tor_guess = det->activity_rank == kRankNamed && det->activity == kActTor;
    Candidate c;
    c.app = det->app;
    c.rank = det->rank;
    c.evidence = kEvPayload;
    if (!tor_guess) c.activity = det->activity;
    out[k++] = c;
    bool named = false;
    if (det->name_len != 0 && domains_ && k < cap) {
        const DomainMatch m = domains_->lookup(det->name, det->name_len);
        if (m.service != 0) {
            Candidate n;
            n.activity = m.activity;
            // A DNS query names what the client is about to reach, not what
            // the DNS flow itself does: its name sets the service only, so a
            // lookup is not counted twice (as itself and as the connection
            // that follows) and a pool lookup is never mining.
            if (det->name_kind == kNameDns) n.activity = kActUnknown;
            n.rank = kRankNamed;
            n.evidence = det->name_kind == kNameSni ? kEvSni
                         : det->name_kind == kNameDns ? kEvDns : kEvHost;
            n.service = m.service;
            out[k++] = n;
            named = true;
        }
    }
    if (tor_guess && !named && k < cap) {
        Candidate t;
        t.activity = kActTor;
        t.rank = kRankNamed;
        t.evidence = kEvSni;
        out[k++] = t;
    }
    return k;
}

std::size_t DetectorInspector::inspect(std::uint8_t protocol, std::uint16_t src_port,
                                       std::uint16_t dst_port, const std::uint8_t* src,
                                       std::size_t src_len, const std::uint8_t* dst,
                                       std::size_t dst_len, Candidate* out,
                                       std::size_t cap) const noexcept {
    Detection det;
    return inspect_detail(protocol, src_port, dst_port, src, src_len, dst, dst_len, out, cap, &det);
}

}  // namespace nkclass
