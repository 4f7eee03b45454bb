// The batch classifier: one native pass over a batch of flows (structure of
// arrays) that sets, for every flow, the watched path and side, the named
// peer service, and the application and activity with their evidence and
// confidence.
//
// Codes are small integers whose names live in the ruleset (paths,
// services) or in the fixed vocabulary (apps, activities; Python's
// nkclass.APPS / nkclass.ACTIVITIES list them in code order). Code 0 is
// always "none" / "unknown".
//
// A Classifier is immutable once built; classify() may run on many threads
// at once and allocates nothing per flow (the flow-shape stage allocates
// one group table per batch).
#pragma once

#include <cstddef>
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "nkclass/port_table.hpp"
#include "nkclass/prefetch.hpp"
#include "nkclass/prefix_table.hpp"
#include "nkclass/types.hpp"

namespace nkclass {

// Bits of LabelColumns::evidence: what decided the app and activity.
enum Evidence : std::uint16_t {
    kEvPayload = 1u << 0,     // a payload detector confirmed it
    kEvSni = 1u << 1,         // TLS server name matched a named domain
    kEvHost = 1u << 2,        // HTTP Host matched a named domain
    kEvDns = 1u << 3,         // DNS query name matched a named domain
    kEvIpList = 1u << 4,      // the peer address is in a labelled network
    kEvPort = 1u << 5,        // a port or protocol rule
    kEvFlowShape = 1u << 6,   // the flow-shape score
    kEvPairCache = 1u << 7,   // an earlier payload-confirmed flow of the same pair
    kEvAsn = 1u << 8,         // the peer's AS number
    kEvWatched = 1u << 9,     // the server side sits in a watched network
    kEvDnsLearned = 1u << 10, // a name learned on the wire (DNS answer, earlier SNI / Host)
    kEvDnsScore = 1u << 11,   // the DNS tunnelling score of the query's zone
};

// How strong a piece of evidence is. A candidate with a higher rank always
// beats a lower one; equal ranks fall back to the activity precedence.
enum Rank : std::uint8_t {
    kRankNone = 0,
    kRankWeak = 1,     // port-only guesses, flow shape, watched server side
    kRankAsn = 2,      // AS-number categories, ports declared strong
    kRankNamed = 3,    // named lists: peer networks, dated lists, SNI / Host / DNS names,
                       // learned names, pair cache
    kRankPayload = 4,  // payload-confirmed
};

// Confidence codes derived from the winning activity's rank.
enum Confidence : std::uint8_t { kConfNone = 0, kConfLow = 1, kConfMedium = 2, kConfHigh = 3 };

// Side codes: where the watched address sits.
enum Side : std::uint8_t { kSideNone = 0, kSideSrc = 1, kSideDst = 2, kSideBoth = 3 };

// What a rule or detector proposes for a flow. app/activity 0 = no opinion.
// `service` (0 = none) names the peer service, e.g. a domain-table match.
//
// Service choice: the flow's service starts as the peer network's service
// (IP list, kRankNamed when set). A candidate naming a service replaces it
// when its rank is at least the current one; payload candidates are offered
// after the IP list, so at equal rank a domain-name match (SNI / Host / DNS)
// wins: a name is more specific than an address range shared by many
// services (CDNs, clouds).
struct Candidate {
    std::uint8_t app = 0;
    std::uint8_t activity = 0;
    std::uint8_t rank = kRankNone;
    std::uint16_t evidence = 0;
    std::uint32_t service = 0;
};

// A candidate prepared for the hot loop, as two words compared whole:
// - `activity`: the score in bits 24 and up (the rank in its bits 16 and
//   up, then 0xffff minus the activity's precedence; 0 means "no
//   activity"), the activity in bits 16-23, the evidence in bits 0-15;
// - `app`: the rank in bits 24-31, the app in bits 16-23, the evidence in
//   bits 0-15 (all 0 when the candidate names no app).
struct ScoredCandidate {
    std::uint64_t activity = 0;
    std::uint32_t app = 0;
};

// Column pointers for one batch. Addresses are either all IPv4 (host-order
// uint32) or all 16-byte IPv6 (network order, IPv4-mapped allowed) per
// column. Optional columns are nullptr when absent.
struct AddressColumn {
    const ipv4_host_t* v4 = nullptr;
    const ipv6_net_t* v6 = nullptr;
};

// An address as the two 64-bit words of its 16-byte form (network order:
// `hi` holds bytes 0..7), so a uint32 column and a 16-byte column name an
// IPv4 host the same way (as ::ffff:a.b.c.d).
struct AddressWords {
    std::uint64_t hi = 0, lo = 0;
    bool operator==(const AddressWords& o) const noexcept { return hi == o.hi && lo == o.lo; }
};

// Row i of `col` as AddressWords. O(1).
inline AddressWords address_words(const AddressColumn& col, std::size_t i) noexcept {
    if (col.v4 != nullptr) return {0, 0x0000ffff00000000ull | col.v4[i]};
    const u128 v = to_u128(col.v6[i]);
    return {static_cast<std::uint64_t>(v >> 64), static_cast<std::uint64_t>(v)};
}

// The 16 bytes (network order) of `w` into out[0..15]: the inverse of
// address_words.
inline void put_address_bytes(const AddressWords& w, std::uint8_t* out) noexcept {
    for (int b = 0; b < 8; ++b) {
        out[b] = static_cast<std::uint8_t>(w.hi >> (56 - 8 * b));
        out[8 + b] = static_cast<std::uint8_t>(w.lo >> (56 - 8 * b));
    }
}

// Variable-length bytes per flow: flow i's bytes are
// data[offsets[i] .. offsets[i+1]), as an Arrow binary column.
struct BytesColumn {
    const std::uint8_t* data = nullptr;
    const std::int64_t* offsets = nullptr;  // n + 1 entries, non-decreasing

    // Flow i's bytes; nullptr and 0 when the column is absent.
    const std::uint8_t* at(std::size_t i) const noexcept {
        return data ? data + offsets[i] : nullptr;
    }
    std::size_t length(std::size_t i) const noexcept {
        return data ? static_cast<std::size_t>(offsets[i + 1] - offsets[i]) : 0;
    }
    // Asks the cache for the `Lines` cache lines from flow i's first byte,
    // whatever its length: a prefetch never faults, the bytes past a short
    // payload are the next flows', and a loop bound by the length would
    // mispredict its exit.
    template <std::size_t Lines>
    void prefetch(std::size_t i) const noexcept {
        if (!data) return;
        const std::uint8_t* p = data + offsets[i];
        for (std::size_t k = 0; k < Lines; ++k) prefetch_line(p + 64 * k);
    }
};

struct FlowColumns {
    std::size_t n = 0;
    AddressColumn src_ip, dst_ip;
    const std::uint16_t* src_port = nullptr;
    const std::uint16_t* dst_port = nullptr;
    const std::uint8_t* protocol = nullptr;
    BytesColumn src_payload, dst_payload;  // optional: first bytes each side sent
    // Optional flow measurements (all nullptr when absent). The flow-shape
    // stage needs all five; the pair cache needs ts_end.
    const std::int64_t* ts_start = nullptr;  // ms since the epoch, UTC
    const std::int64_t* ts_end = nullptr;    // ms since the epoch, UTC
    const std::uint64_t* packets = nullptr;  // both directions
    const std::uint64_t* bytes = nullptr;    // both directions
    const std::uint8_t* tcp_flags = nullptr;  // OR of the flags of all the flow's packets
    // Optional AS entry ids per endpoint (see ClassifierSpec::as_table): a
    // nonzero id is used as given (an exporter's AS field resolved by the
    // caller); 0 means "look the address up in the AS table".
    const std::uint32_t* src_as = nullptr;
    const std::uint32_t* dst_as = nullptr;

    bool has_shape_columns() const noexcept {
        return ts_start != nullptr && ts_end != nullptr && packets != nullptr &&
               bytes != nullptr && tcp_flags != nullptr;
    }
};

struct LabelColumns {
    std::uint16_t* path;
    std::uint8_t* side;
    std::uint32_t* service;
    std::uint8_t* app;
    std::uint8_t* activity;
    std::uint16_t* evidence;
    std::uint8_t* confidence;
    // Optional (nullptr when not wanted): the AS entry id the peer resolved
    // to (0 = unknown), written only when the classifier has an AS stage.
    std::uint32_t* peer_as = nullptr;
};

// The server name a payload stage read from a flow (TLS SNI, HTTP Host,
// DNS query name, SOCKS / CONNECT host): `kind` is a NameKind of
// detectors.hpp (0 = none), `text` holds `len` lowercase bytes and a NUL.
inline constexpr std::size_t kMaxServerName = 253;
struct ServerName {
    std::uint8_t kind = 0;
    std::uint8_t len = 0;
    char text[kMaxServerName + 1];
};

// What the payload stage proposed for one flow.
struct PayloadCandidates {
    static constexpr std::size_t kMax = 4;
    Candidate c[kMax];
    std::uint8_t n = 0;
};

// The payload stage of the pass: proposes candidates from the first bytes
// each side sent. Implementations must be thread-safe and bounds-checked.
class PairCache;
class NameCache;
class DomainTable;
class DatedIntervals;
class NameDictionary;

// Optional per-flow name outputs of a pass: codes into `names` (1-based;
// 0 = none). `sni` / `host`: the TLS server name / HTTP Host the flow's
// own payload carried; `learned`: the name learned on the wire for the
// flow's peer (address and port) that was live at the flow's start.
struct NameColumns {
    std::uint32_t* sni = nullptr;
    std::uint32_t* host = nullptr;
    std::uint32_t* learned = nullptr;
    NameDictionary* names = nullptr;
};

class PayloadInspector {
public:
    virtual ~PayloadInspector() = default;
    // `src`/`dst` are the payload prefixes (may be empty). Returns the
    // number of candidates written to `out` (at most `cap`).
    virtual std::size_t inspect(std::uint8_t protocol, std::uint16_t src_port,
                                std::uint16_t dst_port, const std::uint8_t* src,
                                std::size_t src_len, const std::uint8_t* dst,
                                std::size_t dst_len, Candidate* out,
                                std::size_t cap) const noexcept = 0;

    // inspect() that also reports the server name the bytes carried
    // (`name->kind` 0 when none). The default reports none.
    virtual std::size_t inspect_named(std::uint8_t protocol, std::uint16_t src_port,
                                      std::uint16_t dst_port, const std::uint8_t* src,
                                      std::size_t src_len, const std::uint8_t* dst,
                                      std::size_t dst_len, Candidate* out, std::size_t cap,
                                      ServerName* name) const noexcept {
        name->kind = 0;
        name->len = 0;
        return inspect(protocol, src_port, dst_port, src, src_len, dst, dst_len, out, cap);
    }

    // inspect() for flows [begin, begin + count) of `cols` (which must hold
    // protocol, ports and at least one payload column), into out[0, count).
    // The same candidates as per-flow calls, fetching payloads a few flows
    // ahead. With `names`, inspect_named() fills names[0, count) too.
    void inspect_block(const FlowColumns& cols, std::size_t begin, std::size_t count,
                       PayloadCandidates* out, ServerName* names = nullptr) const noexcept;
};

// Thresholds of the DNS tunnelling score (dns_tunnel.hpp says what each
// condition measures); rulesets set them in [dns_tunnel], and these
// defaults are the built-in ruleset's. validate_dns_tunnel() gives the
// accepted ranges.
struct DnsTunnelThresholds {
    std::uint8_t min_conditions = 4;  // conditions a tunnel meets, 1..6; 0 disables the stage
    std::uint64_t min_queries = 10;   // queries a zone needs to be scored at all
    std::uint32_t name_chars = 40;    // bit 0: mean subdomain characters per flow, 1..253
    std::uint8_t label_bytes = 24;    // bit 1: a subdomain label of this many bytes, 1..63
    double entropy_bits = 3.5;        // bit 2: mean subdomain entropy in bits per byte, (0, 8]
    std::uint32_t names = 20;         // bit 4: distinct names in the zone, >= 1
    std::uint64_t queries = 100;      // bit 5: queries in the zone, >= 1
};

// nullptr when `t` is within its ranges, else a static reason naming the field.
const char* validate_dns_tunnel(const DnsTunnelThresholds& t) noexcept;

struct ClassifierSpec {
    std::shared_ptr<const PrefixTable> paths;     // label = path code
    std::shared_ptr<const PrefixTable> services;  // label = service code
    std::shared_ptr<const PortTable> ports;       // rule id -> port_verdicts[id]
    std::vector<Candidate> port_verdicts;         // index = rule id (entry 0 unused)
    std::vector<Candidate> service_verdicts;      // index = service code (entry 0 unused)
    std::vector<std::uint8_t> path_server_activity;  // index = path code; 0 = none
    std::vector<std::uint16_t> precedence;        // index = activity code; lower wins
    std::shared_ptr<const PayloadInspector> payload;  // optional
    // Flow-shape stage (see flow_shape.hpp): a flow whose (src, dst,
    // dst_port) group meets at least `shape_min_conditions` of the nine
    // conditions (1..9; 0 disables the stage) and holds at least
    // `shape_min_flows` flows gets a mining_suspect candidate at kRankWeak
    // with kEvFlowShape.
    std::uint8_t shape_min_conditions = 7;
    std::uint32_t shape_min_flows = 1;
    // DNS tunnelling stage (see dns_tunnel.hpp): a DNS query flow whose
    // zone passes with `dns_tunnel.min_conditions` (0 disables the stage)
    // of the six conditions over at least `dns_tunnel.min_queries` queries
    // gets a dns_tunnel candidate at kRankNamed with kEvDnsScore.
    DnsTunnelThresholds dns_tunnel;
    // AS stage (optional): `as_table` maps addresses to AS entry ids (its
    // labels); `as_verdicts[id]` is what the peer's AS entry proposes
    // (activity at kRankWeak or kRankAsn with kEvAsn, and a service),
    // through `as_entry_verdict[id]` (a small code, so the per-flow lookup
    // stays in cache however many entries the table has). The
    // peer is the endpoint outside the watched network, or the responder
    // (destination) when both or neither are watched. The stage runs when
    // `as_verdicts` is not empty; `as_table` may be null when callers give
    // the ids (FlowColumns::src_as / dst_as).
    std::shared_ptr<const PrefixTable> as_table;
    std::vector<std::uint16_t> as_entry_verdict;  // index = AS entry id -> as_verdicts index
    std::vector<Candidate> as_verdicts;  // index = verdict code (0: no opinion, must be empty)
    // Dated lists (optional; see dated_table.hpp): `dated_prefixes` maps an
    // address to a key (label k = key k - 1), `dated` holds each key's
    // validity intervals and their verdict codes, `dated_verdicts[code]`
    // what an entry valid at the flow's ts_start proposes (named rank,
    // kEvIpList, a service). The stage runs when all three are set and the
    // batch has ts_start. The address looked at is the peer's as for the
    // service stage: the unwatched side, else the destination when it has
    // a valid entry, else the source.
    std::shared_ptr<const PrefixTable> dated_prefixes;
    std::shared_ptr<const DatedIntervals> dated;
    std::vector<Candidate> dated_verdicts;  // index = verdict code (entry 0 unused)
    // The domain table learned names are matched against (optional; the
    // payload stage's own table, so names mean the same in both).
    std::shared_ptr<const DomainTable> domains;
};

class Classifier {
public:
    // Fails when a table is missing or a code in the verdict vectors falls
    // outside the precedence vector.
    static BuildStatus validate(const ClassifierSpec& spec);
    explicit Classifier(ClassifierSpec spec);

    // Labels flows [0, cols.n). Never fails; every output column must hold
    // cols.n entries.
    //
    // Stages, per flow: peer network (IP list), peer AS (when the spec has
    // an AS stage; a service from it is used only when no IP list names
    // one), watched server side, port rule, payload (when payload columns and an inspector exist), flow
    // shape (when cols.has_shape_columns() and the stage is enabled; it
    // groups the whole batch first, O(n) time and O(n) temporary memory;
    // should that allocation fail the stage is skipped), DNS tunnelling
    // (when payload columns exist and the stage is enabled; it reads the
    // batch's DNS queries first, skipped likewise), then the pair
    // cache (when `cache` is given and cols.ts_end exists).
    //
    // Pair cache, in flow order (the order readers emit, i.e. time order):
    // a flow whose verdict is mining at kRankPayload confirms its
    // (src_ip, dst_ip) pair at its ts_end; any other flow whose pair is live
    // in the cache at its ts_end gets a mining candidate at kRankNamed with
    // kEvPairCache. So a later flow of the same batch inherits from an
    // earlier confirmed one. The cache stays locked for the whole pass:
    // threads sharing a cache take turns; the classifier itself is not
    // modified.
    //
    // Learned names (when `names` is given), in flow order: a flow whose
    // payload carries no SNI / Host of its own looks its peer (address and
    // port, then address alone) up in `names` at its ts_start (0 without
    // that column); a live name that the domain table matches proposes the
    // domain's activity and service at kRankNamed with kEvDnsLearned. Then
    // the flow teaches: its payload's SNI / Host as (destination address,
    // destination port) -> name, and the A / AAAA answers of a DNS response
    // on port 53 as (address, any port) -> the question's name, with the
    // answer's TTL. So later flows of the same batch and of later batches
    // are named. `names` stays locked for the pass (after `cache`).
    // `name_out` (optional) receives the sni / host / learned columns.
    void classify(const FlowColumns& cols, const LabelColumns& out, PairCache* cache = nullptr,
                  NameCache* names = nullptr,
                  const NameColumns* name_out = nullptr) const noexcept;

    const ClassifierSpec& spec() const noexcept { return spec_; }

    // The hot-loop form of a candidate under this classifier's precedence.
    ScoredCandidate scored(const Candidate& c) const noexcept;

private:
    // The stages a pass may run besides paths, services and ports (and
    // the shape and cache of kShape, kCache): each set is its own loop,
    // without the tests of the stages it lacks.
    static constexpr unsigned kStagesNone = 0;
    static constexpr unsigned kStageAs = 1;
    // payload, dated lists, learned names, DNS tunnel scores, name columns
    static constexpr unsigned kStagesOther = 2;
    static constexpr unsigned kStagesAll = kStageAs | kStagesOther;
    template <bool kShape, bool kCache, unsigned kStages>
    void run(const FlowColumns& cols, const LabelColumns& out, const std::uint16_t* shape_mask,
             const std::uint8_t* tunnel_mask, PairCache* cache, NameCache* names,
             const NameColumns* name_out) const noexcept;

    ClassifierSpec spec_;
    std::vector<ScoredCandidate> port_scored_;     // by port rule id
    std::vector<ScoredCandidate> port_identified_scored_;  // the same, no mining guess
    std::vector<ScoredCandidate> service_scored_;  // by service code
    std::vector<ScoredCandidate> server_scored_;   // by path code
    ScoredCandidate shape_scored_;                 // mining_suspect, weak, flow_shape
    ScoredCandidate cache_scored_;                 // mining, named, pair_cache
    ScoredCandidate tunnel_scored_;                // dns_tunnel, named, dns_score
    std::vector<ScoredCandidate> as_scored_;       // by AS verdict code
    std::vector<ScoredCandidate> dated_scored_;    // by dated verdict code
    std::uint64_t tag_;                            // this classifier's id in name caches
    // Paths and services of IPv4 ends in one lookup (null when it could not
    // be built: the two tables are then looked up apart).
    std::shared_ptr<const Ipv4JointTable> paths_services_;
};

}  // namespace nkclass
