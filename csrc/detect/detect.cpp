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

bool alpn_is(const Detection* out, const char* s, std::size_t k) noexcept {
    return out->alpn_len == k && std::memcmp(out->alpn, s, k) == 0;
}

// TLS whose port or ALPN names what it carries: DNS over TLS (853, "dot"),
// Syncthing's BEP ("bep/1.0").
void refine_tls(Detection* out, std::uint16_t sport, std::uint16_t dport) noexcept {
    if (out->app != kAppTls) return;
    if (alpn_is(out, "bep/1.0", 7)) {
        out->app = kAppSyncthing;
        out->activity = kActP2pFilesharing;
    } else if (alpn_is(out, "dot", 3) || sport == 853 || dport == 853) {
        out->app = kAppDot;
        out->activity = kActInfrastructure;
    }
}

// One side of a TCP flow. A switch on the first byte picks the one to three
// detectors that can match; payloads that match none cost a few compares.
bool tcp_side(Bytes b, bool client, std::uint16_t sport, std::uint16_t dport,
              Detection* out) noexcept {
    if (b.n == 0) return false;
    const std::uint8_t c = b[0];
    if (json_start(c)) return detect_stratum(b, out);
    if (c >= 0x14 && c <= 0x17) {
        if (!detect_tls(b, client, out)) return false;
        refine_tls(out, sport, dport);
        return true;
    }
    // Modbus/TCP's header starts with a free transaction id: its port decides.
    if ((sport == 502 || dport == 502) && b.n >= 8 && b[2] == 0 && b[3] == 0) {
        if (detect_modbus(b, out)) return true;
    }
    if (c >= 'A' && c <= 'Z')
        return detect_http(b, client, out) || detect_text(b, client, true, sport, dport, out) ||
               detect_banner(b, client, out);
    switch (c) {
        case '*': return detect_banner(b, client, out) || detect_resp(b, client, out);
        case '+': return detect_banner(b, client, out) || detect_resp(b, client, out);
        case '-': return detect_resp(b, client, out);
        case '$': return detect_text(b, client, true, sport, dport, out);
        case '2': return detect_banner(b, client, out) || detect_syslog(b, out);
        case '<': return detect_syslog(b, out);
        case '0':  // 0x30: a BER SEQUENCE (LDAP), tinc's "0 ", syslog octet counting
            return detect_ber(b, true, sport, dport, out) ||
                   detect_text(b, client, true, sport, dport, out) || detect_syslog(b, out);
        case '1': case '3': case '4': case '5': case '6': case '7': case '8': case '9':
            return detect_syslog(b, out);
        case 0x13: return detect_bittorrent(b, out);
        case 0x01:  // a STUN response (0x01xx) also starts so
            return detect_stun(b, true, out) || detect_coin_p2p_tcp(b, out) ||
                   detect_le_length(b, client, out);
        case 0xF9: case 0x0B: case 0xFA:
            return detect_coin_p2p_tcp(b, out) || detect_le_length(b, client, out);
        case 0x0A: return detect_coin_p2p_tcp(b, out) || detect_le_length(b, client, out);
        case 0x00:  // STUN/TURN over TCP (RFC 5389 section 7.2.2), on any port
            return detect_stun(b, true, out) || detect_dns(b, true, sport, dport, out) ||
                   detect_tcp_zero(b, client, sport, dport, out);
        case 0x03: return detect_tpkt(b, out);
        case 0x05: return detect_dnp3(b, out);
        case 0x10: return detect_mqtt(b, out) || detect_tds(b, out);
        case 0x12: case 0x04: return detect_tds(b, out);
        case 0x68: return detect_iec104(b, sport, dport, out);
        case 0xe3: case 0xc5: case 0xd4: return detect_edonkey(b, true, out);
        case 0xef: case 0xee: case 0xdd: return detect_telegram(b, dport, out);
        default:
            // Little-endian length prefixes (MySQL, MongoDB, Soulseek):
            // any first byte, small high bytes.
            return b.n >= 8 && b[2] == 0 && b[3] <= 1 && detect_le_length(b, client, out);
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
    // Services whose datagrams carry little structure: by registered port.
    if ((sport < 10000 || dport < 10000 || sport == 21027 || dport == 21027 ||
         sport == 22067 || dport == 22067) &&
        detect_udp_ports(b, sport, dport, out))
        return true;
    const std::uint8_t c = b[0];
    switch (c) {
        case 0x00: return detect_stun(b, false, out) || detect_gnutella_udp(b, out);
        case 0x01:
            return detect_stun(b, false, out) ||
                   (client && detect_wireguard(b, other, sport, dport, out)) ||
                   (client && detect_utp(b, other, out)) || detect_gnutella_udp(b, out);
        case 0x02: case 0x03: case 0x04:
            return (client && detect_wireguard(b, other, sport, dport, out)) ||
                   detect_gnutella_udp(b, out);
        case 0x41: return (client && detect_utp(b, other, out)) || detect_gnutella_udp(b, out);
        case 0x08: case 0x38: case 0x50:
            return (client && detect_openvpn(b, other, false, sport, dport, out)) ||
                   detect_gnutella_udp(b, out);
        case 0x14: case 0x15: case 0x16: case 0x17: case 0x19:
            return detect_dtls(b, out) || detect_gnutella_udp(b, out);
        case 0x30: return detect_ber(b, false, sport, dport, out) || detect_gnutella_udp(b, out);
        case 0x2e: case 0x9e: return detect_syncthing_udp(b, out) || detect_gnutella_udp(b, out);
        case 0x6a: case 0x6b: case 0x6c: case 0x6d: case 0x7e:
            return detect_kerberos(b, out) || detect_gnutella_udp(b, out);
        case '<': return detect_syslog(b, out);
        case 'd': return detect_bittorrent(b, out) || detect_gnutella_udp(b, out);
        case 'r':
            // DNSCrypt responses start with the server magic "r6fnvWj8".
            if (b.starts("r6fnvWj8", 8) && b.n >= 8 + 12 + 16) {
                hit(out, kAppDnscrypt, kActInfrastructure);
                return true;
            }
            return detect_gnutella_udp(b, out);
        case 'T':
            // Tailscale disco messages: "TS" + U+1F4AC (tailscale disco/disco.go).
            if (b.starts("TS\xf0\x9f\x92\xac", 6) && b.n >= 6 + 32 + 24) {
                hit(out, kAppTailscale, kActVpn);
                return true;
            }
            return detect_text(b, client, false, sport, dport, out);
        case 'I':
            // SoftEther's UDP NAT traversal ("IP=<address>,PORT=<port>",
            // nDPI softether.c).
            if (b.starts("IP=", 3) && b.n < 40 && memmem(b.p, b.n, ",PORT=", 6) != nullptr) {
                hit(out, kAppSoftether, kActVpn);
                return true;
            }
            return detect_text(b, client, false, sport, dport, out);
        default:
            break;
    }
    if (c >= 0xc0) {
        if (detect_quic(b, client, sport, dport, out)) return true;
        return detect_edonkey(b, false, out) || detect_gnutella_udp(b, out);
    }
    if (c >= 0x80) return detect_rtp(b, out) || detect_gnutella_udp(b, out);
    if (c >= 'A' && c <= 'Z') return detect_text(b, client, false, sport, dport, out);
    return detect_gnutella_udp(b, out);
}

void reset(Detection* out) noexcept {
    out->app = out->activity = out->rank = out->activity_rank = 0;
    out->evidence = 0;
    out->coin = kCoinUnknown;
    out->name_kind = kNameNone;
    out->name_len = out->agent_len = out->alpn_len = 0;
    out->name[0] = out->agent[0] = out->alpn[0] = '\0';
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
                (s.n > 0 && s[0] == 'd' && detect_bittorrent(s, out)) ||
                (s.n >= 64 && detect_telegram(s, dst_port, out));
        if (!found || out->activity == 0) {
            // The reply fills in what the initiator's bytes did not say: the
            // protocol, or an activity of the same protocol (a pool's job
            // reply, a TLS certificate naming a Tor relay or a VPN gateway).
            // A different protocol's greeting never replaces the
            // initiator's (a Redis "+OK" is no POP3 server).
            Detection reply;
            reset(&reply);
            if (tcp_side(d, false, dst_port, src_port, &reply) &&
                (!found || (reply.activity != 0 &&
                            (reply.app == out->app ||
                             (out->app == kAppTls &&
                              (reply.app == kAppTor || reply.app == kAppFortinet)))))) {
                if (found && reply.name_len == 0 && out->name_len != 0) {
                    std::memcpy(reply.name, out->name, out->name_len + 1u);
                    reply.name_len = out->name_len;
                    reply.name_kind = out->name_kind;
                }
                *out = reply;
                found = true;
            }
        }
        if (!found) {
            reset(out);
            found = detect_encrypted_guess(s, d, out);
        }
    } else if (protocol == 17) {
        found = udp_side(s, d, true, src_port, dst_port, out) ||
                udp_side(d, s, false, dst_port, src_port, out);
    } else if (protocol == 47) {
        found = detect_gre(s, out) || detect_gre(d, out);
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
        const DomainMatch m = domains_->lookup_padded(det->name, det->name_len);
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

std::size_t DetectorInspector::inspect_named(std::uint8_t protocol, std::uint16_t src_port,
                                             std::uint16_t dst_port, const std::uint8_t* src,
                                             std::size_t src_len, const std::uint8_t* dst,
                                             std::size_t dst_len, Candidate* out,
                                             std::size_t cap, ServerName* name) const noexcept {
    Detection det;
    const std::size_t k =
        inspect_detail(protocol, src_port, dst_port, src, src_len, dst, dst_len, out, cap, &det);
    name->kind = det.name_len != 0 ? det.name_kind : 0;
    name->len = det.name_len;
    if (det.name_len != 0) std::memcpy(name->text, det.name, det.name_len + 1u);
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
