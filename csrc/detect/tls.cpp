// TLS ClientHello / ServerHello and QUIC long headers.
#include "detect_internal.hpp"

namespace nkclass {

std::size_t tls_client_hello_sni(const std::uint8_t* p, std::size_t len, char* name,
                                 bool* is_hello) noexcept {
    if (is_hello) *is_hello = false;
    if (len < 9 || p[0] != 0x16 || p[1] != 0x03 || p[2] > 0x04) return 0;
    const std::size_t record_len = det::be16(p + 3);
    const std::size_t hs_len = bytes::be24(p + 6);
    if (p[5] != 0x01 || record_len < 4 || record_len > 16384 + 2048 || hs_len < 38) return 0;
    if (is_hello) *is_hello = true;
    // Parse up to the end of the record, of the handshake message, or of
    // the bytes given, whichever comes first.
    std::size_t end = 5 + record_len;
    if (9 + hs_len < end) end = 9 + hs_len;
    if (len < end) end = len;
    std::size_t i = 9 + 2 + 32;  // client_version, random
    if (i + 1 > end) return 0;
    i += 1 + p[i];  // session id
    if (i + 2 > end) return 0;
    i += 2 + det::be16(p + i);  // cipher suites
    if (i + 1 > end) return 0;
    i += 1 + p[i];  // compression methods
    if (i + 2 > end) return 0;
    std::size_t ext_end = i + 2 + det::be16(p + i);
    i += 2;
    if (ext_end > end) ext_end = end;
    while (i + 4 <= ext_end) {
        const std::uint16_t type = det::be16(p + i);
        const std::size_t ext_len = det::be16(p + i + 2);
        i += 4;
        if (type != 0) {
            i += ext_len;
            continue;
        }
        // server_name: list length, then (type, length, name) entries.
        std::size_t lim = i + ext_len;
        if (lim > ext_end) lim = ext_end;
        if (i + 2 > lim) return 0;
        std::size_t list_end = i + 2 + det::be16(p + i);
        if (list_end > lim) list_end = lim;
        i += 2;
        while (i + 3 <= list_end) {
            const std::uint8_t name_type = p[i];
            const std::size_t name_len = det::be16(p + i + 1);
            i += 3;
            if (i + name_len > list_end) return 0;
            if (name_type == 0) {
                if (name_len == 0 || name_len > kMaxName ||
                    !bytes::copy_name_lower(name, p + i, name_len))
                    return 0;
                name[name_len] = '\0';
                return name_len;
            }
            i += name_len;
        }
        return 0;
    }
    return 0;
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

bool detect_tls(Bytes b, bool client, Detection* out) noexcept {
    if (b.n < 6 || b[1] != 0x03) return false;
    if (b[0] != 0x16 || b[2] > 0x04 || (!client && b[5] != 0x02) || (client && b[5] != 0x01))
        return detect_tls_records(b, out);
    if (client) {
        bool is_hello = false;
        const std::size_t k = tls_client_hello_sni(b.p, b.n, out->name, &is_hello);
        if (!is_hello) return false;
        hit(out, kAppTls, 0);
        if (k > 0) name_written(out, k, kNameSni);
        return true;
    }
    // ServerHello (2) from the responder.
    hit(out, kAppTls, 0);
    return true;
}

// QUIC long header: form and fixed bits set, a known version, connection
// id lengths <= 20 and present.
bool detect_quic(Bytes b, Detection* out) noexcept {
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
    return true;
}

}  // namespace det
}  // namespace nkclass
