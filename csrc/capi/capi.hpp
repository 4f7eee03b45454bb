// Internals shared by the C interface's files: the handle structs behind
// the opaque types of nkclass.h and the per-thread last error.
#pragma once

#include <cstdint>
#include <memory>
#include <new>
#include <string>

#include "nkclass/flow_meter.hpp"
#include "nkclass/nkclass.h"
#include "nkclass/pair_cache.hpp"
#include "nkclass/ruleset_file.hpp"

struct nk_ruleset {
    std::shared_ptr<const nkclass::CompiledRuleset> compiled;
};

struct nk_classifier {
    std::shared_ptr<const nkclass::CompiledRuleset> compiled;
};

struct nk_pair_cache {
    nk_pair_cache(std::size_t capacity, std::int64_t ttl_ms) : cache(capacity, ttl_ms) {}
    nkclass::PairCache cache;
};

struct nk_meter {
    explicit nk_meter(const nkclass::FlowMeterConfig& cfg) : meter(cfg) {}
    enum class Input : std::uint8_t { kNone, kFile, kPackets };
    nkclass::FlowMeter meter;
    Input input = Input::kNone;
    bool finished = false;
};

namespace nkclass::capi {

inline constexpr std::uint64_t kNoOffset = UINT64_MAX;

// Records the calling thread's last error and returns `status`.
nk_status fail(nk_status status, std::string message, std::uint64_t offset = kNoOffset) noexcept;

// The status for a ruleset refusal, its message and offset recorded.
nk_status fail_ruleset(const RulesetStatus& status) noexcept;

// Runs `body` (returning nk_status), turning an escaping std::bad_alloc or
// other exception into an error: nothing crosses the C boundary.
template <typename Body>
nk_status guarded(const char* function, Body&& body) noexcept {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return fail(NK_E_NO_MEMORY, std::string(function) + ": out of memory");
    } catch (const std::exception& e) {
        return fail(NK_E_ARGUMENT, std::string(function) + ": " + e.what());
    } catch (...) {
        return fail(NK_E_ARGUMENT, std::string(function) + ": unexpected failure");
    }
}

// The classify pass over checked columns whose src_as / dst_as hold AS
// numbers (exporter fields); shared by nk_classify and nk_classify_arrow.
nk_status classify_columns(const nk_classifier* classifier, FlowColumns cols,
                           nk_pair_cache* cache, const nk_labels* out, const char* function);

}  // namespace nkclass::capi
