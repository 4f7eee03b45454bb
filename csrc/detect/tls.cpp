// TLS ClientHello / ServerHello and QUIC long headers.
#include "detect_internal.hpp"

namespace nkclass {

namespace det {

std::size_t parse_client_hello(const std::uint8_t* p, std::size_t avail, char* name,
                               char* alpn, std::size_t* alpn_len) noexcept {
    *alpn_len = 0;
    if (avail < 4 || p[0] != 0x01) return 0;
    std::size_t end = 4 + bytes::be24(p + 1);
    if (avail < end) end = avail;
    std::size_t name_len = 0;
    bool sni_done = false;
    std::size_t i = 4 + 2 + 32;  // client_version, random
    if (i + 1 > end) return 0;
    i += 1 + p[i];  // session id
    if (i + 2 > end) return 0;
    i += 2 + be16(p + i);  // cipher suites
    if (i + 1 > end) return 0;
    i += 1 + p[i];  // compression methods
    if (i + 2 > end) return 0;
    std::size_t ext_end = i + 2 + be16(p + i);
    i += 2;
    if (ext_end > end) ext_end = end;
    while (i + 4 <= ext_end && !(sni_done && *alpn_len != 0)) {
        const std::uint16_t type = be16(p + i);
        const std::size_t ext_len = be16(p + i + 2);
        i += 4;
        std::size_t lim = i + ext_len;
        if (lim > ext_end) lim = ext_end;
        if (type == 0 && !sni_done) {
            // server_name: list length, then (type, length, name) entries;
            // the first host_name entry counts.
            sni_done = true;
            std::size_t j = i;
            if (j + 2 <= lim) {
                std::size_t list_end = j + 2 + be16(p + j);
                if (list_end > lim) list_end = lim;
                j += 2;
                while (j + 3 <= list_end) {
                    const std::uint8_t name_type = p[j];
                    const std::size_t len = be16(p + j + 1);
                    j += 3;
                    if (j + len > list_end) break;
                    if (name_type == 0) {
                        if (len != 0 && len <= kMaxName &&
                            bytes::copy_name_lower(name, p + j, len)) {
                            name[len] = '\0';
                            name_len = len;
                        }
                        break;
                    }
                    j += len;
                }
            }
        } else if (type == 16 && *alpn_len == 0 && i + 3 <= lim) {
            // application_layer_protocol_negotiation: the first protocol.
            const std::size_t k = p[i + 2];
            if (k != 0 && k <= kMaxAlpn && i + 3 + k <= lim) {
                std::memcpy(alpn, p + i + 3, k);
                alpn[k] = '\0';
                *alpn_len = k;
            }
        }
        i += ext_len;
    }
    return name_len;
}

}  // namespace det

std::size_t tls_client_hello_sni(const std::uint8_t* p, std::size_t len, char* name,
                                 bool* is_hello) noexcept {
    char alpn[kMaxAlpn + 1];
    std::size_t alpn_len = 0;
    return tls_client_hello(p, len, name, is_hello, alpn, &alpn_len);
}

std::size_t tls_client_hello(const std::uint8_t* p, std::size_t len, char* name, bool* is_hello,
                             char* alpn, std::size_t* alpn_len) noexcept {
    if (is_hello) *is_hello = false;
    *alpn_len = 0;
    if (len < 9 || p[0] != 0x16 || p[1] != 0x03 || p[2] > 0x04) return 0;
    const std::size_t record_len = det::be16(p + 3);
    const std::size_t hs_len = bytes::be24(p + 6);
    if (p[5] != 0x01 || record_len < 4 || record_len > 16384 + 2048 || hs_len < 38) return 0;
    if (is_hello) *is_hello = true;
    // Parse up to the end of the record or of the bytes given.
    std::size_t end = 5 + record_len;
    if (len < end) end = len;
    return det::parse_client_hello(p + 5, end - 5, name, alpn, alpn_len);
}

namespace det {

namespace {

bool record_header(const std::uint8_t* p) noexcept {
    return p[0] >= 0x14 && p[0] <= 0x17 && p[1] == 0x03 && p[2] >= 0x01 && p[2] <= 0x04 &&
           be16(p + 3) >= 1 && be16(p + 3) <= 16384 + 2048;
}

}  // namespace

// A capture that starts mid-connection shows records of types 20..23
// (change_cipher_spec, alert, handshake, application_data). Accept when
// every record header walked is valid and the walk ends at the end of the
// bytes or inside the last record (truncation).
bool detect_tls_records(Bytes b, Detection* out) noexcept {
    if (b.n < 5 || !record_header(b.p)) return false;
    std::size_t i = 0;
    while (i + 5 <= b.n) {
        if (!record_header(b.p + i)) return false;
        i += 5 + be16(b.p + i + 3);
    }
    if (i < b.n && i + 5 > b.n) {
        // A partial header at the end: what is there must fit one.
        if (b[i] < 0x14 || b[i] > 0x17 || (i + 1 < b.n && b[i + 1] != 0x03)) return false;
    }
    hit(out, kAppTls, 0);
    return true;
}

namespace {

// The value of the first attribute `oid` (06 03 55 04 xx) at or after
// p[from] in DER bytes: a printable, UTF8 or IA5 string. Returns the offset
// after it (0 when absent) and sets *value / *len.
std::size_t der_attribute(const std::uint8_t* p, std::size_t n, std::size_t from,
                          std::uint8_t oid, const std::uint8_t** value,
                          std::size_t* len) noexcept {
    const std::uint8_t key[5] = {0x06, 0x03, 0x55, 0x04, oid};
    while (from + 7 <= n) {
        const void* at = memmem(p + from, n - from, key, 5);
        if (at == nullptr) return 0;
        const std::size_t i = static_cast<std::size_t>(static_cast<const std::uint8_t*>(at) - p) + 5;
        if (i + 2 <= n && (p[i] == 0x0c || p[i] == 0x13 || p[i] == 0x16) && p[i + 1] < 0x80 &&
            i + 2 + p[i + 1] <= n) {
            *value = p + i + 2;
            *len = p[i + 1];
            return i + 2 + p[i + 1];
        }
        from = i;
    }
    return 0;
}

bool tor_like(const std::uint8_t* v, std::size_t len) noexcept {
    char name[64];
    if (len == 0 || len >= sizeof name) return false;
    for (std::size_t i = 0; i < len; ++i) name[i] = lower(static_cast<char>(v[i]));
    return tor_like_server_name(name, len);
}

// What the server's certificate says (TLS 1.2 and older send it in the
// clear after the ServerHello): Tor relays present a link certificate whose
// issuer and subject are both random "www.<base32>.com|net" names (tor's
// tortls.c); FortiGate's SSL VPN ships a default certificate issued by
// organisation "Fortinet".
void certificate_traits(Bytes b, Detection* out) noexcept {
    const std::size_t lim = b.n < 4096 ? b.n : 4096;
    const std::uint8_t* issuer = nullptr;
    const std::uint8_t* subject = nullptr;
    std::size_t issuer_len = 0, subject_len = 0;
    const std::size_t after = der_attribute(b.p, lim, 0, 0x03, &issuer, &issuer_len);
    if (after != 0 && der_attribute(b.p, lim, after, 0x03, &subject, &subject_len) != 0 &&
        tor_like(issuer, issuer_len) && tor_like(subject, subject_len) &&
        !(issuer_len == subject_len && std::memcmp(issuer, subject, issuer_len) == 0)) {
        out->app = kAppTor;
        out->activity = kActTor;
        out->activity_rank = kRankPayload;
        return;
    }
    const std::uint8_t* org = nullptr;
    std::size_t org_len = 0;
    if (der_attribute(b.p, lim, 0, 0x0a, &org, &org_len) != 0 && org_len == 8 &&
        std::memcmp(org, "Fortinet", 8) == 0) {
        out->app = kAppFortinet;
        out->activity = kActVpn;
    }
}

}  // namespace

bool detect_tls(Bytes b, bool client, Detection* out) noexcept {
    if (b.n < 6 || b[1] != 0x03) return false;
    if (b[0] != 0x16 || b[2] > 0x04 || (!client && b[5] != 0x02) || (client && b[5] != 0x01))
        return detect_tls_records(b, out);
    if (client) {
        bool is_hello = false;
        std::size_t alpn_len = 0;
        const std::size_t k = tls_client_hello(b.p, b.n, out->name, &is_hello, out->alpn, &alpn_len);
        if (!is_hello) return false;
        hit(out, kAppTls, 0);
        out->alpn_len = static_cast<std::uint8_t>(alpn_len);
        if (k > 0) name_written(out, k, kNameSni);
        return true;
    }
    // ServerHello (2) from the responder, perhaps followed by the
    // certificate (TLS 1.2 and older).
    hit(out, kAppTls, 0);
    const std::size_t hello_end = 5 + std::size_t(be16(b.p + 3));
    if (hello_end < b.n) certificate_traits(Bytes{b.p + hello_end, b.n - hello_end}, out);
    return true;
}

// QUIC long header: form and fixed bits set, a known version, connection
// id lengths <= 20 and present.
bool detect_quic(Bytes b, bool client, std::uint16_t sport, std::uint16_t dport,
                 Detection* out) noexcept {
    if (b.n < 7 || (b[0] & 0xc0) != 0xc0) return false;
    const std::uint32_t v = be32(b.p + 1);
    const bool known = v == 0x00000001u || v == 0x6b3343cfu ||
                       (v >= 0xff00001du && v <= 0xff000022u) ||  // drafts 29..34
                       (b[1] == 'Q' && b[2] == '0' && b[3] >= '3' && b[3] <= '5' &&
                        b[4] >= '0' && b[4] <= '9');  // Google QUIC Q03x..Q05x
    if (!known) return false;
    const std::size_t dcid = b[5];
    if (dcid > 20 || b.n < 7 + dcid) return false;
    const std::size_t scid = b[6 + dcid];
    if (scid > 20 || b.n < 7 + dcid + scid) return false;
    hit(out, kAppQuic, 0);
    // The Initial's ClientHello names the server like a TLS one does.
    QuicHello hello;
    if (client && quic_client_hello(b.p, b.n, &hello)) {
        if (hello.name_len != 0)
            set_name(out, reinterpret_cast<const std::uint8_t*>(hello.name), hello.name_len,
                     kNameSni);
        std::memcpy(out->alpn, hello.alpn, hello.alpn_len + 1);
        out->alpn_len = static_cast<std::uint8_t>(hello.alpn_len);
    }
    // DNS over QUIC (RFC 9250): ALPN "doq", UDP 853.
    if ((out->alpn_len == 3 && std::memcmp(out->alpn, "doq", 3) == 0) || sport == 853 ||
        dport == 853) {
        out->app = kAppDoq;
        out->activity = kActInfrastructure;
    }
    return true;
}

}  // namespace det
}  // namespace nkclass
