// Payload detectors: recognise an application protocol (and, where the
// protocol says it, an activity) from the first bytes each side of a flow
// sent.
//
// Input: `src` = the initiator's first payload bytes, `dst` = the
// responder's; either may be empty (length 0, pointer may be null). The
// bytes are untrusted: every read is bounds-checked against the given
// length, so any buffer of any length is safe, and truncated messages are
// handled (a detector decides on what is complete, never reads past the
// end). Ports are host-order numbers; `protocol` is the IP protocol number
// (6 TCP, 17 UDP; other protocols detect nothing).
//
// Cost: each detector rejects on its first one or two bytes, so a payload
// that matches nothing costs a few compares per side; JSON and TLS parsing
// only run after a '{' or a TLS record header. No allocation, no global
// state: detect() is thread-safe and noexcept.
//
// Output: a Detection whose app/activity codes are the enums of vocab.hpp;
// app 0 = "no protocol recognised" (the sentinel, not an error). Protocols
// that imply no purpose (TLS, HTTP, DNS, QUIC) leave activity 0: the name
// they extract decides it through the domain table. Detectors give rank
// kRankPayload with evidence kEvPayload, except the Tor server-name
// heuristic: activity tor at kRankNamed with kEvSni, a guess on a
// random-looking name (activity_rank says which).
// The extracted server name (TLS SNI, HTTP Host without port, DNS query
// name, SOCKS domain, HTTP CONNECT host) is lowercased, without a trailing
// dot, at most kMaxName bytes (longer names are dropped, not cut).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "nkclass/classifier.hpp"
#include "nkclass/domains.hpp"

namespace nkclass {

// Coin a mining detection points to. Code 0 = not known.
enum Coin : std::uint8_t { kCoinUnknown = 0, kCoinXmr, kCoinBtc, kCoinEth, kCoinZec, kCoinCount };
inline constexpr const char* kCoinNames[kCoinCount] = {"unknown", "xmr", "btc", "eth", "zec"};

// Where `Detection::name` came from.
enum NameKind : std::uint8_t { kNameNone = 0, kNameSni, kNameHost, kNameDns, kNameSocks };

inline constexpr std::size_t kMaxName = 253;   // DNS limit for a dotted name
static_assert(kMaxName == kMaxServerName, "server names have one length limit");
inline constexpr std::size_t kMaxAgent = 63;   // longer agents are cut
inline constexpr std::size_t kMaxAlpn = 15;    // longer ALPN protocol ids are dropped

struct Detection {
    std::uint8_t app = 0;        // vocab App; 0 = nothing recognised
    std::uint8_t activity = 0;   // vocab Activity; 0 = the protocol names none
    std::uint8_t rank = 0;           // classifier Rank of `app`
    std::uint8_t activity_rank = 0;  // classifier Rank of `activity`
    std::uint16_t evidence = 0;      // classifier Evidence bits
    std::uint8_t coin = kCoinUnknown;
    std::uint8_t name_kind = kNameNone;
    std::uint8_t name_len = 0;
    std::uint8_t agent_len = 0;
    std::uint8_t alpn_len = 0;
    // name_len bytes then NUL, lowercase; the slack past the longest name
    // lets the domain lookup read it in place (DomainTable::lookup_padded).
    char name[kMaxName + DomainTable::kLookupSlack];
    char agent[kMaxAgent + 1];  // miner software / User-Agent: agent_len bytes then NUL
    char alpn[kMaxAlpn + 1];    // first ALPN protocol of a TLS or QUIC ClientHello

    // An empty detection. Only the first byte of each buffer is set: bytes
    // past name_len / agent_len are unspecified, and not zeroing the ~320
    // bytes keeps a per-flow Detection cheap on the bulk path.
    Detection() noexcept { name[0] = agent[0] = alpn[0] = '\0'; }
};

// Runs every detector on one flow. The initiator's bytes are tried first;
// the responder's fill in when the initiator's gave nothing or gave no
// activity (a pool's "job" reply, an SMTP greeting, a server reset). Never fails; writes `*out` completely.
void detect(std::uint8_t protocol, std::uint16_t src_port, std::uint16_t dst_port,
            const std::uint8_t* src, std::size_t src_len, const std::uint8_t* dst,
            std::size_t dst_len, Detection* out) noexcept;

// True when `name` (lowercase, no trailing dot) looks like the random
// server names Tor clients put in SNI: "www." + 8..20 base32 letters or
// digits (a-z, 2-7) + ".com" or ".net", and not like a word (a digit, or no
// vowel in five letters in a row). A guess: callers give it kRankNamed.
bool tor_like_server_name(const char* name, std::size_t len) noexcept;

// Result of the stratum (mining JSON-RPC) scan of one side's bytes.
struct StratumMatch {
    bool mining = false;
    std::uint8_t coin = kCoinUnknown;
    std::uint8_t agent_len = 0;
    char agent[kMaxAgent + 1] = {};
};

// Mining JSON-RPC over raw TCP or in an HTTP body. The bytes must start with
// optional JSON whitespace and '{'. They are split at '\n'; each line that
// is one complete, valid JSON object (RFC 8259; NaN/Infinity refused; at
// most 32 levels deep) is checked against the method rules below, other
// lines are skipped. Matches when any line has:
//   method in the stratum v1 set (mining.subscribe, .authorize, .submit,
//     .notify, .set_difficulty, .set_target, .configure,
//     .extranonce.subscribe, .get_transactions) and a "params" key;
//   method "login" with params an object holding "login" and "agent" or "pass";
//   method "job" with params an object holding "blob", "job_id", "target";
//   method "submit" with params an object holding "job_id", "nonce", "result";
//   method "keepalived" with params an object;
//   method eth_submitLogin, eth_getWork, eth_submitWork, eth_submitHashrate,
//     getwork, getblocktemplate or submitblock;
//   no string method, and "result" an object whose "job" is an object with
//     "blob", "job_id", "target" (CryptoNote login reply), or "result" an
//     array with the string "mining.notify" somewhere inside (subscribe reply).
// Keys are compared after JSON unescaping; the last duplicate key wins.
// Coin: xmr for the CryptoNote shapes, or a login wallet starting with 4 or
// 8 that is 95 or 106 characters long, or algo "rx/..."/"cn..." or a
// "seed_hash" key in params/job; eth for eth_* methods. Agent: params.agent
// of a login, else the first string of mining.subscribe params.
// tests/reference/stratum_ref.py is the executable form of this contract.
void scan_stratum(const std::uint8_t* p, std::size_t len, StratumMatch* out) noexcept;

// TLS ClientHello server name. Writes the first host_name entry of the
// server_name extension (lowercased) and returns its length, or returns 0
// when `p` is not a ClientHello or the name is absent, incomplete,
// empty, longer than kMaxName or has bytes outside 0x21..0x7e. Reads the
// record header (type 22, version 3.x), the handshake header (type 1) and
// walks the hello up to the end of the record or of the bytes given,
// whichever is first. `*is_hello` (when non-null) is set when the record and
// handshake headers say ClientHello, even if no name was found.
std::size_t tls_client_hello_sni(const std::uint8_t* p, std::size_t len, char* name,
                                 bool* is_hello) noexcept;

// tls_client_hello_sni that also returns the first protocol of the ALPN
// extension (at most kMaxAlpn bytes, NUL-terminated in `alpn`, length in
// *alpn_len; 0 when absent or longer).
std::size_t tls_client_hello(const std::uint8_t* p, std::size_t len, char* name, bool* is_hello,
                             char* alpn, std::size_t* alpn_len) noexcept;

// QUIC Initial packets of a client (RFC 9001 for version 1, RFC 9369 for
// version 2, draft-29..34): removes header protection and decrypts the
// Initial packets in the bytes (joined datagrams, coalesced packets),
// reassembles the CRYPTO frames from offset 0 and parses the ClientHello.
// Writes the server name (as tls_client_hello_sni) and ALPN. Returns true
// when a ClientHello was found. A packet cut by the end of the bytes is
// deciphered without its tag; complete packets must authenticate. Needs
// libcrypto (nkclass built with OpenSSL); false otherwise.
struct QuicHello {
    std::size_t name_len = 0;
    std::size_t alpn_len = 0;
    std::uint32_t version = 0;
    char name[kMaxName + 1] = {};
    char alpn[kMaxAlpn + 1] = {};
};
bool quic_client_hello(const std::uint8_t* p, std::size_t len, QuicHello* out) noexcept;
// True when this build can decrypt QUIC Initial packets.
bool quic_decryption_available() noexcept;

class DomainTable;

// The classifier's payload stage: detect() plus a domain-table lookup of the
// extracted name. Candidates, in order: the detection (app and activity at
// their ranks, kEvPayload); a domain match (activity and service at
// kRankNamed, evidence kEvSni / kEvHost / kEvDns by where the name came
// from; SOCKS names count as kEvHost); the Tor name guess only when the
// domain table did not match. Thread-safe; `domains` may be null.
class DetectorInspector final : public PayloadInspector {
public:
    explicit DetectorInspector(std::shared_ptr<const DomainTable> domains)
        : domains_(std::move(domains)) {}
    std::size_t inspect(std::uint8_t protocol, std::uint16_t src_port, std::uint16_t dst_port,
                        const std::uint8_t* src, std::size_t src_len, const std::uint8_t* dst,
                        std::size_t dst_len, Candidate* out,
                        std::size_t cap) const noexcept override;
    // inspect() reporting the detection's server name too.
    std::size_t inspect_named(std::uint8_t protocol, std::uint16_t src_port,
                              std::uint16_t dst_port, const std::uint8_t* src,
                              std::size_t src_len, const std::uint8_t* dst, std::size_t dst_len,
                              Candidate* out, std::size_t cap,
                              ServerName* name) const noexcept override;
    // The same, also returning the detection (for the test-facing binding).
    std::size_t inspect_detail(std::uint8_t protocol, std::uint16_t src_port,
                               std::uint16_t dst_port, const std::uint8_t* src,
                               std::size_t src_len, const std::uint8_t* dst,
                               std::size_t dst_len, Candidate* out, std::size_t cap,
                               Detection* det) const noexcept;

private:
    std::shared_ptr<const DomainTable> domains_;
};

}  // namespace nkclass
