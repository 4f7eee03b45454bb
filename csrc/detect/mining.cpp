// Mining JSON-RPC (stratum v1, CryptoNote stratum, getwork/GBT, Ethereum
// getwork): a small validating JSON scanner over each '\n'-separated line,
// recording only what the method rules of detectors.hpp need.
//
// Why a real scanner instead of literal search: literals such as "method"
// or "login" occur in ordinary JSON-RPC APIs and web pages; the rules need
// the *value* of the top-level "method" key and the key sets of specific
// nested objects, with escapes decoded and duplicate keys resolved the way
// JSON decoders do (last one wins).
#include <array>
#include <iterator>
#include <string_view>

#include "detect_internal.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace nkclass {

namespace {

constexpr int kMaxDepth = 32;
constexpr std::size_t kKeyCap = 16;
constexpr std::size_t kMethodCap = 32;

// Key bits of the objects the rules look into.
enum KeyBit : std::uint16_t {
    kKLogin = 1u << 0, kKAgent = 1u << 1, kKPass = 1u << 2, kKBlob = 1u << 3,
    kKJobId = 1u << 4, kKTarget = 1u << 5, kKNonce = 1u << 6, kKResult = 1u << 7,
    kKSeedHash = 1u << 8, kKAlgo = 1u << 9,
};

struct KeyName { const char* s; std::size_t n; std::uint16_t bit; };
constexpr KeyName kKeys[] = {
    {"login", 5, kKLogin}, {"agent", 5, kKAgent}, {"pass", 4, kKPass}, {"blob", 4, kKBlob},
    {"job_id", 6, kKJobId}, {"target", 6, kKTarget}, {"nonce", 5, kKNonce},
    {"result", 6, kKResult}, {"seed_hash", 9, kKSeedHash}, {"algo", 4, kKAlgo},
};

// key_bit compares one candidate: no two keys share length and the low
// five bits of their first letter.
constexpr bool keys_distinct() {
    for (std::size_t i = 0; i < std::size(kKeys); ++i)
        for (std::size_t j = i + 1; j < std::size(kKeys); ++j)
            if (kKeys[i].n == kKeys[j].n && (kKeys[i].s[0] & 31) == (kKeys[j].s[0] & 31))
                return false;
    return true;
}
static_assert(keys_distinct(), "two stratum keys share a key_bit slot");

// key_bit compares two overlapping words: 4 to 12 bytes.
constexpr bool keys_word_sized() {
    for (const KeyName& k : kKeys)
        if (k.n < 4 || k.n > 12) return false;
    return true;
}
static_assert(keys_word_sized(), "a stratum key too short or long for key_bit's compare");

// The index in kKeys of the key of each (length, first letter's low five
// bits), or -1.
constexpr std::array<std::int8_t, kKeyCap * 32> kKeySlots = [] {
    std::array<std::int8_t, kKeyCap * 32> slots{};
    for (auto& s : slots) s = -1;
    for (std::size_t i = 0; i < std::size(kKeys); ++i)
        slots[kKeys[i].n * 32 + (static_cast<unsigned char>(kKeys[i].s[0]) & 31)] =
            static_cast<std::int8_t>(i);
    return slots;
}();

// Where a value sits, as far as the rules care.
enum class Ctx : std::uint8_t {
    kOther,       // anything the rules ignore
    kTop,         // the top-level object
    kParams,      // top-level "params"
    kParamsAlgo,  // params.algo (string, or array whose first string counts)
    kResult,      // top-level "result"
    kResultJob,   // result.job
    kInResult,    // anything nested inside an array "result"
};

// A decoded string: the first `cap` bytes, its full decoded length and
// whether it is plain ASCII.
struct Str {
    char buf[kMaxAgent + 1];
    std::size_t len = 0;   // full decoded length in bytes (\u escapes count as 1)
    bool ascii = true;
};

struct Line {
    // method
    bool method_is_str = false;
    char method[kMethodCap] = {};
    std::size_t method_len = 0;  // > kMethodCap-1 means "too long to be a known method"
    // params
    bool has_params = false;
    bool params_obj = false;
    bool params_arr = false;
    std::uint16_t params_keys = 0;
    bool first_param_seen = false;
    bool first_param_str = false;
    Str first_param;
    bool agent_str = false;
    Str agent;
    bool login_str = false;
    char login_first = 0;
    std::size_t login_len = 0;
    bool algo_seen = false;   // params.algo resolved to a string
    char algo[4] = {};
    std::size_t algo_len = 0;
    // result
    bool result_obj = false;
    bool result_arr = false;
    bool job_obj = false;
    std::uint16_t job_keys = 0;
    bool job_algo_str = false;
    char job_algo[4] = {};
    std::size_t job_algo_len = 0;
    bool notify_in_result = false;
};

// The first index >= i whose byte ends a run of plain string bytes ('"',
// '\\' or a control byte below 0x20), or n.
inline std::size_t skip_plain(const std::uint8_t* p, std::size_t i, std::size_t n) noexcept {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i ctl_max = _mm_set1_epi8(0x1f);
    for (; i + 16 <= n; i += 16) {
        const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
        const __m128i stop =
            _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)),
                         _mm_cmpeq_epi8(_mm_min_epu8(v, ctl_max), v));  // unsigned v <= 0x1f
        const int mask = _mm_movemask_epi8(stop);
        if (mask != 0) return i + static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
    }
#endif
    while (i < n && p[i] != '"' && p[i] != '\\' && p[i] >= 0x20) ++i;
    return i;
}

// True when no byte of [p, p + n) is 0x80 or above.
inline bool plain_ascii(const std::uint8_t* p, std::size_t n) noexcept {
    std::uint64_t high = 0;
    if (n >= 8) {
        // Words, the last one overlapping: no byte loop to mispredict.
        for (std::size_t i = 0; i + 8 < n; i += 8) high |= bytes::load8(p + i);
        high |= bytes::load8(p + n - 8);
    } else {
        for (std::size_t i = 0; i < n; ++i) high |= p[i];
    }
    return (high & bytes::kHighs) == 0;
}

class Scanner {
public:
    Scanner(const std::uint8_t* p, std::size_t n) : p_(p), n_(n) {}

    // Parses one object starting at p_[0] == '{' and ending at n_ (only
    // whitespace may follow). Returns false on any JSON error.
    bool line(Line* out) {
        line_ = out;
        i_ = 0;
        if (!object(1, Ctx::kTop)) return false;
        skip_ws();
        return i_ == n_;
    }

private:
    const std::uint8_t* p_;
    std::size_t n_;
    std::size_t i_ = 0;
    Line* line_ = nullptr;

    // Whitespace is all at or below ' ': one compare decides the usual
    // case, a token next.
    void skip_ws() noexcept {
        std::size_t i = i_;
        while (i < n_ && p_[i] <= ' ' &&
               (p_[i] == ' ' || p_[i] == '\t' || p_[i] == '\r' || p_[i] == '\n'))
            ++i;
        i_ = i;
    }

    // Steps over `c` when it comes next.
    bool take(char c) noexcept {
        if (i_ >= n_ || p_[i_] != c) return false;
        ++i_;
        return true;
    }

    static int hexval(std::uint8_t c) noexcept {
        if (c >= '0' && c <= '9') return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    }

    // Parses a string at p_[i_] == '"'; decodes into `buf` (capacity `cap`,
    // NUL-terminated, may be null). Sets *len to the full decoded length and
    // *ascii to whether every character was ASCII.
    bool string(char* buf, std::size_t cap, std::size_t* len, bool* ascii) noexcept {
        ++i_;  // opening quote
        std::size_t k = 0;
        bool is_ascii = true;
        while (true) {
            // Plain bytes (no quote, backslash or control byte) decode to
            // themselves: find where the run ends in bulk, keep what fits in
            // `buf` and test the run for non-ASCII bytes once (job blobs,
            // wallets and hashes are hundreds of hex digits; keys a few).
            const std::size_t from = i_;
            i_ = skip_plain(p_, i_, n_);
            if (i_ > from) {
                const std::size_t run = i_ - from;
                if (buf != nullptr && k + 1 < cap) {
                    const std::size_t keep = std::min(run, cap - 1 - k);
                    std::memcpy(buf + k, p_ + from, keep);
                }
                if (ascii != nullptr && is_ascii) is_ascii = plain_ascii(p_ + from, run);
                k += run;
            }
            if (i_ >= n_) return false;
            std::uint8_t c = p_[i_++];
            char out;
            if (c == '"') break;
            // skip_plain stops only at a quote, a backslash or a control byte.
            if (c != '\\') return false;
            if (i_ >= n_) return false;
            const std::uint8_t e = p_[i_++];
            switch (e) {
                case '"': out = '"'; break;
                case '\\': out = '\\'; break;
                case '/': out = '/'; break;
                case 'b': out = '\b'; break;
                case 'f': out = '\f'; break;
                case 'n': out = '\n'; break;
                case 'r': out = '\r'; break;
                case 't': out = '\t'; break;
                case 'u': {
                    if (i_ + 4 > n_) return false;
                    unsigned v = 0;
                    for (int j = 0; j < 4; ++j) {
                        const int h = hexval(p_[i_ + j]);
                        if (h < 0) return false;
                        v = (v << 4) | unsigned(h);
                    }
                    i_ += 4;
                    // A surrogate pair decodes to one character, as
                    // JSON decoders do.
                    if (v >= 0xd800 && v <= 0xdbff && i_ + 6 <= n_ && p_[i_] == '\\' &&
                        p_[i_ + 1] == 'u') {
                        unsigned w = 0;
                        bool hex = true;
                        for (int j = 0; j < 4; ++j) {
                            const int h = hexval(p_[i_ + 2 + j]);
                            if (h < 0) hex = false;
                            w = (w << 4) | unsigned(h < 0 ? 0 : h);
                        }
                        if (!hex) return false;
                        if (w >= 0xdc00 && w <= 0xdfff) i_ += 6;
                    }
                    if (v < 0x80) {
                        out = static_cast<char>(v);
                    } else {
                        out = '?';
                        is_ascii = false;
                    }
                    break;
                }
                default: return false;
            }
            if (buf != nullptr && k + 1 < cap) buf[k] = out;
            ++k;
        }
        if (buf != nullptr) buf[k + 1 < cap ? k : cap - 1] = '\0';
        if (len) *len = k;
        if (ascii) *ascii = is_ascii;
        return true;
    }

    bool digits() noexcept {
        const std::size_t start = i_;
        while (i_ < n_ && p_[i_] >= '0' && p_[i_] <= '9') ++i_;
        return i_ > start;
    }

    bool number() noexcept {
        take('-');
        if (i_ >= n_) return false;
        if (p_[i_] == '0') {
            ++i_;
        } else if (p_[i_] >= '1' && p_[i_] <= '9') {
            digits();
        } else {
            return false;
        }
        if (take('.') && !digits()) return false;
        if (i_ < n_ && (p_[i_] == 'e' || p_[i_] == 'E')) {
            ++i_;
            if (i_ < n_ && (p_[i_] == '+' || p_[i_] == '-')) ++i_;
            if (!digits()) return false;
        }
        return true;
    }

    bool literal(const char* s, std::size_t k) noexcept {
        if (i_ + k > n_ || std::memcmp(p_ + i_, s, k) != 0) return false;
        i_ += k;
        return true;
    }

    // The known keys differ in (first letter, length): one candidate each,
    // looked up rather than searched for (a search's exit, at a different
    // key each time, mispredicts).
    static std::uint16_t key_bit(const char* key, std::size_t len) noexcept {
        if (len == 0 || len >= kKeyCap) return 0;
        const int slot = kKeySlots[len * 32 + (static_cast<unsigned char>(key[0]) & 31)];
        if (slot < 0) return 0;
        // Every key is 4 to 12 bytes long (asserted above): two overlapping
        // words cover it, where a variable-length memcmp was a library call.
        const KeyName& k = kKeys[slot];
        std::uint32_t a0, a1, b0, b1;
        std::memcpy(&a0, key, 4), std::memcpy(&a1, key + len - 4, 4);
        std::memcpy(&b0, k.s, 4), std::memcpy(&b1, k.s + len - 4, 4);
        const bool equal = len <= 8 ? (a0 == b0 && a1 == b1)
                                    : (bytes::load8(key) == bytes::load8(k.s) && a1 == b1);
        return equal ? k.bit : 0;
    }

    // Records a string value found in context `ctx` under key `key_bit`
    // (or as an array element when `in_array`).
    bool string_value(Ctx ctx, std::uint16_t bit, bool is_method) {
        Line& L = *line_;
        if (is_method) {
            std::size_t len = 0;
            bool ascii = true;
            if (!string(L.method, kMethodCap, &len, &ascii)) return false;
            L.method_is_str = true;
            L.method_len = ascii ? len : kMethodCap;  // non-ASCII never names a method
            return true;
        }
        if (ctx == Ctx::kParams && bit == kKAgent) {
            if (!string(L.agent.buf, sizeof L.agent.buf, &L.agent.len, &L.agent.ascii)) return false;
            L.agent_str = true;
            return true;
        }
        if (ctx == Ctx::kParams && bit == kKLogin) {
            char first[2] = {};
            if (!string(first, sizeof first, &L.login_len, nullptr)) return false;
            L.login_str = true;
            L.login_first = first[0];
            return true;
        }
        if ((ctx == Ctx::kParams && bit == kKAlgo) || ctx == Ctx::kParamsAlgo) {
            if (!string(L.algo, sizeof L.algo, &L.algo_len, nullptr)) return false;
            L.algo_seen = true;
            return true;
        }
        if (ctx == Ctx::kResultJob && bit == kKAlgo) {
            if (!string(L.job_algo, sizeof L.job_algo, &L.job_algo_len, nullptr)) return false;
            L.job_algo_str = true;
            return true;
        }
        if (ctx == Ctx::kInResult) {
            char buf[16];
            std::size_t len = 0;
            if (!string(buf, sizeof buf, &len, nullptr)) return false;
            if (len == 13 && std::memcmp(buf, "mining.notify", 13) == 0) L.notify_in_result = true;
            return true;
        }
        return string(nullptr, 0, nullptr, nullptr);
    }

    // A value under key `key` (bit `bit`, or 0) of an object in context
    // `parent`, or an array element of context `parent` (key == nullptr).
    bool value(int depth, Ctx parent, const char* key, std::size_t key_len, std::uint16_t bit,
               bool first_elem) {
        if (i_ >= n_) return false;
        Line& L = *line_;
        // The context this value creates for its children.
        Ctx ctx = Ctx::kOther;
        bool is_method = false;
        if (parent == Ctx::kTop && key != nullptr) {
            if (key_len == 6 && std::memcmp(key, "method", 6) == 0) {
                is_method = true;
                L.method_is_str = false;
                L.method_len = 0;
            } else if (key_len == 6 && std::memcmp(key, "params", 6) == 0) {
                ctx = Ctx::kParams;
                L.has_params = true;
                L.params_obj = L.params_arr = false;
                L.params_keys = 0;
                L.first_param_seen = L.first_param_str = false;
                L.agent_str = L.login_str = L.algo_seen = false;
            } else if (key_len == 6 && std::memcmp(key, "result", 6) == 0) {
                ctx = Ctx::kResult;
                L.result_obj = L.result_arr = L.job_obj = false;
                L.job_keys = 0;
                L.job_algo_str = false;
                L.notify_in_result = false;
            }
        } else if (parent == Ctx::kParams && key != nullptr) {
            if (bit == kKAgent) L.agent_str = false;
            if (bit == kKLogin) L.login_str = false;
            if (bit == kKAlgo) {
                L.algo_seen = false;
                ctx = Ctx::kParamsAlgo;  // an algo array: its first string counts
            }
        } else if (parent == Ctx::kResult && key != nullptr && key_len == 3 &&
                   std::memcmp(key, "job", 3) == 0) {
            ctx = Ctx::kResultJob;
            L.job_obj = false;
            L.job_keys = 0;
            L.job_algo_str = false;
        } else if (parent == Ctx::kResultJob && bit == kKAlgo) {
            L.job_algo_str = false;
        } else if (parent == Ctx::kInResult) {
            ctx = Ctx::kInResult;
        }

        const std::uint8_t c = p_[i_];
        if (c == '"') {
            if (parent == Ctx::kParams && key == nullptr && first_elem) {
                L.first_param_seen = true;
                L.first_param_str = true;
                return string(L.first_param.buf, sizeof L.first_param.buf, &L.first_param.len,
                              &L.first_param.ascii);
            }
            if (parent == Ctx::kParamsAlgo && key == nullptr) {
                if (!first_elem) return string(nullptr, 0, nullptr, nullptr);
                return string_value(Ctx::kParamsAlgo, 0, false);
            }
            if (ctx == Ctx::kParamsAlgo) return string_value(Ctx::kParams, kKAlgo, false);
            return string_value(parent, bit, is_method);
        }
        if (parent == Ctx::kParams && key == nullptr && first_elem) L.first_param_seen = true;
        if (c == '{') {
            if (ctx == Ctx::kParams) L.params_obj = true;
            if (ctx == Ctx::kResult) L.result_obj = true;
            if (ctx == Ctx::kResultJob) L.job_obj = true;
            if (ctx == Ctx::kParamsAlgo) ctx = Ctx::kOther;
            return object(depth + 1, ctx);
        }
        if (c == '[') {
            if (ctx == Ctx::kParams) L.params_arr = true;
            if (ctx == Ctx::kResult) {
                L.result_arr = true;
                ctx = Ctx::kInResult;
            }
            if (ctx == Ctx::kResultJob) ctx = Ctx::kOther;
            return array(depth + 1, ctx);
        }
        if (c == 't') return literal("true", 4);
        if (c == 'f') return literal("false", 5);
        if (c == 'n') return literal("null", 4);
        return number();
    }

    bool object(int depth, Ctx ctx) {
        if (depth > kMaxDepth) return false;
        ++i_;  // '{'
        skip_ws();
        if (take('}')) return true;
        // Inside an array "result", object members stay "in result".
        const Ctx child_parent = ctx;
        while (true) {
            if (i_ >= n_ || p_[i_] != '"') return false;
            // A key without escapes (all keys in practice) is its own bytes:
            // compared in place, not decoded into a copy. A non-ASCII one
            // cannot equal a known key either way.
            char decoded[kKeyCap];
            const char* key = decoded;
            std::size_t key_len = 0;
            const std::size_t plain_end = skip_plain(p_, i_ + 1, n_);
            if (plain_end < n_ && p_[plain_end] == '"') {
                key = reinterpret_cast<const char*>(p_ + i_ + 1);
                key_len = plain_end - (i_ + 1);
                i_ = plain_end + 1;
            } else {
                bool ascii = true;
                if (!string(decoded, kKeyCap, &key_len, &ascii)) return false;
                if (!ascii) key_len = kKeyCap;
            }
            if (key_len >= kKeyCap) key_len = kKeyCap;  // never a known key
            std::uint16_t bit = 0;
            if (key_len < kKeyCap) bit = key_bit(key, key_len);
            if (ctx == Ctx::kParams) line_->params_keys |= bit;
            if (ctx == Ctx::kResultJob) line_->job_keys |= bit;
            skip_ws();
            if (!take(':')) return false;
            skip_ws();
            if (!value(depth, child_parent, key_len < kKeyCap ? key : "", key_len, bit, false))
                return false;
            skip_ws();
            if (!take(',')) return take('}');
            skip_ws();
        }
    }

    bool array(int depth, Ctx ctx) {
        if (depth > kMaxDepth) return false;
        ++i_;  // '['
        skip_ws();
        if (take(']')) return true;
        bool first = true;
        while (true) {
            if (!value(depth, ctx, nullptr, 0, 0, first)) return false;
            first = false;
            skip_ws();
            if (!take(',')) return take(']');
            skip_ws();
        }
    }
};

bool method_is(const Line& L, std::string_view s) noexcept {
    return L.method_len == s.size() && std::memcmp(L.method, s.data(), s.size()) == 0;
}

constexpr std::string_view kStratumV1[] = {
    "mining.subscribe", "mining.authorize", "mining.submit", "mining.notify",
    "mining.set_difficulty", "mining.set_target", "mining.configure",
    "mining.extranonce.subscribe", "mining.get_transactions",
};
constexpr std::string_view kEthWork[] = {"eth_submitLogin", "eth_getWork", "eth_submitWork",
                                    "eth_submitHashrate"};
constexpr std::string_view kBtcWork[] = {"getwork", "getblocktemplate", "submitblock"};

bool algo_says_xmr(const char* algo, std::size_t len) noexcept {
    return (len >= 3 && std::memcmp(algo, "rx/", 3) == 0) ||
           (len >= 2 && std::memcmp(algo, "cn", 2) == 0);
}

// CryptoNote coin rule (see detectors.hpp).
std::uint8_t cryptonote_coin(bool algo_str, const char* algo, std::size_t algo_len,
                             bool seed_hash, bool wallet_xmr) noexcept {
    if (wallet_xmr || seed_hash) return kCoinXmr;
    if (!algo_str || algo_says_xmr(algo, algo_len)) return kCoinXmr;
    return kCoinUnknown;
}

void copy_agent(StratumMatch* out, const Str& s) noexcept {
    std::size_t k = s.len < kMaxAgent ? s.len : kMaxAgent;
    std::memcpy(out->agent, s.buf, k);
    out->agent[k] = '\0';
    out->agent_len = static_cast<std::uint8_t>(k);
}

// Applies the method rules to one parsed line.
bool judge(const Line& L, StratumMatch* out) noexcept {
    if (L.method_is_str) {
        for (std::string_view m : kStratumV1) {
            if (method_is(L, m)) {
                if (!L.has_params) return false;
                out->coin = kCoinUnknown;
                if (m == "mining.subscribe" && L.params_arr && L.first_param_str)
                    copy_agent(out, L.first_param);
                return true;
            }
        }
        for (std::string_view m : kEthWork) {
            if (method_is(L, m)) {
                out->coin = kCoinEth;
                return true;
            }
        }
        for (std::string_view m : kBtcWork) {
            if (method_is(L, m)) {
                out->coin = kCoinUnknown;
                return true;
            }
        }
        if (!L.params_obj) return false;
        const std::uint16_t k = L.params_keys;
        bool ok = false;
        bool wallet_xmr = false;
        if (method_is(L, "login")) {
            ok = (k & kKLogin) && (k & (kKAgent | kKPass));
            wallet_xmr = L.login_str && (L.login_first == '4' || L.login_first == '8') &&
                         (L.login_len == 95 || L.login_len == 106);
        } else if (method_is(L, "job")) {
            ok = (k & kKBlob) && (k & kKJobId) && (k & kKTarget);
        } else if (method_is(L, "submit")) {
            ok = (k & kKJobId) && (k & kKNonce) && (k & kKResult);
        } else if (method_is(L, "keepalived")) {
            ok = true;
        }
        if (!ok) return false;
        out->coin = cryptonote_coin(L.algo_seen, L.algo, L.algo_len, k & kKSeedHash, wallet_xmr);
        if (method_is(L, "login") && L.agent_str) copy_agent(out, L.agent);
        return true;
    }
    if (L.result_obj && L.job_obj) {
        const std::uint16_t k = L.job_keys;
        if ((k & kKBlob) && (k & kKJobId) && (k & kKTarget)) {
            out->coin = cryptonote_coin(L.job_algo_str, L.job_algo, L.job_algo_len,
                                        k & kKSeedHash, false);
            return true;
        }
    }
    if (L.result_arr && L.notify_in_result) {
        out->coin = kCoinUnknown;
        return true;
    }
    return false;
}

}  // namespace

void scan_stratum(const std::uint8_t* p, std::size_t len, StratumMatch* out) noexcept {
    *out = StratumMatch{};
    std::size_t i = 0;
    while (i < len && (p[i] == ' ' || p[i] == '\t' || p[i] == '\r' || p[i] == '\n')) ++i;
    if (i >= len || p[i] != '{') return;
    std::size_t start = 0;
    while (start < len) {
        const std::size_t end = bytes::find(p, start, len, '\n');
        std::size_t s = start;
        while (s < end && (p[s] == ' ' || p[s] == '\t' || p[s] == '\r')) ++s;
        if (s < end && p[s] == '{') {
            Line line;
            Scanner scanner(p + s, end - s);
            if (scanner.line(&line) && judge(line, out)) {
                out->mining = true;
                return;
            }
        }
        start = end + 1;
    }
}

namespace det {

bool detect_stratum(Bytes b, Detection* out) noexcept {
    StratumMatch m;
    scan_stratum(b.p, b.n, &m);
    if (!m.mining) return false;
    hit(out, kAppStratum, kActMining);
    out->coin = m.coin;
    std::memcpy(out->agent, m.agent, m.agent_len + 1u);
    out->agent_len = m.agent_len;
    return true;
}

}  // namespace det
}  // namespace nkclass
