// The C interface: versions, errors and the label vocabulary.
#include <cstring>
#include <string>

#include "capi.hpp"
#include "nkclass/classifier.hpp"
#include "nkclass/vocab.hpp"

#ifndef NKCLASS_VERSION
#define NKCLASS_VERSION "0.1.0"
#endif

namespace {

thread_local std::string t_error;
thread_local std::uint64_t t_offset = nkclass::capi::kNoOffset;

constexpr const char* kSideNames[] = {"none", "src", "dst", "both"};
constexpr const char* kConfidenceNames[] = {"none", "low", "medium", "high"};
// In bit order; the same names as nkclass.EVIDENCE.
constexpr const char* kEvidenceNames[NK_EVIDENCE_BITS] = {
    "payload", "sni", "host", "dns", "ip_list", "port", "flow_shape", "pair_cache", "asn",
    "watched", "dns_learned", "dns_score"};
static_assert(NK_EVIDENCE_PAYLOAD == nkclass::kEvPayload && NK_EVIDENCE_WATCHED == nkclass::kEvWatched &&
                  NK_EVIDENCE_DNS_LEARNED == nkclass::kEvDnsLearned &&
                  NK_EVIDENCE_DNS_SCORE == nkclass::kEvDnsScore &&
                  NK_EVIDENCE_ASN == nkclass::kEvAsn && NK_EVIDENCE_PAIR_CACHE == nkclass::kEvPairCache,
              "evidence bits of nkclass.h and classifier.hpp");
static_assert(NK_RULESET_FORMAT_VERSION == nkclass::kRulesetFormatVersion,
              "ruleset format version of nkclass.h and ruleset_file.hpp");
static_assert(NK_SIDE_BOTH == nkclass::kSideBoth && NK_CONFIDENCE_HIGH == nkclass::kConfHigh,
              "side and confidence codes of nkclass.h and classifier.hpp");

template <std::size_t N>
const char* name_at(const char* const (&names)[N], std::uint32_t code) noexcept {
    return code < N ? names[code] : nullptr;
}

template <std::size_t N>
std::int32_t code_of(const char* const (&names)[N], const char* name) noexcept {
    if (name == nullptr) return -1;
    for (std::size_t i = 0; i < N; ++i)
        if (std::strcmp(names[i], name) == 0) return static_cast<std::int32_t>(i);
    return -1;
}

}  // namespace

namespace nkclass::capi {

nk_status fail(nk_status status, std::string message, std::uint64_t offset) noexcept {
    try {
        t_error = std::move(message);
    } catch (...) {
        t_error.clear();  // keep the code; a message that cannot be stored is dropped
    }
    t_offset = offset;
    return status;
}

nk_status fail_ruleset(const RulesetStatus& s) noexcept {
    nk_status code = NK_E_CORRUPT;
    switch (s.error) {
        case RulesetError::kNone: return NK_OK;
        case RulesetError::kTruncated: code = NK_E_TRUNCATED; break;
        case RulesetError::kForeign: code = NK_E_FOREIGN; break;
        case RulesetError::kVersion: code = NK_E_VERSION; break;
        case RulesetError::kCorrupt: code = NK_E_CORRUPT; break;
        case RulesetError::kNoMemory: code = NK_E_NO_MEMORY; break;
    }
    return fail(code, s.message, s.offset);
}

}  // namespace nkclass::capi

extern "C" {

uint32_t nk_abi_version(void) { return NK_ABI_VERSION; }

const char* nk_library_version(void) { return NKCLASS_VERSION; }

const char* nk_status_name(int status) {
    switch (status) {
        case NK_OK: return "NK_OK";
        case NK_E_ARGUMENT: return "NK_E_ARGUMENT";
        case NK_E_IO: return "NK_E_IO";
        case NK_E_FOREIGN: return "NK_E_FOREIGN";
        case NK_E_VERSION: return "NK_E_VERSION";
        case NK_E_TRUNCATED: return "NK_E_TRUNCATED";
        case NK_E_CORRUPT: return "NK_E_CORRUPT";
        case NK_E_UNSUPPORTED: return "NK_E_UNSUPPORTED";
        case NK_E_NO_MEMORY: return "NK_E_NO_MEMORY";
        case NK_E_STATE: return "NK_E_STATE";
        case NK_E_BUFFER: return "NK_E_BUFFER";
    }
    return "NK_E_UNKNOWN";
}

const char* nk_last_error(void) { return t_error.c_str(); }

uint64_t nk_last_error_offset(void) { return t_offset; }

uint32_t nk_app_count(void) { return nkclass::kAppCount; }
const char* nk_app_name(uint32_t code) { return name_at(nkclass::kAppNames, code); }
uint32_t nk_activity_count(void) { return nkclass::kActivityCount; }
const char* nk_activity_name(uint32_t code) { return name_at(nkclass::kActivityNames, code); }
int32_t nk_app_code(const char* name) { return code_of(nkclass::kAppNames, name); }
int32_t nk_activity_code(const char* name) { return code_of(nkclass::kActivityNames, name); }
const char* nk_side_name(uint32_t code) { return name_at(kSideNames, code); }
const char* nk_confidence_name(uint32_t code) { return name_at(kConfidenceNames, code); }
const char* nk_evidence_name(uint32_t bit) { return name_at(kEvidenceNames, bit); }

size_t nk_evidence_text(uint16_t evidence, char* buffer, size_t capacity) {
    std::size_t length = 0;
    for (std::uint32_t bit = 0; bit < NK_EVIDENCE_BITS; ++bit) {
        if ((evidence & (1u << bit)) == 0) continue;
        const char* name = kEvidenceNames[bit];
        const std::size_t add = std::strlen(name) + (length != 0 ? 1 : 0);
        if (buffer != nullptr && capacity != 0) {
            // Copy what fits before the terminating zero.
            const char* text = length != 0 ? "|" : "";
            for (std::size_t k = 0; k < add; ++k) {
                const char c = k < std::strlen(text) ? text[k] : name[k - std::strlen(text)];
                if (length + k + 1 < capacity) buffer[length + k] = c;
            }
        }
        length += add;
    }
    if (buffer != nullptr && capacity != 0) buffer[length < capacity ? length : capacity - 1] = '\0';
    return length;
}

}  // extern "C"
