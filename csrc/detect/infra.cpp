// Infrastructure, database, message-bus and industrial-control protocols,
// and the text openings of a few others (SIP, VNC, AMQP, Zabbix, Gnutella,
// DirectConnect, WhatsApp, SSDP, tinc).
//
// Each check reads fixed header fields and their consistency (lengths that
// agree with each other, version fields, magic numbers, checksums where the
// protocol has one in its header), so it holds on any port; the few whose
// headers carry too little (Modbus, IEC 104 without a second APDU, the UDP
// services of detect_udp_ports) also need the protocol's registered port.
#include "detect_internal.hpp"

namespace nkclass::det {

namespace {

bool printable_run(const std::uint8_t* p, std::size_t n) noexcept {
    for (std::size_t i = 0; i < n; ++i)
        if (p[i] < 0x20 || p[i] > 0x7e) return false;
    return true;
}

// A BER length at p[i]; writes it and returns the offset after it, or 0.
std::size_t ber_length(const std::uint8_t* p, std::size_t n, std::size_t i,
                       std::size_t* len) noexcept {
    if (i >= n) return 0;
    const std::uint8_t first = p[i];
    if (first < 0x80) {
        *len = first;
        return i + 1;
    }
    const std::size_t k = first & 0x7f;
    if (k == 0 || k > 4 || i + 1 + k > n) return 0;
    std::size_t v = 0;
    for (std::size_t j = 0; j < k; ++j) v = (v << 8) | p[i + 1 + j];
    *len = v;
    return i + 1 + k;
}

// "a<k> 03 02 01 <v>": a context tag holding a one-byte INTEGER.
bool ber_small_int(const std::uint8_t* p, std::size_t n, std::size_t i, std::uint8_t tag,
                   std::uint8_t* value) noexcept {
    if (i + 5 > n || p[i] != tag || p[i + 1] != 3 || p[i + 2] != 2 || p[i + 3] != 1) return false;
    *value = p[i + 4];
    return true;
}

bool pptp_control(Bytes b) noexcept {
    // length(2) message type 1 (control) magic cookie 0x1A2B3C4D.
    return b.n >= 12 && be16(b.p) >= 16 && be16(b.p) <= 220 && be16(b.p + 2) == 1 &&
           be32(b.p + 4) == 0x1A2B3C4Du;
}

bool smb_over_nbss(Bytes b) noexcept {
    // NetBIOS session message (type 0, 17-bit length) holding SMB1, SMB2/3
    // or an SMB3 transform header.
    if (b.n < 8 || b[0] != 0 || (b[1] & 0xfe) != 0) return false;
    const std::uint8_t v = b[4];
    return (v == 0xff || v == 0xfe || v == 0xfd) && b[5] == 'S' && b[6] == 'M' && b[7] == 'B';
}

bool postgres_startup(Bytes b) noexcept {
    if (b.n < 8) return false;
    const std::uint32_t len = be32(b.p);
    const std::uint32_t code = be32(b.p + 4);
    // SSLRequest, GSSENCRequest and CancelRequest have fixed lengths.
    if (code == 80877103u || code == 80877104u) return len == 8;
    if (code == 80877102u) return len == 16;
    if (code != 0x00030000u || len < 9 || len > 10000) return false;
    // Startup parameters: NUL-terminated names; "user" is required.
    const std::size_t end = b.n < len ? b.n : len;
    return end > 8 && b[8] >= 'a' && b[8] <= 'z' && b.n >= 12 &&
           memmem(b.p + 8, end - 8, "user", 5) != nullptr;
}

bool kafka_request(Bytes b, std::uint16_t sport, std::uint16_t dport) noexcept {
    // Request header v1+: length, api_key, api_version, correlation_id,
    // client_id (INT16 length, -1 for null).
    if (b.n < 14) return false;
    const std::uint32_t len = be32(b.p);
    const std::uint16_t api = be16(b.p + 4);
    const std::uint16_t version = be16(b.p + 6);
    if (len < 10 || len > (100u << 20) || api > 80 || version > 20) return false;
    const std::uint16_t id_len = be16(b.p + 12);
    const bool kafka_port = (sport >= 9092 && sport <= 9094) || (dport >= 9092 && dport <= 9094);
    if (id_len == 0xffff || id_len == 0) return kafka_port;
    if (id_len > 255 || 14u + id_len > len + 4u) return false;
    const std::size_t have = b.n - 14 < id_len ? b.n - 14 : id_len;
    return have > 0 && printable_run(b.p + 14, have);
}

bool modbus_tcp(Bytes b) noexcept {
    // MBAP: transaction(2) protocol 0(2) length(2) unit(1), then a function
    // code (or its exception form with the high bit set).
    if (b.n < 8 || b[2] != 0 || b[3] != 0) return false;
    const std::uint16_t len = be16(b.p + 4);
    if (len < 2 || len > 254) return false;
    const std::uint8_t fc = b[7] & 0x7f;
    switch (fc) {
        case 1: case 2: case 3: case 4: case 5: case 6: case 7: case 8: case 11: case 12:
        case 15: case 16: case 17: case 20: case 21: case 22: case 23: case 24: case 43:
            return true;
        default:
            return false;
    }
}

// CRC-16/DNP (polynomial 0x3D65, reflected), as in IEEE 1815 link frames.
std::uint16_t crc_dnp(const std::uint8_t* p, std::size_t n) noexcept {
    std::uint16_t crc = 0;
    for (std::size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0xA6BC : crc >> 1;
    }
    return static_cast<std::uint16_t>(~crc);
}

bool sip_method(const std::uint8_t* p, std::size_t n) noexcept {
    static constexpr const char* kMethods[] = {
        "INVITE ", "REGISTER ", "OPTIONS ", "ACK ", "BYE ", "CANCEL ", "SUBSCRIBE ",
        "NOTIFY ", "MESSAGE ", "INFO ", "PRACK ", "UPDATE ", "REFER ", "PUBLISH "};
    for (const char* m : kMethods) {
        const std::size_t k = std::strlen(m);
        if (n >= k + 4 && std::memcmp(p, m, k) == 0)
            return std::memcmp(p + k, "sip:", 4) == 0 ||
                   (n >= k + 5 && std::memcmp(p + k, "sips:", 5) == 0);
    }
    return false;
}

bool month_at(const std::uint8_t* p, std::size_t n) noexcept {
    static constexpr const char kMonths[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    if (n < 4 || p[3] != ' ') return false;
    for (int m = 0; m < 12; ++m)
        if (std::memcmp(p, kMonths + 3 * m, 3) == 0) return true;
    return false;
}

// An RFC 3339 date and time separator: "YYYY-MM-DDT".
bool rfc3339_at(const std::uint8_t* p, std::size_t n) noexcept {
    if (n < 11 || p[4] != '-' || p[7] != '-' || p[10] != 'T') return false;
    static constexpr std::uint8_t kDigits[] = {0, 1, 2, 3, 5, 6, 8, 9};
    for (const std::uint8_t i : kDigits)
        if (!digit(p[i])) return false;
    return true;
}

// "<PRI>" then an RFC 5424 version digit, an RFC 3164 month, or an RFC 3339
// timestamp (rsyslog's forwarding format).
bool syslog_message(const std::uint8_t* p, std::size_t n) noexcept {
    if (n < 6 || p[0] != '<') return false;
    std::size_t i = 1;
    unsigned pri = 0;
    while (i < n && i <= 3 && digit(p[i])) pri = pri * 10 + (p[i++] - '0');
    if (i == 1 || i >= n || p[i] != '>' || pri > 191) return false;
    ++i;
    if (i + 2 <= n && digit(p[i]) && p[i + 1] == ' ') return true;  // "1 " (RFC 5424)
    return month_at(p + i, n - i) || rfc3339_at(p + i, n - i);
}

// A Redis RESP array of bulk strings: "*<n>\r\n$<len>\r\n<command>".
bool resp_command(Bytes b) noexcept {
    std::size_t i = 1;
    while (i < b.n && i < 6 && digit(b[i])) ++i;
    if (i == 1 || i + 3 >= b.n || b[i] != '\r' || b[i + 1] != '\n' || b[i + 2] != '$') return false;
    i += 3;
    std::size_t len = 0, start = i;
    while (i < b.n && i < start + 4 && digit(b[i])) len = len * 10 + (b[i++] - '0');
    if (i == start || len == 0 || len > 32 || i + 2 > b.n || b[i] != '\r' || b[i + 1] != '\n')
        return false;
    i += 2;
    const std::size_t have = b.n - i < len ? b.n - i : len;
    if (have == 0) return false;
    for (std::size_t j = 0; j < have; ++j) {
        const std::uint8_t c = b[i + j] | 0x20;
        if (!((c >= 'a' && c <= 'z') || b[i + j] == '_' || b[i + j] == '-')) return false;
    }
    return true;
}

}  // namespace

bool detect_tcp_zero(Bytes b, bool client, std::uint16_t sport, std::uint16_t dport,
                     Detection* out) noexcept {
    if (b.n < 8) return false;
    if (b[1] == 0 && b[2] == 0 && b[3] == 0 && detect_le_length(b, client, out)) return true;
    if (pptp_control(b)) {
        hit(out, kAppPptp, kActVpn);
        return true;
    }
    if (smb_over_nbss(b)) {
        hit(out, kAppSmb, 0);
        return true;
    }
    if (b[1] == 0 && (b[4] == 0x6a || b[4] == 0x6b || b[4] == 0x6c || b[4] == 0x6d ||
                      b[4] == 0x6e || b[4] == 0x6f || b[4] == 0x7e)) {
        // Kerberos over TCP: a 4-byte record length before the message.
        const std::uint32_t len = be32(b.p);
        if (len >= 16 && len < (1u << 20) && detect_kerberos(Bytes{b.p + 4, b.n - 4}, out))
            return true;
    }
    if (postgres_startup(b)) {
        hit(out, kAppPostgresql, 0);
        return true;
    }
    if (kafka_request(b, sport, dport)) {
        hit(out, kAppKafka, 0);
        return true;
    }
    return false;
}

bool detect_le_length(Bytes b, bool client, Detection* out) noexcept {
    if (b.n < 8) return false;
    // MySQL: 3-byte length, sequence number, then the server greeting
    // (protocol 10, a version string such as "8.0.36") or the client's
    // handshake response (sequence 1, CLIENT_PROTOCOL_41, 23 zero bytes).
    if (b[2] == 0 && b[1] < 0x04) {
        if (!client && b[3] == 0 && b[4] == 0x0a && digit(b[5])) {
            std::size_t i = 5;
            while (i < b.n && i < 5 + 40 && b[i] != 0) ++i;
            if (i < b.n && b[i] == 0 && printable_run(b.p + 5, i - 5)) {
                hit(out, kAppMysql, 0);
                return true;
            }
        }
        if (client && b[3] == 1 && b.n >= 36 && (le32(b.p + 4) & 0x200) != 0) {
            bool zeros = true;
            for (std::size_t i = 13; i < 36; ++i) zeros &= b[i] == 0;
            if (zeros) {
                hit(out, kAppMysql, 0);
                return true;
            }
        }
    }
    const std::uint32_t len = le32(b.p);
    // MongoDB wire protocol: length, requestID, responseTo, opCode.
    if (b.n >= 21 && len >= 21 && len <= (48u << 20)) {
        const std::uint32_t op = le32(b.p + 12);
        const bool request = le32(b.p + 8) == 0;
        if (op == 2013 && (le32(b.p + 16) & 0xfffcfffcu) == 0 && b[20] <= 1 &&
            (request || !client)) {
            hit(out, kAppMongodb, 0);
            return true;
        }
        if (op == 2004 && request && b.n >= 26) {
            // OP_QUERY: flags, then "db.collection" as a C string.
            std::size_t i = 20;
            bool dot = false;
            while (i < b.n && i < 20 + 128 && b[i] != 0) dot |= b[i++] == '.';
            if (i < b.n && b[i] == 0 && dot && printable_run(b.p + 20, i - 20)) {
                hit(out, kAppMongodb, 0);
                return true;
            }
        }
    }
    // Soulseek: server login (code 1: user name, password, version, MD5 of
    // both as 32 hex digits) or the peer's PeerInit (code byte 1: user name,
    // connection type "P", "F" or "D", token).
    if (client && len >= 9 && len <= 4096) {
        if (le32(b.p + 4) == 1 && b.n >= 12) {
            const std::uint32_t ulen = le32(b.p + 8);
            if (ulen >= 1 && ulen <= 64 && 12 + ulen + 4 <= b.n &&
                printable_run(b.p + 12, ulen)) {
                const std::size_t at = 12 + ulen;
                const std::uint32_t plen = le32(b.p + at);
                const std::size_t hash = at + 4 + plen + 4;
                if (plen <= 128 && hash + 4 + 32 <= b.n && le32(b.p + hash) == 32) {
                    bool hex = true;
                    for (std::size_t i = hash + 4; i < hash + 36; ++i)
                        hex &= digit(b[i]) || (b[i] >= 'a' && b[i] <= 'f');
                    if (hex) {
                        hit(out, kAppSoulseek, kActP2pFilesharing);
                        return true;
                    }
                }
            }
        }
        if (b[4] == 1 && b.n >= 9) {
            const std::uint32_t ulen = le32(b.p + 5);
            const std::size_t at = 9 + ulen;
            if (ulen >= 1 && ulen <= 64 && len == 1 + 4 + ulen + 4 + 1 + 4 && at + 5 <= b.n &&
                printable_run(b.p + 9, ulen) && le32(b.p + at) == 1 &&
                (b[at + 4] == 'P' || b[at + 4] == 'F' || b[at + 4] == 'D')) {
                hit(out, kAppSoulseek, kActP2pFilesharing);
                return true;
            }
        }
    }
    return false;
}

bool detect_tpkt(Bytes b, Detection* out) noexcept {
    // TPKT (version 3) + X.224: a connection request carrying RDP's cookie
    // or negotiation request, or a confirm carrying its response.
    if (b.n < 11 || b[0] != 3 || b[1] != 0) return false;
    const std::size_t len = be16(b.p + 2);
    const std::size_t li = b[4];
    if (len < 11 || li + 5 > len || li < 6) return false;
    const std::uint8_t code = b[5] & 0xf0;
    const std::size_t end = len < b.n ? len : b.n;
    if (code == 0xe0) {
        const std::uint8_t* v = b.p + 11;
        const std::size_t vn = end > 11 ? end - 11 : 0;
        const bool cookie = vn >= 8 && std::memcmp(v, "Cookie: ", 8) == 0;
        const bool neg = vn >= 8 && v[vn - 8] == 1 && v[vn - 6] == 8 && v[vn - 5] == 0;
        if (!(cookie || neg)) return false;
    } else if (code == 0xd0) {
        if (end < 19 || !((b[11] == 2 || b[11] == 3) && b[13] == 8 && b[14] == 0)) return false;
    } else {
        return false;
    }
    hit(out, kAppRdp, kActRemoteAdmin);
    return true;
}

bool detect_tds(Bytes b, Detection* out) noexcept {
    // TDS packet header: type, status, length, SPID, packet id, window 0.
    if (b.n < 8 + 5) return false;
    const std::uint8_t type = b[0];
    if (!(type == 0x12 || type == 0x10 || type == 0x04)) return false;
    if ((b[1] & ~0x19) != 0 || b[7] != 0) return false;
    const std::size_t len = be16(b.p + 2);
    if (len < 8 + 5 || len > 32768) return false;
    if (type == 0x10) {
        // LOGIN7: little-endian length, then a TDS version 7.x (0x70..0x74).
        if (b.n < 8 + 8) return false;
        const std::uint32_t v = le32(b.p + 12);
        if (!((v >> 24) >= 0x70 && (v >> 24) <= 0x74)) return false;
        hit(out, kAppMssql, 0);
        return true;
    }
    // PRELOGIN (request 0x12, response in a 0x04 packet): option tokens of
    // (type, offset, length) ending with 0xff, VERSION first; offsets point
    // past the token list and inside the packet.
    const std::size_t end = len < b.n ? len : b.n;
    if (b[8] != 0) return false;
    std::size_t i = 8, tokens = 0;
    while (i < end && b[i] != 0xff) {
        if (i + 5 > end || tokens > 16) return false;
        const std::size_t off = be16(b.p + i + 1), olen = be16(b.p + i + 3);
        if (8 + off + olen > len) return false;
        i += 5;
        ++tokens;
    }
    if (i >= end || tokens == 0 || 8 + std::size_t(be16(b.p + 9)) != i + 1) return false;
    hit(out, kAppMssql, 0);
    return true;
}

bool detect_mqtt(Bytes b, Detection* out) noexcept {
    // CONNECT: fixed header 0x10, remaining length (1..4 bytes), then the
    // protocol name "MQTT" (3.1.1, 5) or "MQIsdp" (3.1) and its level.
    if (b.n < 10 || b[0] != 0x10) return false;
    std::size_t i = 1;
    while (i < 5 && i < b.n && (b[i] & 0x80)) ++i;
    if (i >= 5 || i >= b.n) return false;
    ++i;
    if (i + 7 <= b.n && b[i] == 0 && b[i + 1] == 4 && std::memcmp(b.p + i + 2, "MQTT", 4) == 0 &&
        (b[i + 6] == 4 || b[i + 6] == 5)) {
        hit(out, kAppMqtt, 0);
        return true;
    }
    if (i + 9 <= b.n && b[i] == 0 && b[i + 1] == 6 && std::memcmp(b.p + i + 2, "MQIsdp", 6) == 0 &&
        b[i + 8] == 3) {
        hit(out, kAppMqtt, 0);
        return true;
    }
    return false;
}

bool detect_ber(Bytes b, bool tcp, std::uint16_t sport, std::uint16_t dport,
                Detection* out) noexcept {
    if (b.n < 7 || b[0] != 0x30) return false;
    std::size_t outer = 0;
    std::size_t i = ber_length(b.p, b.n, 1, &outer);
    if (i == 0 || outer < 5) return false;
    const std::size_t end = i + outer < b.n ? i + outer : b.n;
    // Both start with an INTEGER: LDAP's message id, SNMP's version.
    if (i + 3 > end || b[i] != 0x02 || b[i + 1] < 1 || b[i + 1] > 4) return false;
    const std::size_t int_len = b[i + 1];
    const std::size_t after = i + 2 + int_len;
    if (after >= end) return false;
    const std::uint8_t tag = b[after];
    // SNMP v1/v2c: version 0/1, community OCTET STRING, PDU a0..a8.
    if (int_len == 1 && b[i + 2] <= 1 && tag == 0x04) {
        std::size_t clen = 0;
        const std::size_t c = ber_length(b.p, end, after + 1, &clen);
        if (c == 0 || clen > 64 || c + clen >= end) return false;
        if (!printable_run(b.p + c, clen)) return false;
        const std::uint8_t pdu = b[c + clen];
        if (pdu < 0xa0 || pdu > 0xa8) return false;
        hit(out, kAppSnmp, kActInfrastructure);
        return true;
    }
    // SNMPv3: version 3, then the msgGlobalData SEQUENCE.
    if (int_len == 1 && b[i + 2] == 3 && tag == 0x30 && !tcp &&
        (either_port(sport, dport, 161) || either_port(sport, dport, 162))) {
        hit(out, kAppSnmp, kActInfrastructure);
        return true;
    }
    // LDAP: an application-class protocolOp whose length fits the message.
    switch (tag) {
        case 0x60: case 0x61: case 0x63: case 0x64: case 0x65: case 0x66: case 0x67:
        case 0x68: case 0x69: case 0x6a: case 0x6b: case 0x6c: case 0x6d: case 0x6e:
        case 0x6f: case 0x73: case 0x77: case 0x78: case 0x42: case 0x50: case 0x4a:
            break;
        default:
            return false;
    }
    std::size_t op_len = 0;
    const std::size_t body = ber_length(b.p, b.n, after + 1, &op_len);
    if (body == 0 || body + op_len > i + outer) return false;
    if (tag == 0x60) {
        // BindRequest: version 2 or 3 first.
        std::uint8_t v = 0;
        if (!(body + 3 <= b.n && b[body] == 2 && b[body + 1] == 1 && (v = b[body + 2], v == 2 || v == 3)))
            return false;
    } else if (tag == 0x61 || tag == 0x65 || tag == 0x69 || tag == 0x6b || tag == 0x6d ||
               tag == 0x6f || tag == 0x78) {
        // An LDAPResult: resultCode ENUMERATED first.
        if (!(body + 3 <= b.n && b[body] == 0x0a && b[body + 1] == 1)) return false;
    }
    hit(out, kAppLdap, kActInfrastructure);
    return true;
}

bool detect_kerberos(Bytes b, Detection* out) noexcept {
    if (b.n < 16) return false;
    const std::uint8_t app = b[0];
    std::size_t len = 0;
    std::size_t i = ber_length(b.p, b.n, 1, &len);
    if (i == 0 || len < 10 || i >= b.n || b[i] != 0x30) return false;
    std::size_t seq = 0;
    i = ber_length(b.p, b.n, i + 1, &seq);
    if (i == 0 || seq + 2 > len) return false;
    std::uint8_t pvno = 0, type = 0;
    switch (app) {
        case 0x6a: case 0x6c:  // AS-REQ, TGS-REQ: pvno [1], msg-type [2]
            if (!ber_small_int(b.p, b.n, i, 0xa1, &pvno) ||
                !ber_small_int(b.p, b.n, i + 5, 0xa2, &type))
                return false;
            break;
        case 0x6b: case 0x6d: case 0x6e: case 0x6f: case 0x7e:  // replies, AP, KRB-ERROR: [0], [1]
            if (!ber_small_int(b.p, b.n, i, 0xa0, &pvno) ||
                !ber_small_int(b.p, b.n, i + 5, 0xa1, &type))
                return false;
            break;
        default:
            return false;
    }
    // The msg-type repeats the application tag number.
    if (pvno != 5 || type != (app & 0x1f)) return false;
    hit(out, kAppKerberos, kActInfrastructure);
    return true;
}

bool detect_iec104(Bytes b, std::uint16_t sport, std::uint16_t dport, Detection* out) noexcept {
    // APCI: start 0x68, length 4..253, control field in I, S or U format.
    auto apdu = [&b](std::size_t at) -> std::size_t {
        if (at + 6 > b.n || b[at] != 0x68) return 0;
        const std::size_t len = b[at + 1];
        if (len < 4 || len > 253) return 0;
        const std::uint8_t c0 = b[at + 2];
        if ((c0 & 1) == 0) {  // I format: an ASDU follows
            if (len < 6 || (at + 6 < b.n && (b[at + 6] == 0 || b[at + 6] > 127))) return 0;
        } else if ((c0 & 3) == 1) {  // S format
            if (len != 4 || c0 != 1 || b[at + 3] != 0) return 0;
        } else {  // U format: exactly one function bit
            if (len != 4 || b[at + 3] != 0 || b[at + 4] != 0 || b[at + 5] != 0) return 0;
            const std::uint8_t f = c0 >> 2;
            if (f == 0 || (f & (f - 1)) != 0) return 0;
        }
        return 2 + len;
    };
    const std::size_t first = apdu(0);
    if (first == 0) return false;
    const bool port = either_port(sport, dport, 2404);
    if (!port && apdu(first) == 0) return false;
    hit(out, kAppIec104, 0);
    return true;
}

bool detect_modbus(Bytes b, Detection* out) noexcept {
    if (!modbus_tcp(b)) return false;
    hit(out, kAppModbus, 0);
    return true;
}

bool detect_dnp3(Bytes b, Detection* out) noexcept {
    // Link header: 05 64, length >= 5, control, destination, source, CRC.
    if (b.n < 10 || b[0] != 0x05 || b[1] != 0x64 || b[2] < 5) return false;
    if (crc_dnp(b.p, 8) != le16(b.p + 8)) return false;
    hit(out, kAppDnp3, 0);
    return true;
}

bool detect_syslog(Bytes b, Detection* out) noexcept {
    if (b.n < 6) return false;
    if (b[0] == '<') {
        if (!syslog_message(b.p, b.n)) return false;
    } else {
        // RFC 6587 octet counting: "<length> <PRI>...".
        std::size_t i = 0;
        while (i < b.n && i < 6 && digit(b[i])) ++i;
        if (i == 0 || i + 1 >= b.n || b[i] != ' ' || !syslog_message(b.p + i + 1, b.n - i - 1))
            return false;
    }
    hit(out, kAppSyslog, kActInfrastructure);
    return true;
}

bool detect_resp(Bytes b, bool client, Detection* out) noexcept {
    if (b.n < 4) return false;
    if (client) {
        if (b[0] != '*' || !resp_command(b)) return false;
    } else {
        // Replies that no other greeting shares: errors and integers.
        const bool err = b.starts("-ERR ", 5) || b.starts("-NOAUTH ", 8) ||
                         b.starts("-WRONGTYPE ", 11) || b.starts("+PONG\r\n", 7);
        if (!err) return false;
    }
    hit(out, kAppRedis, 0);
    return true;
}

bool detect_text(Bytes b, bool client, bool tcp, std::uint16_t sport, std::uint16_t dport,
                 Detection* out) noexcept {
    if (b.n < 4) return false;
    switch (b[0]) {
        case 'G':
            if (b.starts("GNUTELLA CONNECT/", 17) || b.starts("GNUTELLA/0.", 11)) {
                hit(out, kAppGnutella, kActP2pFilesharing);
                return true;
            }
            if (!tcp && b.starts("GND", 3) && detect_gnutella_udp(b, out)) return true;
            return false;
        case 'R':
            if (tcp && b.n >= 12 && b.starts("RFB 00", 6) && digit(b[6]) && b[7] == '.' &&
                digit(b[8]) && digit(b[9]) && digit(b[10]) && b[11] == '\n') {
                hit(out, kAppVnc, kActRemoteAdmin);
                return true;
            }
            break;
        case 'A':
            if (tcp && b.n >= 8 && b.starts("AMQP", 4) && b[4] <= 3 && b[5] <= 1 && b[6] <= 9) {
                hit(out, kAppAmqp, 0);
                return true;
            }
            break;
        case 'Z':
            if (tcp && b.n >= 13 && b.starts("ZBXD", 4) && (b[4] & ~0x07) == 0 && b[4] != 0) {
                hit(out, kAppZabbix, kActInfrastructure);
                return true;
            }
            break;
        case 'H': case 'C': case 'I': case 'B':
            // DirectConnect ADC: "HSUP ADBASE", "CSUP ADBASE", "ISUP ADBASE".
            if (tcp && b.n >= 11 && std::memcmp(b.p + 1, "SUP AD", 6) == 0 &&
                (b.starts("HSUP ADBAS", 10) || b.starts("CSUP ADBAS", 10) ||
                 b.starts("ISUP ADBAS", 10))) {
                hit(out, kAppDirectconnect, kActP2pFilesharing);
                return true;
            }
            break;
        case 'W': case 'E':
            // WhatsApp's chat connection prologue (nDPI whatsapp.c).
            if (tcp && client &&
                (b.starts("WA\x01\x05", 4) || b.starts("ED\x00\x01\x00\x00\x04\x08", 8) ||
                 b.starts("ED\x00\x01\x00\x00\x02\x08", 8))) {
                hit(out, kAppWhatsapp, kActSocial);
                return true;
            }
            break;
        case 'M': case 'N':
            if (!tcp && either_port(sport, dport, 1900) &&
                (b.starts("M-SEARCH * HTTP/1.1", 19) || b.starts("NOTIFY * HTTP/1.1", 17))) {
                hit(out, kAppSsdp, kActInfrastructure);
                return true;
            }
            break;
        case '$':
            // NMDC DirectConnect: "$Lock ", "$MyNick ", "$Supports ", ... ending in '|'.
            if (tcp && (b.starts("$Lock ", 6) || b.starts("$MyNick ", 8) ||
                        b.starts("$Supports ", 10) || b.starts("$ValidateNick ", 14) ||
                        b.starts("$Key ", 5) || b.starts("$Direction ", 11)) &&
                std::memchr(b.p, '|', b.n) != nullptr) {
                hit(out, kAppDirectconnect, kActP2pFilesharing);
                return true;
            }
            return false;
        case '0':
            // tinc's ID request: "0 <node name> 17.<minor>".
            if (tcp && b[1] == ' ') {
                std::size_t i = 2;
                while (i < b.n && i < 2 + 64 &&
                       (((b[i] | 0x20) >= 'a' && (b[i] | 0x20) <= 'z') || digit(b[i]) || b[i] == '_'))
                    ++i;
                if (i > 2 && i + 4 <= b.n && b[i] == ' ' && b[i + 1] == '1' && b[i + 2] == '7' &&
                    b[i + 3] == '.') {
                    hit(out, kAppTinc, kActVpn);
                    return true;
                }
            }
            return false;
        case 'S':
            if (b.starts("SIP/2.0 ", 8) && b.n >= 11 && digit(b[8])) {
                hit(out, kAppSip, 0);
                return true;
            }
            break;
        case 'P':
            if (b.starts("PRI * HTTP/2.0\r\n", 16)) {  // HTTP/2 with prior knowledge
                hit(out, kAppHttp, 0);
                return true;
            }
            break;
        default:
            break;
    }
    if (b[0] >= 'A' && b[0] <= 'Z' && sip_method(b.p, b.n)) {
        hit(out, kAppSip, 0);
        return true;
    }
    if (!tcp && b.starts("HTTP/1.1 200 OK", 15) && either_port(sport, dport, 1900)) {
        hit(out, kAppSsdp, kActInfrastructure);
        return true;
    }
    return false;
}

bool detect_dhcp(Bytes b, std::uint16_t sport, std::uint16_t dport, Detection* out) noexcept {
    // BOOTP/DHCP: op 1 or 2, a hardware address length up to 16, and the
    // DHCP magic cookie at byte 236.
    if (!(either_port(sport, dport, 67) || either_port(sport, dport, 68))) return false;
    if (b.n < 240 || (b[0] != 1 && b[0] != 2) || b[2] > 16 || be32(b.p + 236) != 0x63825363u)
        return false;
    hit(out, kAppDhcp, kActInfrastructure);
    return true;
}

bool detect_udp_ports(Bytes b, std::uint16_t sport, std::uint16_t dport, Detection* out) noexcept {
    const auto on = [sport, dport](std::uint16_t p) { return sport == p || dport == p; };
    if (b.n < 4) return false;
    if (on(123) && b.n >= 48) {
        // NTP: version 1..4; modes 1..5 with a stratum up to 16.
        const unsigned vn = (b[0] >> 3) & 7, mode = b[0] & 7;
        if (vn >= 1 && vn <= 4 && mode >= 1 && mode <= 5 && b[1] <= 16) {
            hit(out, kAppNtp, kActInfrastructure);
            return true;
        }
        return false;
    }
    if (on(1812) || on(1813) || on(1645) || on(1646) || on(3799)) {
        const std::uint8_t code = b[0];
        const std::size_t len = be16(b.p + 2);
        const bool known = (code >= 1 && code <= 5) || (code >= 11 && code <= 13) ||
                           (code >= 40 && code <= 45);
        if (known && b.n >= 20 && len >= 20 && len <= 4096 && len <= b.n) {
            hit(out, kAppRadius, kActInfrastructure);
            return true;
        }
        return false;
    }
    if (on(67) || on(68)) return detect_dhcp(b, sport, dport, out);
    if (on(546) || on(547)) {
        if (b[0] >= 1 && b[0] <= 13) {  // DHCPv6 message types
            hit(out, kAppDhcp, kActInfrastructure);
            return true;
        }
        return false;
    }
    if (on(1701)) {
        // L2TPv2/v3 header: version in the low nibble of byte 1; control
        // messages (T) carry the length (L) and sequence (S) bits.
        const unsigned version = b[1] & 0x0f;
        const bool control = b[0] & 0x80;
        if ((version == 2 || version == 3) && (b[0] & 0x34) == 0 &&
            (!control || ((b[0] & 0x48) == 0x48 && be16(b.p + 2) >= 12))) {
            hit(out, kAppL2tp, kActVpn);
            return true;
        }
        return false;
    }
    if (on(3389) && b.n >= 16 && be32(b.p) == 0xffffffffu) {
        // RDP-UDP SYN: snSourceAck -1, then receive window and flags.
        hit(out, kAppRdp, kActRemoteAdmin);
        return true;
    }
    if ((sport >= 8801 && sport <= 8810) || (dport >= 8801 && dport <= 8810)) {
        // Zoom's server encapsulation (IMC 2022, Princeton zoom-analysis):
        // type 5, direction 0 or 4, then the media encapsulation type.
        if (b.n >= 24 && b[0] == 5 && (b[7] == 0 || b[7] == 4)) {
            switch (b[8]) {
                case 1: case 13: case 15: case 16: case 21: case 30: case 32: case 33:
                case 34: case 35:
                    hit(out, kAppZoom, 0);
                    return true;
                default:
                    break;
            }
        }
        return false;
    }
    if (on(9993) && b.n >= 29) {
        // ZeroTier HELLO (node/Packet.hpp): cipher suite 0 leaves the verb
        // (byte 27) readable; protocol version after it.
        const unsigned cipher = (b[18] >> 3) & 7;
        if (cipher == 0 && (b[27] & 0x1f) == 1 && b[28] >= 4 && b[28] <= 20) {
            hit(out, kAppZerotier, kActVpn);
            return true;
        }
        return false;
    }
    if (on(21027) || on(22067)) return detect_syncthing_udp(b, out);
    if (on(138) && b.n >= 14 && b[0] >= 0x10 && b[0] <= 0x16 && be16(b.p + 8) == 138) {
        // NetBIOS datagram service: type, flags, id, source IP, port 138.
        hit(out, kAppNetbiosDgm, kActInfrastructure);
        return true;
    }
    return false;
}

}  // namespace nkclass::det
