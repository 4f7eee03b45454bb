// Line-based greetings: SSH version banners (either side), SMTP / FTP
// "220" greetings, IMAP "* OK", POP3 "+OK" (server side), SMTP EHLO/HELO
// (client side).
#include "detect_internal.hpp"

namespace nkclass::det {

namespace {

// True when [p, p+n) up to the first '\n' contains `lit` (case-insensitive).
bool first_line_has(const std::uint8_t* p, std::size_t n, const char* lit) noexcept {
    const std::size_t k = std::strlen(lit);
    for (std::size_t i = 0; i + k <= n && p[i] != '\n'; ++i) {
        std::size_t j = 0;
        while (j < k && lower(static_cast<char>(p[i + j])) == lit[j]) ++j;
        if (j == k) return true;
    }
    return false;
}

}  // namespace

bool detect_banner(Bytes b, bool client, Detection* out) noexcept {
    if (b.n < 3) return false;
    const std::uint8_t c = b[0];
    if (c == 'S') {
        if (b.starts("SSH-2.0-", 8) || b.starts("SSH-1.99-", 9)) {
            hit(out, kAppSsh, kActRemoteAdmin);
            return true;
        }
        return false;
    }
    if (client) {
        if ((b.starts("EHLO ", 5) || b.starts("HELO ", 5)) && b.n > 5 && b[5] > 0x20) {
            hit(out, kAppSmtp, kActEmail);
            return true;
        }
        return false;
    }
    if (c == '2' && (b.starts("220 ", 4) || b.starts("220-", 4))) {
        if (first_line_has(b.p, b.n, "smtp")) {
            hit(out, kAppSmtp, kActEmail);
            return true;
        }
        if (first_line_has(b.p, b.n, "ftp")) {
            hit(out, kAppFtp, 0);
            return true;
        }
        return false;
    }
    if (c == '*' && (b.starts("* OK", 4) || b.starts("* PREAUTH", 9))) {
        hit(out, kAppImap, kActEmail);
        return true;
    }
    if (c == '+' && b.starts("+OK", 3) && (b.n == 3 || b[3] == ' ' || b[3] == '\r')) {
        hit(out, kAppPop3, kActEmail);
        return true;
    }
    return false;
}

}  // namespace nkclass::det
