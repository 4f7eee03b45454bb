// The batch classification pass (see classifier.hpp).
//
// Flows are processed in blocks: the four prefix lookups of a block run as
// bulk lookups into small stack buffers (tight loops the table code
// optimises), then one loop per flow combines them with the port and
// payload stages. Blocks keep the working set in L1.
#include "nkclass/classifier.hpp"

#include "nkclass/vocab.hpp"

#include <algorithm>

namespace nkclass {

namespace {

constexpr std::size_t kBlock = 512;
constexpr std::size_t kMaxCandidates = 8;

// Picks the winning app and activity among the candidates offered.
class Verdict {
public:
    Verdict(const std::uint16_t* precedence, std::uint32_t service) noexcept
        : precedence_(precedence),
          service_(service),
          service_rank_(service != 0 ? kRankNamed : kRankNone) {}

    void offer(const Candidate& c) noexcept {
        if (c.rank == kRankNone) return;
        // Equal rank: the later offer (a domain name, after IP lists) wins.
        if (c.service != 0 && c.rank >= service_rank_) {
            service_ = c.service;
            service_rank_ = c.rank;
        }
        if (c.app != 0) {
            if (c.rank > app_rank_) {
                app_ = c.app;
                app_rank_ = c.rank;
                app_evidence_ = c.evidence;
            } else if (c.rank == app_rank_ && c.app == app_) {
                app_evidence_ |= c.evidence;
            }
        }
        if (c.activity != 0) {
            const std::uint16_t prec = precedence_[c.activity];
            if (c.rank > activity_rank_ ||
                (c.rank == activity_rank_ && prec < activity_precedence_)) {
                activity_ = c.activity;
                activity_rank_ = c.rank;
                activity_precedence_ = prec;
                activity_evidence_ = c.evidence;
            } else if (c.rank == activity_rank_ && c.activity == activity_) {
                activity_evidence_ |= c.evidence;
            }
        }
    }

    std::uint8_t app() const noexcept { return app_; }
    std::uint32_t service() const noexcept { return service_; }
    std::uint8_t activity() const noexcept { return activity_; }
    std::uint16_t evidence() const noexcept {
        return static_cast<std::uint16_t>(app_evidence_ | activity_evidence_);
    }
    std::uint8_t confidence() const noexcept {
        switch (activity_rank_) {
            case kRankPayload: return kConfHigh;
            case kRankNamed:
            case kRankAsn: return kConfMedium;
            case kRankWeak: return kConfLow;
            default: return kConfNone;
        }
    }

private:
    const std::uint16_t* precedence_;
    std::uint32_t service_;
    std::uint8_t service_rank_;
    std::uint8_t app_ = 0, app_rank_ = 0;
    std::uint8_t activity_ = 0, activity_rank_ = 0;
    std::uint16_t activity_precedence_ = 0xffff;
    std::uint16_t app_evidence_ = 0, activity_evidence_ = 0;
};

void lookup_block(const PrefixTable& table, const AddressColumn& col, std::size_t begin,
                  std::size_t count, label_t* out) noexcept {
    if (col.v4 != nullptr) {
        table.lookup_v4(col.v4 + begin, count, out);
    } else {
        table.lookup_v6(col.v6 + begin, count, out);
    }
}

}  // namespace

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
    for (std::size_t i = 0; i < spec.path_server_activity.size(); ++i)
        if (spec.path_server_activity[i] >= n_act)
            return BuildStatus::failure(i, "path server activity is unknown");
    if (spec.payload && n_act < kActivityCount)
        return BuildStatus::failure(0, "a payload stage needs a precedence entry per activity");
    if (spec.port_verdicts.empty() || spec.service_verdicts.empty() ||
        spec.path_server_activity.empty() || n_act == 0)
        return BuildStatus::failure(0, "verdict tables need their entry 0");
    return BuildStatus::success();
}

Classifier::Classifier(ClassifierSpec spec) : spec_(std::move(spec)) {}

void Classifier::classify(const FlowColumns& cols, const LabelColumns& out) const noexcept {
    const PrefixTable& paths = *spec_.paths;
    const PrefixTable& services = *spec_.services;
    const PortTable& ports = *spec_.ports;
    const Candidate* port_verdicts = spec_.port_verdicts.data();
    const std::size_t n_port_verdicts = spec_.port_verdicts.size();
    const Candidate* service_verdicts = spec_.service_verdicts.data();
    const std::size_t n_service_verdicts = spec_.service_verdicts.size();
    const std::uint8_t* server_activity = spec_.path_server_activity.data();
    const std::size_t n_paths = spec_.path_server_activity.size();
    const std::uint16_t* precedence = spec_.precedence.data();
    const PayloadInspector* payload = spec_.payload.get();
    const bool have_payload =
        payload != nullptr && (cols.src_payload.data != nullptr || cols.dst_payload.data != nullptr);

    label_t path_src[kBlock], path_dst[kBlock], svc_src[kBlock], svc_dst[kBlock];
    Candidate found[kMaxCandidates];

    for (std::size_t begin = 0; begin < cols.n; begin += kBlock) {
        const std::size_t count = std::min(kBlock, cols.n - begin);
        lookup_block(paths, cols.src_ip, begin, count, path_src);
        lookup_block(paths, cols.dst_ip, begin, count, path_dst);
        lookup_block(services, cols.src_ip, begin, count, svc_src);
        lookup_block(services, cols.dst_ip, begin, count, svc_dst);

        for (std::size_t k = 0; k < count; ++k) {
            const std::size_t i = begin + k;
            const label_t ps = path_src[k];
            const label_t pd = path_dst[k];
            const std::uint8_t side =
                static_cast<std::uint8_t>((ps ? kSideSrc : 0) | (pd ? kSideDst : 0));
            // The peer is the endpoint outside the watched network; with
            // both or neither watched, the server (destination) is the peer.
            label_t service;
            if (side == kSideSrc) service = svc_dst[k];
            else if (side == kSideDst) service = svc_src[k];
            else service = svc_dst[k] ? svc_dst[k] : svc_src[k];

            Verdict verdict(precedence, service);
            if (service != 0 && service < n_service_verdicts) verdict.offer(service_verdicts[service]);
            if (pd != 0 && pd < n_paths && server_activity[pd] != 0) {
                Candidate c;
                c.activity = server_activity[pd];
                c.rank = kRankWeak;
                c.evidence = kEvWatched;
                verdict.offer(c);
            }
            const std::uint8_t proto = cols.protocol[i];
            const std::uint16_t sport = cols.src_port[i];
            const std::uint16_t dport = cols.dst_port[i];
            const std::uint16_t rule = ports.rule_for(proto, sport, dport);
            if (rule != 0 && rule < n_port_verdicts) verdict.offer(port_verdicts[rule]);
            if (have_payload) {
                const std::uint8_t* sp = nullptr;
                const std::uint8_t* dp = nullptr;
                std::size_t sl = 0, dl = 0;
                if (cols.src_payload.data != nullptr) {
                    sp = cols.src_payload.data + cols.src_payload.offsets[i];
                    sl = static_cast<std::size_t>(cols.src_payload.offsets[i + 1] -
                                                  cols.src_payload.offsets[i]);
                }
                if (cols.dst_payload.data != nullptr) {
                    dp = cols.dst_payload.data + cols.dst_payload.offsets[i];
                    dl = static_cast<std::size_t>(cols.dst_payload.offsets[i + 1] -
                                                  cols.dst_payload.offsets[i]);
                }
                const std::size_t m =
                    payload->inspect(proto, sport, dport, sp, sl, dp, dl, found, kMaxCandidates);
                for (std::size_t c = 0; c < m && c < kMaxCandidates; ++c) verdict.offer(found[c]);
            }

            out.path[i] = static_cast<std::uint16_t>(ps ? ps : pd);
            out.side[i] = side;
            out.service[i] = verdict.service();
            out.app[i] = verdict.app();
            out.activity[i] = verdict.activity();
            out.evidence[i] = verdict.evidence();
            out.confidence[i] = verdict.confidence();
        }
    }
}

}  // namespace nkclass
