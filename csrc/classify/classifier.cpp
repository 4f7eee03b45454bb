// The batch classification pass (see classifier.hpp).
//
// Flows are processed in blocks: the prefix lookups of a block (path and
// service of each end, one joint lookup per end for IPv4 columns) run as
// bulk lookups into small stack buffers (tight loops the table code
// optimises), then one loop per flow combines them with the port and
// payload stages. Blocks keep the working set in L1.
#include "nkclass/classifier.hpp"

#include "nkclass/dated_table.hpp"
#include "nkclass/detectors.hpp"
#include "nkclass/dns_answers.hpp"
#include "nkclass/dns_tunnel.hpp"
#include "nkclass/domains.hpp"
#include "nkclass/flow_shape.hpp"
#include "nkclass/name_cache.hpp"
#include "nkclass/pair_cache.hpp"
#include "nkclass/vocab.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

namespace nkclass {

namespace {

constexpr std::size_t kBlock = 512;

// Picks the winning app and activity among the candidates offered. A
// candidate is two words (see ScoredCandidate) whose top bits order them,
// so "better" and "equally good" are plain comparisons the compiler turns
// into conditional moves: flows arrive in random order, so branches on
// them would mispredict. An equally good candidate adds its evidence.
class Verdict {
public:
    void offer(const ScoredCandidate& c) noexcept {
        activity_ = keep(activity_, c.activity, /*tie=*/24);  // the same score
        app_ = keep(app_, c.app, /*tie=*/16);                 // the same rank and app
    }

    std::uint8_t app() const noexcept { return static_cast<std::uint8_t>(app_ >> 16); }
    std::uint8_t activity() const noexcept { return static_cast<std::uint8_t>(activity_ >> 16); }
    std::uint8_t activity_rank() const noexcept {
        return static_cast<std::uint8_t>(activity_ >> 40);
    }
    std::uint16_t evidence() const noexcept {
        return static_cast<std::uint16_t>(app_ | activity_);
    }
    std::uint8_t confidence() const noexcept {
        static constexpr std::uint8_t kByRank[] = {kConfNone, kConfLow, kConfMedium, kConfMedium,
                                                   kConfHigh};
        return kByRank[activity_ >> 40];
    }

private:
    // The better of the held word and an offered one by their bits from 24
    // up (the strength); on a tie of the bits from `tie` up, the held one
    // with both evidences. An empty offer (0) never wins and adds nothing.
    template <typename Word>
    static Word keep(Word held, Word offered, unsigned tie) noexcept {
        const bool better = (offered >> 24) > (held >> 24);
        const bool same = (offered >> tie) == (held >> tie);
        return better ? offered : same ? (held | (offered & 0xffffu)) : held;
    }

    std::uint64_t activity_ = 0;
    std::uint32_t app_ = 0;
};

// The verdict of the offers every flow gets (its service's, its watched
// server's, its port rule's), kept per distinct combination: a batch holds
// few (the services, paths and port rules its flows meet), and a hit is a
// hash, a compare and a copy where the three offers are some sixty
// instructions. Direct-mapped; a slot taken by a colliding combination is
// computed again. One per pass, so threads share nothing.
class StaticVerdicts {
public:
    // The combination as one word: the service in bits 33-62 (so no key is
    // all ones, the empty slot), the path in 17-32, the port rule in 1-16,
    // bit 0 set where the payload identified a protocol.
    static bool fits(std::size_t n_services, std::size_t n_paths) noexcept {
        return n_services <= (std::size_t{1} << 30) && n_paths <= (std::size_t{1} << 16);
    }
    static std::uint64_t key(std::size_t service, std::size_t path, std::size_t rule,
                             bool identified) noexcept {
        return std::uint64_t{service} << 33 | std::uint64_t{path} << 17 |
               std::uint64_t{rule} << 1 | std::uint64_t{identified};
    }

    // Slots for a batch of `flows`: enough that a batch's few combinations
    // seldom collide, few enough that a small batch does not pay for
    // clearing them.
    explicit StaticVerdicts(std::size_t flows)
        : bits_(flows >= 16384 ? 12 : flows >= 1024 ? 9 : 6), slots_(std::size_t{1} << bits_) {}

    template <typename Compute>
    Verdict get(std::uint64_t key, Compute&& compute) noexcept {
        Slot& s = slots_[(key * 0x9e3779b97f4a7c15u) >> (64 - bits_)];
        if (s.key != key) {
            s.key = key;
            s.verdict = compute();
        }
        return s.verdict;
    }

private:
    struct Slot {
        std::uint64_t key = ~std::uint64_t{0};
        Verdict verdict;
    };
    unsigned bits_;
    std::vector<Slot> slots_;
};

void lookup_block(const PrefixTable& table, const AddressColumn& col, std::size_t begin,
                  std::size_t count, label_t* out) noexcept {
    if (col.v4 != nullptr) {
        table.lookup_v4(col.v4 + begin, count, out);
    } else {
        table.lookup_v6(col.v6 + begin, count, out);
    }
}

// The peer of each flow: the unwatched side, else the responder
// (destination).
inline bool peer_is_source(label_t path_src, label_t path_dst) noexcept {
    return path_src == kNoLabel && path_dst != kNoLabel;
}

// The name-cache key of flow i's peer: the source's address and port when
// `src_peer`, else the destination's. Both are built and one kept, without
// a branch: which side is the peer varies flow to flow.
inline NameKey peer_name_key(const FlowColumns& cols, std::size_t i, bool src_peer) noexcept {
    const NameKey s = name_key(cols.src_ip, i, cols.src_port[i]);
    const NameKey d = name_key(cols.dst_ip, i, cols.dst_port[i]);
    NameKey key;
    key.address.hi = src_peer ? s.address.hi : d.address.hi;
    key.address.lo = src_peer ? s.address.lo : d.address.lo;
    key.port = src_peer ? s.port : d.port;
    return key;
}

// Flows taken a chunk at a time ahead of the flow loop when the AS stage is
// on: their watched paths, and their peers' AS entry ids in one long
// pipelined lookup (per 512-flow block, the lookups of a table too large to
// stay cached ran at half their standalone rate).
struct PeerChunk {
    std::size_t flows = 0;  // a multiple of kBlock
    std::vector<label_t> path_src, path_dst, svc_src, svc_dst, peer_as;
    std::vector<ipv4_host_t> peer4;
    std::vector<ipv6_net_t> peer6;

    // 16 blocks (4 and 64 measured the same), else one when memory
    // is short; false when not even that can be had.
    bool allocate(bool v4) noexcept {
        for (const std::size_t want : {16 * kBlock, kBlock}) {
            try {
                path_src.resize(want), path_dst.resize(want), peer_as.resize(want);
                svc_src.resize(want), svc_dst.resize(want);
                v4 ? peer4.resize(want) : peer6.resize(want);
                flows = want;
                return true;
            } catch (const std::bad_alloc&) {
                path_src = path_dst = svc_src = svc_dst = peer_as = {};
                peer4 = {};
                peer6 = {};
            }
        }
        return false;
    }

    // Flows [begin, begin + count), count <= flows: paths and services
    // (from `joint` where given), and AS ids: the caller's nonzero id where
    // given, else the table's answer for the peer address (0 without a
    // table). Only the peer is looked up: it is the side the verdict reads.
    void fill(const PrefixTable& paths, const PrefixTable& services, const Ipv4JointTable* joint,
              const PrefixTable* table, const FlowColumns& cols, std::size_t begin,
              std::size_t count) noexcept {
        if (joint != nullptr) {
            joint->lookup(cols.src_ip.v4 + begin, count, path_src.data(), svc_src.data());
            joint->lookup(cols.dst_ip.v4 + begin, count, path_dst.data(), svc_dst.data());
        } else {
            for (std::size_t b = 0; b < count; b += kBlock) {
                const std::size_t c = std::min(kBlock, count - b);
                lookup_block(paths, cols.src_ip, begin + b, c, path_src.data() + b);
                lookup_block(paths, cols.dst_ip, begin + b, c, path_dst.data() + b);
                lookup_block(services, cols.src_ip, begin + b, c, svc_src.data() + b);
                lookup_block(services, cols.dst_ip, begin + b, c, svc_dst.data() + b);
            }
        }
        label_t* out = peer_as.data();
        if (table == nullptr) {
            std::fill(out, out + count, kNoLabel);
        } else if (!peer4.empty()) {
            // Both sides read, one kept: which is the peer is a coin toss
            // where watched hosts are clients and servers alike, and a
            // branch on it mispredicts half the time.
            const ipv4_host_t* src = cols.src_ip.v4 + begin;
            const ipv4_host_t* dst = cols.dst_ip.v4 + begin;
            for (std::size_t k = 0; k < count; ++k) {
                const ipv4_host_t s = src[k], d = dst[k];
                peer4[k] = peer_is_source(path_src[k], path_dst[k]) ? s : d;
            }
            table->lookup_v4(peer4.data(), count, out);
        } else {
            for (std::size_t k = 0; k < count; ++k) {
                const AddressColumn& col =
                    peer_is_source(path_src[k], path_dst[k]) ? cols.src_ip : cols.dst_ip;
                peer6[k] = col.v4 != nullptr ? map_ipv4(col.v4[begin + k]) : col.v6[begin + k];
            }
            table->lookup_v6(peer6.data(), count, out);
        }
        if (cols.src_as == nullptr && cols.dst_as == nullptr) return;
        // The same without branches: a missing column reads as zeros.
        static const std::uint32_t kNone[kBlock] = {};
        for (std::size_t b = 0; b < count; b += kBlock) {
            const std::size_t c = std::min(kBlock, count - b);
            const std::uint32_t* src = cols.src_as ? cols.src_as + begin + b : kNone;
            const std::uint32_t* dst = cols.dst_as ? cols.dst_as + begin + b : kNone;
            for (std::size_t k = 0; k < c; ++k) {
                const std::uint32_t s = src[k], d = dst[k];
                const std::uint32_t given = peer_is_source(path_src[b + k], path_dst[b + k]) ? s : d;
                out[b + k] = given != 0 ? given : out[b + k];
            }
        }
    }
};

std::atomic<std::uint64_t> next_tag{1};

// Learns the answers of a DNS response the flow carries (either side; the
// responder's first), as (address, any port) -> question name.
void learn_dns_answers(const FlowColumns& cols, std::size_t i, std::int64_t t,
                       NameCache* names) noexcept {
    const bool tcp = cols.protocol[i] == 6;
    DnsAnswers answers;
    const bool found =
        parse_dns_answers(cols.dst_payload.at(i), cols.dst_payload.length(i), tcp, &answers) ||
        parse_dns_answers(cols.src_payload.at(i), cols.src_payload.length(i), tcp, &answers);
    if (found) names->learn_answers_locked(answers, t);
}

}  // namespace

void PayloadInspector::inspect_block(const FlowColumns& cols, std::size_t begin,
                                     std::size_t count, PayloadCandidates* out,
                                     ServerName* names) const noexcept {
    // Without a prefetch the loop is bound by the miss on each side's first
    // line. Measured against Hyperscan on the benchmark's mix: the first
    // line of each side 8 flows ahead 0.98x, the first two or three 1.05-1.10x,
    // 4 or 16 flows ahead no better. Taking a block's flows grouped by
    // their first byte, to steady the dispatch branches, ran at 0.74-0.80x:
    // the payloads are no longer read in memory order.
    constexpr std::size_t kAhead = 8, kLines = 3;
    for (std::size_t k = 0; k < count; ++k) {
        const std::size_t i = begin + k;
        if (k + kAhead < count) {
            cols.src_payload.prefetch<kLines>(i + kAhead);
            cols.dst_payload.prefetch<kLines>(i + kAhead);
        }
        if (names != nullptr) {
            out[k].n = static_cast<std::uint8_t>(inspect_named(
                cols.protocol[i], cols.src_port[i], cols.dst_port[i], cols.src_payload.at(i),
                cols.src_payload.length(i), cols.dst_payload.at(i), cols.dst_payload.length(i),
                out[k].c, PayloadCandidates::kMax, &names[k]));
        } else {
            out[k].n = static_cast<std::uint8_t>(
                inspect(cols.protocol[i], cols.src_port[i], cols.dst_port[i],
                        cols.src_payload.at(i), cols.src_payload.length(i),
                        cols.dst_payload.at(i), cols.dst_payload.length(i), out[k].c,
                        PayloadCandidates::kMax));
        }
    }
}

BuildStatus Classifier::validate(const ClassifierSpec& spec) {
    if (!spec.paths || !spec.services || !spec.ports)
        return BuildStatus::failure(0, "classifier needs path, service and port tables");
    const std::size_t n_act = spec.precedence.size();
    auto check = [n_act](const std::vector<Candidate>& v) {
        for (std::size_t i = 0; i < v.size(); ++i)
            if (v[i].activity >= n_act || v[i].rank > kRankPayload) return i;
        return v.size();
    };
    if (std::size_t i = check(spec.port_verdicts); i != spec.port_verdicts.size())
        return BuildStatus::failure(i, "port verdict names an unknown activity or rank");
    if (std::size_t i = check(spec.service_verdicts); i != spec.service_verdicts.size())
        return BuildStatus::failure(i, "service verdict names an unknown activity or rank");
    if (std::size_t i = check(spec.as_verdicts); i != spec.as_verdicts.size())
        return BuildStatus::failure(i, "AS verdict names an unknown activity or rank");
    if (!spec.as_verdicts.empty()) {
        const Candidate& none = spec.as_verdicts[0];
        if (none.app != 0 || none.activity != 0 || none.evidence != 0 || none.service != 0)
            return BuildStatus::failure(0, "AS verdict 0 must be empty: it is the verdict of no opinion");
    }
    for (std::size_t i = 0; i < spec.as_entry_verdict.size(); ++i)
        if (spec.as_entry_verdict[i] >= spec.as_verdicts.size())
            return BuildStatus::failure(i, "AS entry names an unknown verdict");
    if (std::size_t i = check(spec.dated_verdicts); i != spec.dated_verdicts.size())
        return BuildStatus::failure(i, "dated verdict names an unknown activity or rank");
    if ((spec.dated_prefixes != nullptr) != (spec.dated != nullptr))
        return BuildStatus::failure(0, "dated lists need both their prefixes and intervals");
    if (spec.dated != nullptr) {
        for (std::uint16_t v : spec.dated->verdicts())
            if (v >= spec.dated_verdicts.size())
                return BuildStatus::failure(v, "dated interval names an unknown verdict");
    }
    for (std::size_t i = 0; i < spec.path_server_activity.size(); ++i)
        if (spec.path_server_activity[i] >= n_act)
            return BuildStatus::failure(i, "path server activity is unknown");
    if (spec.shape_min_conditions > kShapeConditions)
        return BuildStatus::failure(0, "flow shape needs 0..9 conditions");
    if (const char* why = validate_dns_tunnel(spec.dns_tunnel))
        return BuildStatus::failure(0, why);
    if (spec.payload && n_act < kActivityCount)
        return BuildStatus::failure(0, "a payload stage needs a precedence entry per activity");
    if (spec.port_verdicts.empty() || spec.service_verdicts.empty() ||
        spec.path_server_activity.empty() || n_act == 0)
        return BuildStatus::failure(0, "verdict tables need their entry 0");
    return BuildStatus::success();
}

Classifier::Classifier(ClassifierSpec spec)
    : spec_(std::move(spec)), tag_(next_tag.fetch_add(1, std::memory_order_relaxed)) {
    for (const Candidate& c : spec_.port_verdicts) {
        port_scored_.push_back(scored(c));
        // The same rule once the payload named a protocol: a pool port
        // keeps its app (if any) but proposes no mining activity.
        Candidate guarded = c;
        if (guarded.activity == kActMining || guarded.activity == kActMiningSuspect)
            guarded.activity = 0;
        port_identified_scored_.push_back(scored(guarded));
    }
    for (const Candidate& c : spec_.dated_verdicts) dated_scored_.push_back(scored(c));
    for (const Candidate& c : spec_.service_verdicts) service_scored_.push_back(scored(c));
    for (const Candidate& c : spec_.as_verdicts) as_scored_.push_back(scored(c));
    for (std::uint8_t activity : spec_.path_server_activity) {
        Candidate c;
        c.activity = activity;
        c.rank = activity ? kRankWeak : kRankNone;
        c.evidence = activity ? kEvWatched : 0;
        server_scored_.push_back(scored(c));
    }
    Candidate shape;
    shape.activity = kActMiningSuspect;
    shape.rank = kRankWeak;
    shape.evidence = kEvFlowShape;
    shape_scored_ = scored(shape);
    Candidate cached;
    cached.activity = kActMining;
    cached.rank = kRankNamed;
    cached.evidence = kEvPairCache;
    cache_scored_ = scored(cached);
    if (spec_.paths && spec_.services) {
        try {
            auto joint = std::make_shared<Ipv4JointTable>();
            if (joint->build(spec_.paths->ipv4(), spec_.services->ipv4()).ok)
                paths_services_ = std::move(joint);
        } catch (const std::bad_alloc&) {
            // the tables are looked up apart (see paths_services_)
        }
    }
    Candidate tunnel;
    tunnel.activity = kActDnsTunnel;
    tunnel.rank = kRankNamed;
    tunnel.evidence = kEvDnsScore;
    tunnel_scored_ = scored(tunnel);
}

ScoredCandidate Classifier::scored(const Candidate& c) const noexcept {
    ScoredCandidate s;
    if (c.rank == kRankNone) return s;
    if (c.activity != 0 && c.activity < spec_.precedence.size()) {
        const std::uint64_t score =
            (std::uint64_t{c.rank} << 16) | (0xffffu - spec_.precedence[c.activity]);
        s.activity = score << 24 | std::uint64_t{c.activity} << 16 | c.evidence;
    }
    if (c.app != 0) s.app = std::uint32_t{c.rank} << 24 | std::uint32_t{c.app} << 16 | c.evidence;
    return s;
}

void Classifier::classify(const FlowColumns& cols, const LabelColumns& out, PairCache* cache,
                          NameCache* names, const NameColumns* name_out) const noexcept {
    // Flow shape: the whole batch is grouped before the per-flow pass.
    std::unique_ptr<std::uint16_t[]> shape;  // not zeroed: the stage writes every flow's mask
    if (spec_.shape_min_conditions != 0 && cols.has_shape_columns() && cols.n != 0) {
        try {
            shape.reset(new std::uint16_t[cols.n]);
            flow_shape_conditions(cols, spec_.shape_min_flows, shape.get());
        } catch (const std::bad_alloc&) {
            shape.reset();  // documented: the stage is skipped
        }
    }
    const std::uint16_t* shape_mask = shape.get();
    // DNS tunnelling: the batch's queries are scored per zone first.
    std::vector<std::uint8_t> tunnel;
    if (spec_.dns_tunnel.min_conditions != 0 && spec_.payload != nullptr && cols.n != 0 &&
        (cols.src_payload.data != nullptr || cols.dst_payload.data != nullptr)) {
        try {
            tunnel.resize(cols.n);
            dns_tunnel_conditions(cols, spec_.dns_tunnel, tunnel.data());
        } catch (const std::bad_alloc&) {
            tunnel.clear();  // documented: the stage is skipped
        }
    }
    const std::uint8_t* tunnel_mask = tunnel.empty() ? nullptr : tunnel.data();
    if (cols.ts_end == nullptr) cache = nullptr;

    // Locked for the whole pass (see classifier.hpp), the pair cache first.
    std::unique_lock<std::mutex> names_lock;
    auto with_names = [&] {
        if (names != nullptr) names_lock = std::unique_lock<std::mutex>(names->mutex());
    };
    // One instantiation per stage set, so the pass over flow records
    // without payload or times (paths, services and ports, with or without
    // the AS stage) runs a loop without the other stages' tests.
    const bool plain = shape_mask == nullptr && cache == nullptr && tunnel_mask == nullptr &&
                       names == nullptr && name_out == nullptr &&
                       (spec_.payload == nullptr ||
                        (cols.src_payload.data == nullptr && cols.dst_payload.data == nullptr)) &&
                       (spec_.dated == nullptr || cols.ts_start == nullptr);
    if (plain && as_scored_.empty()) {
        run<false, false, kStagesNone>(cols, out, nullptr, nullptr, nullptr, nullptr, nullptr);
    } else if (plain) {
        run<false, false, kStageAs>(cols, out, nullptr, nullptr, nullptr, nullptr, nullptr);
    } else if (cache != nullptr) {
        std::lock_guard<std::mutex> lock(cache->mutex());
        with_names();
        if (shape_mask != nullptr)
            run<true, true, kStagesAll>(cols, out, shape_mask, tunnel_mask, cache, names, name_out);
        else
            run<false, true, kStagesAll>(cols, out, nullptr, tunnel_mask, cache, names, name_out);
    } else if (shape_mask != nullptr) {
        with_names();
        run<true, false, kStagesAll>(cols, out, shape_mask, tunnel_mask, nullptr, names, name_out);
    } else {
        with_names();
        run<false, false, kStagesAll>(cols, out, nullptr, tunnel_mask, nullptr, names, name_out);
    }
}

template <bool kShape, bool kCache, unsigned kStages>
void Classifier::run(const FlowColumns& cols, const LabelColumns& out,
                     const std::uint16_t* shape_mask, const std::uint8_t* tunnel_mask,
                     PairCache* cache, NameCache* names,
                     const NameColumns* name_out) const noexcept {
    const PrefixTable& paths = *spec_.paths;
    const PrefixTable& services = *spec_.services;
    const PortTable& ports = *spec_.ports;
    // Entry 0 of each table is the empty candidate; out-of-range codes (a
    // table built from other rules) fall back to it instead of reading out
    // of bounds.
    const ScoredCandidate* port_scored = port_scored_.data();
    const ScoredCandidate* port_identified_scored = port_identified_scored_.data();
    const std::size_t n_ports = port_scored_.size();
    const ScoredCandidate* service_scored = service_scored_.data();
    const std::size_t n_services = service_scored_.size();
    const ScoredCandidate* server_scored = server_scored_.data();
    const std::size_t n_paths = server_scored_.size();
    // Payload, dated lists, learned names, DNS tunnel scores, name columns.
    constexpr bool kOther = (kStages & kStagesOther) != 0;
    const PayloadInspector* payload = spec_.payload.get();
    const bool have_payload =
        kOther && payload != nullptr &&
        (cols.src_payload.data != nullptr || cols.dst_payload.data != nullptr);
    const unsigned shape_needed = spec_.shape_min_conditions;
    const unsigned tunnel_needed = spec_.dns_tunnel.min_conditions;

    label_t path_src_block[kBlock], path_dst_block[kBlock], svc_src_block[kBlock],
        svc_dst_block[kBlock];
    std::uint16_t port_rule[kBlock];
    PayloadCandidates payload_found[kBlock];
    std::uint16_t as_code[kBlock];
    bool as_sparse = false;  // under an eighth of the block's peers have an AS verdict
    std::uint8_t peer_is_src[kBlock];
    // With the AS stage on, paths and peers' AS ids come a chunk at a time
    // (should not even one block's buffers be had, the verdicts go without
    // AS evidence, and the peer AS column stays 0).
    PeerChunk chunk;
    const bool have_as = (kStages & kStageAs) && !as_scored_.empty() &&
                         chunk.allocate(cols.src_ip.v4 != nullptr && cols.dst_ip.v4 != nullptr);
    if (!have_as && out.peer_as != nullptr) std::fill(out.peer_as, out.peer_as + cols.n, 0u);
    const PrefixTable* as_table = spec_.as_table.get();
    const ScoredCandidate* as_scored = as_scored_.data();
    const Candidate* as_verdicts = spec_.as_verdicts.data();
    const std::uint16_t* entry_verdict = spec_.as_entry_verdict.data();
    const std::size_t n_entries = spec_.as_entry_verdict.size();

    // Dated lists need the flows' start times.
    const DatedIntervals* dated = spec_.dated.get();
    const bool have_dated = kOther && dated != nullptr && cols.ts_start != nullptr;
    label_t dated_src[kBlock], dated_dst[kBlock];
    const Candidate* dated_verdicts = spec_.dated_verdicts.data();
    const ScoredCandidate* dated_scored = dated_scored_.data();

    // Learned names: the payload's own server names (to learn them, and to
    // leave flows that carry one to it) go to a buffer allocated once per
    // pass; should that fail, names are neither learned from payload nor
    // written out, but stored names are still used.
    const bool have_names = kOther && names != nullptr;
    std::vector<ServerName> own_names;
    if ((have_names || name_out != nullptr) && have_payload) {
        try {
            own_names.resize(kBlock);
        } catch (const std::bad_alloc&) {
            own_names.clear();
        }
    }
    ServerName* own = kOther && !own_names.empty() ? own_names.data() : nullptr;
    const DomainTable* domains = spec_.domains.get();
    // Only the dated lists and learned names read the flows' start times:
    // the other stages do not load them.
    const bool need_time = (have_dated || have_names) && cols.ts_start != nullptr;
    NameCache::Hashes name_hashes[kBlock];
    bool hashed[kBlock];
    NameDictionary* dictionary = kOther && name_out != nullptr ? name_out->names : nullptr;

    const Ipv4JointTable* joint =
        cols.src_ip.v4 != nullptr && cols.dst_ip.v4 != nullptr ? paths_services_.get() : nullptr;
    std::unique_ptr<StaticVerdicts> memo;
    if (StaticVerdicts::fits(n_services, n_paths) && cols.n != 0) {
        try {
            memo = std::make_unique<StaticVerdicts>(cols.n);
        } catch (const std::bad_alloc&) {
            memo.reset();  // every flow takes the three offers
        }
    }

    for (std::size_t begin = 0; begin < cols.n; begin += kBlock) {
        const std::size_t count = std::min(kBlock, cols.n - begin);
        const label_t* path_src = path_src_block;
        const label_t* path_dst = path_dst_block;
        const label_t* svc_src = svc_src_block;
        const label_t* svc_dst = svc_dst_block;
        const label_t* peer_as_block = nullptr;
        if (have_as) {
            const std::size_t at = begin % chunk.flows;
            if (at == 0)
                chunk.fill(paths, services, joint, as_table, cols, begin,
                           std::min(chunk.flows, cols.n - begin));
            path_src = chunk.path_src.data() + at;
            path_dst = chunk.path_dst.data() + at;
            svc_src = chunk.svc_src.data() + at;
            svc_dst = chunk.svc_dst.data() + at;
            peer_as_block = chunk.peer_as.data() + at;
        } else if (joint != nullptr) {
            joint->lookup(cols.src_ip.v4 + begin, count, path_src_block, svc_src_block);
            joint->lookup(cols.dst_ip.v4 + begin, count, path_dst_block, svc_dst_block);
        } else {
            lookup_block(paths, cols.src_ip, begin, count, path_src_block);
            lookup_block(paths, cols.dst_ip, begin, count, path_dst_block);
            lookup_block(services, cols.src_ip, begin, count, svc_src_block);
            lookup_block(services, cols.dst_ip, begin, count, svc_dst_block);
        }
        // Port rules in a loop of their own: its independent table reads
        // overlap, where inside the flow loop each waited on the one before.
        for (std::size_t k = 0; k < count; ++k)
            port_rule[k] = ports.rule_for(cols.protocol[begin + k], cols.src_port[begin + k],
                                          cols.dst_port[begin + k]);
        if (have_payload) payload->inspect_block(cols, begin, count, payload_found, own);
        if (have_dated) {
            lookup_block(*spec_.dated_prefixes, cols.src_ip, begin, count, dated_src);
            lookup_block(*spec_.dated_prefixes, cols.dst_ip, begin, count, dated_dst);
        }
        if (have_as || have_names) {
            // The peer: the unwatched side, else the responder (destination).
            for (std::size_t k = 0; k < count; ++k)
                peer_is_src[k] = peer_is_source(path_src[k], path_dst[k]);
        }
        if (have_as) {
            // Each peer entry's verdict, read in a loop of its own: a table
            // of one entry per AS, too large to stay cached beside the flow
            // columns, whose independent reads overlap here.
            std::size_t with_verdict = 0;
            for (std::size_t k = 0; k < count; ++k) {
                const label_t peer_as = peer_as_block[k];
                as_code[k] = peer_as < n_entries ? entry_verdict[peer_as] : 0;
                with_verdict += as_code[k] != 0;
            }
            as_sparse = with_verdict * 8 < count;
            if (out.peer_as != nullptr)
                std::copy(peer_as_block, peer_as_block + count, out.peer_as + begin);
        }
        if (have_names && names->cached_locked()) {
            std::fill(hashed, hashed + count, false);
        } else if (have_names) {
            // Hash the keys of the peers the cache may hold and fetch their
            // slots before the loop needs them: each probe into a large
            // cache is a likely miss. (A peer learned within this block is
            // hashed when the loop reaches it, as are all in a cache small
            // enough to stay cached.)
            for (std::size_t k = 0; k < count; ++k) {
                const std::size_t i = begin + k;
                const NameKey key = peer_name_key(cols, i, peer_is_src[k]);
                hashed[k] = names->may_hold_locked(key.address);
                if (!hashed[k]) continue;
                name_hashes[k] = NameCache::hashes_of(key.address, key.port);
                names->prefetch(name_hashes[k].port);
                names->prefetch(name_hashes[k].any);
            }
            for (std::size_t k = 0; k < count; ++k) {
                if (!hashed[k]) continue;
                names->prefetch_entry(name_hashes[k].port);
                names->prefetch_entry(name_hashes[k].any);
            }
        }

        for (std::size_t k = 0; k < count; ++k) {
            const std::size_t i = begin + k;
            const label_t ps = path_src[k];
            const label_t pd = path_dst[k];
            // Built arithmetically: GCC branches on the two tests otherwise.
            static_assert(kSideSrc == 1 && kSideDst == 2, "side bits");
            const std::uint8_t side = static_cast<std::uint8_t>((ps != 0) | (pd != 0) << 1);
            // The peer is the endpoint outside the watched network; with
            // both or neither watched, the server (destination) is the peer,
            // unless it has no service and the source has one.
            const label_t sd = svc_dst[k];
            const bool from_src = (side == kSideDst) | ((side != kSideSrc) & (sd == 0));
            label_t service = from_src ? svc_src[k] : sd;
            std::uint8_t service_rank = service != 0 ? kRankNamed : kRankNone;

            const std::uint16_t rule = port_rule[k];

            // The service is offered first, but only once a stage between
            // it and the watched server offers something: where none does
            // (every flow of a pass without dated lists, AS numbers or
            // learned names; most flows of one with them), the three
            // offers' verdict comes from the memo instead.
            const std::size_t service_code = service < n_services ? service : 0;
            Verdict verdict;
            bool offered_between = false;
            auto offer_between = [&](const ScoredCandidate& c) {
                if (!offered_between) verdict.offer(service_scored[service_code]);
                offered_between = true;
                verdict.offer(c);
            };
            const std::int64_t ts = need_time ? cols.ts_start[i] : 0;
            if (have_dated) {
                // An entry valid at the flow's start: a named list, more
                // specific than a static network, so ">=" lets its service win.
                auto offer_dated = [&](std::uint16_t code) {
                    offer_between(dated_scored[code]);
                    const Candidate& c = dated_verdicts[code];
                    if (c.service != 0 && c.rank >= service_rank) {
                        service = c.service;
                        service_rank = c.rank;
                    }
                };
                const label_t first = side == kSideDst ? dated_src[k] : dated_dst[k];
                const std::size_t hits = dated->for_each_at(first, ts, offer_dated);
                if (hits == 0 && (side == kSideNone || side == kSideBoth))
                    dated->for_each_at(dated_src[k], ts, offer_dated);
            }
            // The peer's AS: the unwatched side, else the responder. Where
            // few of a block's peers have an AS verdict (most addresses do
            // not), the flows without one skip it on a branch that seldom
            // mispredicts (and take the memo); elsewhere it is offered
            // without a branch.
            if (have_as && (!as_sparse || as_code[k] != 0)) {
                const std::uint16_t code = as_code[k];
                offer_between(as_scored[code]);
                // An AS names the service only where nothing else did
                // (selected, not branched on: it varies flow to flow).
                const Candidate& c = as_verdicts[code];
                const bool take = service == 0 && c.service != 0;
                service = take ? c.service : service;
                service_rank = take ? c.rank : service_rank;
            }
            // (Branched on, not selected: `own` is the same for the whole
            // pass, and a selection would read the name's kind every flow.)
            const ServerName* own_name = nullptr;
            bool names_itself = false;
            if (own != nullptr) {
                own_name = &own[k];
                names_itself = own_name->kind == kNameSni || own_name->kind == kNameHost;
            }
            if (have_names && !names_itself) {
                const NameKey key = peer_name_key(cols, i, peer_is_src[k]);
                std::uint32_t handle = 0;
                if (names->may_hold_locked(key.address)) {
                    if (!hashed[k]) name_hashes[k] = NameCache::hashes_of(key.address, key.port);
                    handle = names->lookup_locked(key.address, key.port, name_hashes[k], ts);
                }
                if (handle != 0) {
                    if (domains != nullptr) {
                        const DomainMatch m = names->match_locked(handle, tag_, *domains);
                        if (m.service != 0) {
                            Candidate c;
                            c.activity = m.activity;
                            c.rank = kRankNamed;
                            c.evidence = kEvDnsLearned;
                            c.service = m.service;
                            offer_between(scored(c));
                            if (c.rank >= service_rank) {
                                service = c.service;
                                service_rank = c.rank;
                            }
                        }
                    }
                    if (dictionary != nullptr && name_out->learned != nullptr) {
                        const std::string& text = names->name_locked(handle);
                        name_out->learned[i] = dictionary->code(text.data(), text.size());
                    }
                }
            }
            // Weak mining guesses (pool ports, flow shape) never override a
            // protocol the payload identified as something other than
            // mining: TLS to a named service, HTTP that is not getwork/GBT,
            // DNS, the infrastructure protocols. A pool behind TLS is
            // still found by its name, address list or the pair cache.
            bool identified = false;
            if (have_payload) {
                const PayloadCandidates& found = payload_found[k];
                identified = found.n != 0 && found.c[0].rank == kRankPayload &&
                             found.c[0].app != 0 && found.c[0].app != kAppStratum;
            }
            const std::size_t path_code = pd < n_paths ? pd : 0;
            const std::size_t rule_code = rule < n_ports ? rule : 0;
            // `v` with the service (unless offered already), the watched
            // server and the port rule offered after what it holds.
            auto with_static_offers = [&](Verdict v) {
                if (!offered_between) v.offer(service_scored[service_code]);
                v.offer(server_scored[path_code]);
                v.offer((identified ? port_identified_scored : port_scored)[rule_code]);
                return v;
            };
            if (memo != nullptr && !offered_between) {
                verdict = memo->get(
                    StaticVerdicts::key(service_code, path_code, rule_code, identified),
                    [&] { return with_static_offers(Verdict()); });
            } else {
                verdict = with_static_offers(verdict);
            }
            if (have_payload) {
                const PayloadCandidates& found = payload_found[k];
                for (std::size_t c = 0; c < found.n; ++c) {
                    verdict.offer(scored(found.c[c]));
                    // A named service from the payload (a domain match) is more
                    // specific than an IP-list service of equal rank: payload
                    // candidates come after the IP list, so ">=" lets it win.
                    if (found.c[c].service != 0 && found.c[c].rank >= service_rank) {
                        service = found.c[c].service;
                        service_rank = found.c[c].rank;
                    }
                }
            }

            if constexpr (kShape) {
                const unsigned mask = shape_mask[i];
                if (!identified && (mask & kShapeMember) != 0 &&
                    popcount64(mask & kShapeConditionMask) >= shape_needed)
                    verdict.offer(shape_scored_);
            }
            // Constant per batch, so the branch predicts.
            if (kOther && tunnel_mask != nullptr &&
                dns_tunnel_passes(tunnel_mask[i], tunnel_needed))
                verdict.offer(tunnel_scored_);
            if constexpr (kCache) {
                const PairKey key = pair_key(cols.src_ip, cols.dst_ip, i);
                if (verdict.activity() == kActMining && verdict.activity_rank() == kRankPayload)
                    cache->confirm_locked(key, cols.ts_end[i]);
                else if (cache->live_locked(key, cols.ts_end[i]))
                    verdict.offer(cache_scored_);
            }

            if (have_names) {
                // What this flow teaches later ones.
                const std::uint16_t dport = cols.dst_port[i];
                if (names_itself)
                    names->learn_locked(name_key(cols.dst_ip, i, dport), own_name->text,
                                        own_name->len, ts, 0,
                                        own_name->kind == kNameSni ? kOriginSni : kOriginHost);
                const std::uint8_t proto = cols.protocol[i];
                if (have_payload && (cols.src_port[i] == 53 || dport == 53) &&
                    (proto == 6 || proto == 17))
                    learn_dns_answers(cols, i, ts, names);
            }
            if (dictionary != nullptr && own_name != nullptr && own_name->len != 0) {
                std::uint32_t* column = own_name->kind == kNameSni    ? name_out->sni
                                        : own_name->kind == kNameHost ? name_out->host
                                                                      : nullptr;
                if (column != nullptr) column[i] = dictionary->code(own_name->text, own_name->len);
            }

            out.path[i] = static_cast<std::uint16_t>(ps ? ps : pd);
            out.side[i] = side;
            out.service[i] = service;
            out.app[i] = verdict.app();
            out.activity[i] = verdict.activity();
            out.evidence[i] = verdict.evidence();
            out.confidence[i] = verdict.confidence();
        }
    }
}

}  // namespace nkclass
