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

// Lowercase literals. Every one contains "miner" or starts with "xmr", so
// one pass over the User-Agent looks for those two anchors and only then
// compares the whole names (see miner_agent).
struct Lit { const char* s; std::size_t n; };
constexpr Lit kMinerAgents[] = {{"cpuminer", 8}, {"cgminer", 7},  {"bfgminer", 8}, {"sgminer", 7},
                                {"ccminer", 7},  {"xmrig", 5},    {"xmr-stak", 8}, {"rhminer", 7},
                                {"ethminer", 8}, {"nheqminer", 9}};

// Word compares where eight bytes can be read, the last word overlapping
// the one before: no byte loop for the header names every line is tried on.
template <std::size_t K>
bool starts_ci(const std::uint8_t* p, std::size_t n, const char (&lit)[K]) noexcept {
    constexpr std::size_t k = K - 1;
    if (n < k) return false;
    if constexpr (k >= 8) {
        for (std::size_t i = 0; i + 8 < k; i += 8)
            if (bytes::lower8(bytes::load8(p + i)) != bytes::load8(lit + i)) return false;
        return bytes::lower8(bytes::load8(p + k - 8)) == bytes::load8(lit + k - 8);
    } else {
        if (n >= 8) {
            constexpr std::uint64_t mask = bytes::first_bytes_mask(k);
            const std::uint64_t want = bytes::word_of(lit, k);
            return ((bytes::lower8(bytes::load8(p)) ^ want) & mask) == 0;
        }
        for (std::size_t i = 0; i < k; ++i)
            if (lower(static_cast<char>(p[i])) != lit[i]) return false;
        return true;
    }
}

bool starts_ci(const std::uint8_t* p, std::size_t n, const Lit& lit) noexcept {
    if (n < lit.n) return false;
    for (std::size_t i = 0; i < lit.n; ++i)
        if (lower(static_cast<char>(p[i])) != lit.s[i]) return false;
    return true;
}

// True when [p, p+n) contains one of kMinerAgents (case-insensitive): the
// same answer as searching for each name in turn, in one pass. A name
// occurs at i only if "miner" occurs at i + (its length - 5), or "xmr" at i,
// so only the 'm' and 'x' of the agent are tried, found eight bytes at a time.
bool miner_agent(const std::uint8_t* p, std::size_t n) noexcept {
    for (std::size_t from = 0; from < n; from += 8) {
        std::uint64_t w = 0;  // zero bytes past the end match neither letter
        if (from + 8 <= n)
            w = bytes::load8(p + from);
        else
            std::memcpy(&w, p + from, n - from);
        w = bytes::lower8(w);
        std::uint64_t anchors = bytes::eq_bytes8(w, 'm') | bytes::eq_bytes8(w, 'x');
        for (; anchors != 0; anchors &= anchors - 1) {
            const std::size_t j = from + bytes::lowest_flagged_byte(anchors);
            if (lower(static_cast<char>(p[j])) == 'x') {
                if (starts_ci(p + j, n - j, kMinerAgents[5]) ||
                    starts_ci(p + j, n - j, kMinerAgents[6]))
                    return true;
            } else if (starts_ci(p + j, n - j, "miner")) {
                for (const Lit& m : kMinerAgents) {
                    if (m.s[0] == 'x') continue;
                    const std::size_t pre = m.n - 5;
                    if (j >= pre && starts_ci(p + j - pre, n - j + pre, m)) return true;
                }
            }
        }
    }
    return false;
}

// Searches for a literal that starts with '\n', jumping line to line.
template <std::size_t K>
bool contains_line_ci(const std::uint8_t* p, std::size_t n, const char (&lit)[K]) noexcept {
    static_assert(K > 1);
    for (std::size_t q = bytes::find(p, 0, n, lit[0]); q < n; q = bytes::find(p, q + 1, n, lit[0]))
        if (starts_ci(p + q, n - q, lit)) return true;
    return false;
}

bool contains(const std::uint8_t* p, std::size_t n, const char* lit, std::size_t k) noexcept {
    return k <= n && memmem(p, n, lit, k) != nullptr;
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
    const void* colon = std::memchr(s, ':', n);
    const std::size_t k = colon ? static_cast<std::size_t>(static_cast<const std::uint8_t*>(colon) - s) : n;
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
        if (contains_line_ci(b.p, b.n, "\nx-stratum:")) out->activity = kActMining;
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
    const std::size_t t = bytes::printable_end(b.p, mlen, b.n);
    const std::uint8_t* target = b.p + mlen;
    const std::size_t target_len = t - mlen;
    std::size_t line_end = b.n;
    if (t < b.n) {
        if (b[t] != ' ' || t + 9 > b.n) {
            if (b[t] != ' ') return false;
        } else if (std::memcmp(b.p + t + 1, "HTTP/1.", 7) != 0) {
            return false;
        }
        line_end = bytes::find(b.p, t, b.n, '\n');
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
    // No '=' (most targets) rules the announce out for a short memchr
    // instead of a memmem.
    if (std::memchr(target, '=', target_len) != nullptr &&
        contains(target, target_len, "info_hash=", 10)) {
        hit(out, kAppBittorrent, kActP2pFilesharing);
    } else if (target_len >= 34 &&
               std::memcmp(target, "/tor/status-vote/current/consensus", 34) == 0) {
        out->activity = kActTor;
    }
    // Headers: Host, User-Agent, mining announcements; body after the blank line.
    std::size_t i = line_end + 1;
    std::size_t body = b.n;
    while (i < b.n) {
        const std::size_t e = bytes::find(b.p, i, b.n, '\n');
        const std::uint8_t* line = b.p + i;
        std::size_t n = e - i;
        if (n == 0 || (n == 1 && line[0] == '\r')) {
            body = e + 1;
            break;
        }
        if (e == b.n) break;  // incomplete header line
        const char first = lower(static_cast<char>(line[0]));
        if (first != 'h' && first != 'u' && first != 'x') {
            // Not a header this detector reads.
        } else if (starts_ci(line, n, "host:")) {
            const std::uint8_t* v = line + 5;
            std::size_t vn = n - 5;
            trim(v, vn);
            host_name(out, v, vn);
        } else if (starts_ci(line, n, "user-agent:")) {
            const std::uint8_t* v = line + 11;
            std::size_t vn = n - 11;
            trim(v, vn);
            set_agent(out, v, vn);
            if (miner_agent(v, vn)) out->activity = kActMining;
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
