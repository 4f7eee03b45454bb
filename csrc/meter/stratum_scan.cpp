// Streaming stratum share and difficulty counters (see stratum_scan.hpp).
#include "nkclass/stratum_scan.hpp"

#include <charconv>
#include <cmath>
#include <cstring>

namespace nkclass {

namespace {

enum Key : std::uint8_t { kNoKey = 0, kMethod, kParams, kTarget };
enum Method : std::uint8_t { kNoMethod = 0, kSubmitV1, kSubmitCn, kSetDifficulty };

bool is_space(std::uint8_t c) noexcept { return c == ' ' || c == '\t' || c == '\r'; }

bool is_number_char(std::uint8_t c) noexcept {
    return (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '+' || c == 'e' || c == 'E';
}

bool equals(const StratumSideScan& s, const char* word) noexcept {
    const std::size_t n = std::strlen(word);
    return !s.str_over && s.str_len == n && std::memcmp(s.str, word, n) == 0;
}

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// A CryptoNote target: 8 or 16 hex digits, little-endian. Returns the share
// difficulty (2^32 or 2^64 over the target), 0 when not a target.
double target_difficulty(const StratumSideScan& s) noexcept {
    if (s.str_over || (s.str_len != 8 && s.str_len != 16)) return 0;
    std::uint64_t value = 0;
    for (int i = 0; i < s.str_len; i += 2) {
        const int hi = hex_value(s.str[i]), lo = hex_value(s.str[i + 1]);
        if (hi < 0 || lo < 0) return 0;
        value |= std::uint64_t(hi * 16 + lo) << (4 * i);  // byte i/2 at bits 8*(i/2)
    }
    if (value == 0) return 0;
    return std::ldexp(1.0, s.str_len == 8 ? 32 : 64) / double(value);
}

void end_string(StratumSideScan& s) noexcept {
    if (s.value_of == kMethod) {
        if (equals(s, "mining.submit")) s.line_method = kSubmitV1;
        else if (equals(s, "submit")) s.line_method = kSubmitCn;
        else if (equals(s, "mining.set_difficulty")) s.line_method = kSetDifficulty;
    } else if (s.value_of == kTarget) {
        const double d = target_difficulty(s);
        if (d > 0) {
            s.line_has_target = true;
            s.line_target_difficulty = d;
        }
    }
    s.value_of = kNoKey;
    s.pending_key = equals(s, "method") ? kMethod
                    : equals(s, "params") ? kParams
                    : equals(s, "target") ? kTarget
                                          : kNoKey;
}

void end_number(StratumSideScan& s) noexcept {
    s.params = 0;
    if (s.num_over || s.num_len == 0) return;
    double v = 0;
    const auto r = std::from_chars(s.num, s.num + s.num_len, v);
    if (r.ec != std::errc() || r.ptr != s.num + s.num_len || !std::isfinite(v) || v <= 0) return;
    s.line_has_number = true;
    s.line_number = v;
}

void end_line(StratumFlow& f, StratumSideScan& s) noexcept {
    if (s.params == 2) end_number(s);
    if (!s.discard) {
        if (s.line_method == kSubmitV1 || s.line_method == kSubmitCn) {
            ++f.submits;
            if (f.difficulty == 0)
                f.algo = s.line_method == kSubmitV1 ? StratumAlgo::kV1 : StratumAlgo::kCryptoNote;
        } else if (s.line_method == kSetDifficulty && s.line_has_number) {
            f.difficulty = s.line_number;
            f.algo = StratumAlgo::kV1;
        }
        if (s.line_has_target && s.line_method != kSetDifficulty) {
            f.difficulty = s.line_target_difficulty;
            f.algo = StratumAlgo::kCryptoNote;
        }
    }
    const std::uint32_t next_seq = s.next_seq;
    const bool has_next = s.has_next;
    s = StratumSideScan{};
    s.next_seq = next_seq;
    s.has_next = has_next;
}

}  // namespace

void stratum_scan(StratumFlow& f, int side, const std::uint8_t* p, std::size_t n) noexcept {
    StratumSideScan& s = f.side[side & 1];
    for (std::size_t i = 0; i < n; ++i) {
        const std::uint8_t c = p[i];
        if (c == '\n') {
            // JSON strings never hold a raw newline: a line always ends here.
            end_line(f, s);
            continue;
        }
        if (s.discard) continue;
        if (s.in_string) {
            if (s.escape) {
                s.escape = false;
            } else if (c == '\\') {
                s.escape = true;
                s.str_over = true;  // escaped names are never ones we compare
                continue;
            } else if (c == '"') {
                s.in_string = false;
                end_string(s);
                continue;
            }
            if (s.str_len < StratumSideScan::kStringBytes) s.str[s.str_len++] = char(c);
            else s.str_over = true;
            continue;
        }
        if (s.params == 2) {
            if (is_number_char(c)) {
                if (s.num_len < StratumSideScan::kNumberBytes) s.num[s.num_len++] = char(c);
                else s.num_over = true;
                continue;
            }
            end_number(s);
        }
        if (is_space(c)) continue;
        // Only the token right after `"params": [` can be the difficulty.
        const bool first_param = s.params == 1;
        s.params = 0;
        if (c == '"') {
            s.in_string = true;
            s.str_len = 0;
            s.str_over = false;
            continue;
        }
        if (c == ':') {
            s.value_of = s.pending_key;
            s.pending_key = kNoKey;
            continue;
        }
        s.pending_key = kNoKey;
        if (first_param && is_number_char(c)) {
            s.params = 2;
            s.num_len = 0;
            s.num_over = false;
            s.num[s.num_len++] = char(c);
            continue;
        }
        s.params = (c == '[' && s.value_of == kParams) ? 1 : 0;
        s.value_of = kNoKey;
    }
}

void stratum_gap(StratumFlow& f, int side) noexcept {
    StratumSideScan& s = f.side[side & 1];
    s.discard = true;
}

void stratum_segment(StratumFlow& f, int side, std::uint32_t seq, const std::uint8_t* p,
                     std::size_t n) noexcept {
    StratumSideScan& s = f.side[side & 1];
    if (n == 0) return;
    if (!s.has_next) {
        s.next_seq = seq;
        s.has_next = true;
    }
    const auto ahead = static_cast<std::int32_t>(seq - s.next_seq);
    std::size_t skip = 0;
    if (ahead > 0) {
        stratum_gap(f, side);
    } else if (ahead < 0) {
        skip = std::size_t(-std::int64_t(ahead));
        if (skip >= n) return;  // a retransmission of bytes already scanned
    }
    stratum_scan(f, side, p + skip, n - skip);
    s.next_seq = seq + static_cast<std::uint32_t>(n);
}

}  // namespace nkclass
