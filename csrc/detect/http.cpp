// HTTP/1.x requests (and responses): method, Host, User-Agent; CONNECT
// proxies; BitTorrent tracker announces; Tor directory consensus fetches;
// mining JSON-RPC in a POST body (getwork / getblocktemplate) or announced
// by mining headers.
#include "detect_internal.hpp"

namespace nkclass::det {

namespace {

struct Method { const char* s; std::size_t n; };
constexpr Method kMethods[] = {
    {"GET ", 4}, {"POST ", 5}, {"HEAD ", 5}, {"PUT ", 4}, {"DELETE ", 7}, {"OPTIONS ", 8},
    {"CONNECT ", 8}, {"PATCH ", 6}, {"TRACE ", 6},
};

constexpr const char* kMinerAgents[] = {"cpuminer", "cgminer", "bfgminer", "sgminer", "ccminer",
                                        "xmrig", "xmr-stak", "rhminer", "ethminer", "nheqminer"};

bool starts_ci(const std::uint8_t* p, std::size_t n, const char* lit) noexcept {
    const std::size_t k = std::strlen(lit);
    if (n < k) return false;
    for (std::size_t i = 0; i < k; ++i)
        if (lower(static_cast<char>(p[i])) != lit[i]) return false;
    return true;
}

bool contains_ci(const std::uint8_t* p, std::size_t n, const char* lit) noexcept {
    const std::size_t k = std::strlen(lit);
    for (std::size_t i = 0; i + k <= n; ++i)
        if (starts_ci(p + i, n - i, lit)) return true;
    return false;
}

bool contains(const std::uint8_t* p, std::size_t n, const char* lit) noexcept {
    const std::size_t k = std::strlen(lit);
    if (k > n) return false;
    for (std::size_t i = 0; i + k <= n; ++i)
        if (p[i] == static_cast<std::uint8_t>(lit[0]) && std::memcmp(p + i, lit, k) == 0)
            return true;
    return false;
}

// Trims spaces/tabs on both ends of [s, s+n).
void trim(const std::uint8_t*& s, std::size_t& n) noexcept {
    while (n > 0 && (*s == ' ' || *s == '\t')) ++s, --n;
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r')) --n;
}

// Host without the port ("example.com:8080" -> "example.com"); bracketed
// IPv6 literals give no name.
void host_name(Detection* out, const std::uint8_t* s, std::size_t n) noexcept {
    if (n == 0 || s[0] == '[') return;
    std::size_t k = 0;
    while (k < n && s[k] != ':') ++k;
    set_name(out, s, k, kNameHost);
}

bool ends_with_onion(const char* name, std::size_t len) noexcept {
    return len > 6 && std::memcmp(name + len - 6, ".onion", 6) == 0;
}

}  // namespace

bool detect_http(Bytes b, bool client, Detection* out) noexcept {
    if (b.n < 4 || b[0] < 'A' || b[0] > 'Z') return false;
    if (!client) {
        if (!b.starts("HTTP/1.", 7)) return false;
        hit(out, kAppHttp, 0);
        // A pool answering getwork announces stratum support (ET sid 2017960).
        if (contains_ci(b.p, b.n, "\nx-stratum:")) out->activity = kActMining;
        return true;
    }
    std::size_t mlen = 0;
    for (const Method& m : kMethods)
        if (b.starts(m.s, m.n)) {
            mlen = m.n;
            break;
        }
    if (mlen == 0 || b.n <= mlen) return false;
    // Request target: printable, no spaces; then " HTTP/1.x" when the line
    // is complete.
    const std::uint8_t first = b[mlen];
    if (!(first == '/' || first == '*' || (first >= 'a' && first <= 'z') ||
          (first >= 'A' && first <= 'Z') || (first >= '0' && first <= '9') || first == '['))
        return false;
    std::size_t t = mlen;
    while (t < b.n && b[t] > 0x20 && b[t] < 0x7f) ++t;
    const std::uint8_t* target = b.p + mlen;
    const std::size_t target_len = t - mlen;
    std::size_t line_end = b.n;
    if (t < b.n) {
        if (b[t] != ' ' || t + 9 > b.n) {
            if (b[t] != ' ') return false;
        } else if (std::memcmp(b.p + t + 1, "HTTP/1.", 7) != 0) {
            return false;
        }
        const void* nl = std::memchr(b.p + t, '\n', b.n - t);
        line_end = nl ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - b.p) : b.n;
    }
    const bool connect = mlen == 8 && b.starts("CONNECT ", 8);
    if (connect) {
        hit(out, kAppHttpProxy, kActProxy);
        host_name(out, target, target_len);
        if (ends_with_onion(out->name, out->name_len)) out->activity = kActTor;
        out->name_kind = out->name_len ? kNameHost : kNameNone;
        return true;
    }
    hit(out, kAppHttp, 0);
    if (contains(target, target_len, "info_hash=")) {
        hit(out, kAppBittorrent, kActP2pFilesharing);
    } else if (target_len >= 34 &&
               std::memcmp(target, "/tor/status-vote/current/consensus", 34) == 0) {
        out->activity = kActTor;
    }
    // Headers: Host, User-Agent, mining announcements; body after the blank line.
    std::size_t i = line_end + 1;
    std::size_t body = b.n;
    while (i < b.n) {
        const void* nl = std::memchr(b.p + i, '\n', b.n - i);
        const std::size_t e = nl ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(nl) - b.p) : b.n;
        const std::uint8_t* line = b.p + i;
        std::size_t n = e - i;
        if (n == 0 || (n == 1 && line[0] == '\r')) {
            body = e + 1;
            break;
        }
        if (!nl) break;  // incomplete header line
        if (starts_ci(line, n, "host:")) {
            const std::uint8_t* v = line + 5;
            std::size_t vn = n - 5;
            trim(v, vn);
            host_name(out, v, vn);
        } else if (starts_ci(line, n, "user-agent:")) {
            const std::uint8_t* v = line + 11;
            std::size_t vn = n - 11;
            trim(v, vn);
            set_agent(out, v, vn);
            for (const char* m : kMinerAgents)
                if (contains_ci(v, vn, m)) out->activity = kActMining;
        } else if (starts_ci(line, n, "x-mining-extensions:")) {
            out->activity = kActMining;
        }
        i = e + 1;
    }
    if (body < b.n && b.starts("POST ", 5)) {
        StratumMatch m;
        scan_stratum(b.p + body, b.n - body, &m);
        if (m.mining) {
            out->activity = kActMining;
            out->coin = m.coin;
        }
    }
    return true;
}

}  // namespace nkclass::det
