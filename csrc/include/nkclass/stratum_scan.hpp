// Streaming counters of stratum mining JSON-RPC over a TCP flow's whole
// life: share submissions and the latest share difficulty the pool set.
//
// The meter keeps only a payload prefix per side, so it feeds every in-order
// TCP segment of a stratum-looking flow to one StratumFlow as well. The
// scanner keeps no line buffer: a small tokenizer state per side (the
// current string's first bytes, the key it is the value of, a number being
// read) survives segment boundaries, and what a line said is committed at
// its newline, so the order of keys inside a line does not matter.
//
// Recognised lines (newline-delimited JSON objects, any key order and
// whitespace):
// - `"method": "mining.submit"` (stratum v1) and `"method": "submit"`
//   (CryptoNote / Monero style): one share submission each;
// - `"method": "mining.set_difficulty"` with `"params": [D]`: share
//   difficulty D (stratum v1, in units of 2^32 hashes per share);
// - a `"target": "HEX"` value of 8 hex digits (a 4-byte little-endian
//   target, difficulty 2^32 / target) or 16 (8-byte, 2^64 / target), in a
//   CryptoNote job or login result: difficulty in hashes per share.
// A line broken by a hole in the byte stream (a lost segment) is dropped.
// Every input is safe: strings and numbers are read into fixed buffers
// with bounds checks, and nothing else is stored.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nkclass {

// Which stratum dialect a flow's difficulty (or, without one, its
// submissions) came from.
enum class StratumAlgo : std::uint8_t { kNone = 0, kV1 = 1, kCryptoNote = 2 };
inline constexpr const char* kStratumAlgoNames[] = {"none", "stratum_v1", "cryptonote"};

// Tokenizer state of one direction.
struct StratumSideScan {
    static constexpr int kStringBytes = 24;  // longest string compared (a 16-digit target)
    static constexpr int kNumberBytes = 24;
    char str[kStringBytes];
    char num[kNumberBytes];
    std::uint8_t str_len = 0, num_len = 0;
    bool in_string = false, escape = false, str_over = false, num_over = false;
    bool discard = false;       // the line lost bytes: ignore it up to its newline
    std::uint8_t pending_key = 0;  // key named by the last string, until ':' or another token
    std::uint8_t value_of = 0;     // key whose value comes next
    std::uint8_t params = 0;       // 1: after "params": [, 2: reading its first number
    // What the current line said.
    std::uint8_t line_method = 0;
    bool line_has_number = false, line_has_target = false;
    double line_number = 0, line_target_difficulty = 0;
    StratumAlgo line_target_algo = StratumAlgo::kNone;
    // In-order tracking of the TCP byte stream.
    std::uint32_t next_seq = 0;
    bool has_next = false;
};

struct StratumFlow {
    StratumSideScan side[2];
    std::uint64_t submits = 0;
    double difficulty = 0;  // 0: no difficulty seen
    StratumAlgo algo = StratumAlgo::kNone;
};

// Scans `n` bytes that follow what `side` sent before (in stream order).
void stratum_scan(StratumFlow& flow, int side, const std::uint8_t* p, std::size_t n) noexcept;
// Bytes of `side` were lost before the next scan: the line they fall in is dropped.
void stratum_gap(StratumFlow& flow, int side) noexcept;
// Scans one TCP segment of `side` carrying `n` bytes from sequence number
// `seq`: bytes already scanned are skipped, a jump forward is a gap.
void stratum_segment(StratumFlow& flow, int side, std::uint32_t seq, const std::uint8_t* p,
                     std::size_t n) noexcept;

}  // namespace nkclass
