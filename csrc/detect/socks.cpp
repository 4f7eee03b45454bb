// SOCKS 4/4a/5 client handshakes. A SOCKS5 or 4a CONNECT to a name ending
// in ".onion" is Tor (Tor Browser and torsocks talk SOCKS to the local
// Tor client).
#include "detect_internal.hpp"

namespace nkclass::det {

namespace {

bool onion(const Detection* out) noexcept {
    return out->name_len > 6 && std::memcmp(out->name + out->name_len - 6, ".onion", 6) == 0;
}

// SOCKS5 request at p: 05 cmd 00 atyp addr port. Fills the name for
// domain targets. Returns true when complete and well-formed.
bool socks5_request(const std::uint8_t* p, std::size_t n, Detection* out) noexcept {
    if (n < 4 || p[0] != 5 || p[1] < 1 || p[1] > 3 || p[2] != 0) return false;
    switch (p[3]) {
        case 1: return n >= 10;
        case 4: return n >= 22;
        case 3: {
            if (n < 5 || p[4] == 0 || n < 5u + p[4] + 2u) return false;
            set_name(out, p + 5, p[4], kNameSocks);
            return true;
        }
        default: return false;
    }
}

}  // namespace

bool detect_socks(Bytes src, Bytes dst, Detection* out) noexcept {
    if (src.n < 3) return false;
    if (src[0] == 5) {
        // Greeting: 05 nmethods methods..., then perhaps the request.
        const std::size_t nm = src[1];
        if (nm == 0 || nm > 16 || src.n < 2 + nm) return false;
        for (std::size_t k = 0; k < nm; ++k) {
            const std::uint8_t m = src[2 + k];
            if (m > 0x09 && m < 0x80) return false;
            if (m == 0xff) return false;
        }
        Detection tmp;
        const bool request = socks5_request(src.p + 2 + nm, src.n - 2 - nm, &tmp);
        const bool exact = src.n == 2 + nm;
        const bool answered = dst.n >= 2 && dst[0] == 5 && (dst[1] <= 0x09 || dst[1] == 0xff);
        if (!(request || (exact && answered))) return false;
        hit(out, kAppSocks, kActProxy);
        if (request && tmp.name_len) {
            std::memcpy(out->name, tmp.name, tmp.name_len + 1u);
            out->name_len = tmp.name_len;
            out->name_kind = kNameSocks;
            if (onion(out)) out->activity = kActTor;
        }
        return true;
    }
    if (src[0] == 4) {
        // 04 cmd port(2) ip(4) userid NUL [domain NUL for 4a].
        if (src.n < 9 || src[1] < 1 || src[1] > 2) return false;
        const void* z = std::memchr(src.p + 8, 0, src.n - 8);
        if (!z) return false;
        std::size_t end = static_cast<std::size_t>(static_cast<const std::uint8_t*>(z) - src.p);
        const bool v4a = src[4] == 0 && src[5] == 0 && src[6] == 0 && src[7] != 0;
        Detection tmp;
        if (v4a) {
            if (end + 1 >= src.n) return false;
            const void* z2 = std::memchr(src.p + end + 1, 0, src.n - end - 1);
            if (!z2) return false;
            const std::size_t dend =
                static_cast<std::size_t>(static_cast<const std::uint8_t*>(z2) - src.p);
            if (!set_name(&tmp, src.p + end + 1, dend - end - 1, kNameSocks)) return false;
            end = dend;
        }
        const bool answered = dst.n >= 2 && dst[0] == 0 && dst[1] >= 0x5a && dst[1] <= 0x5d;
        if (!(src.n == end + 1 || answered)) return false;
        hit(out, kAppSocks, kActProxy);
        if (tmp.name_len) {
            std::memcpy(out->name, tmp.name, tmp.name_len + 1u);
            out->name_len = tmp.name_len;
            out->name_kind = kNameSocks;
            if (onion(out)) out->activity = kActTor;
        }
        return true;
    }
    return false;
}

}  // namespace nkclass::det
