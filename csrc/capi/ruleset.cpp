// The C interface: compiled rulesets, classifiers and pair caches.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "capi.hpp"

using nkclass::capi::fail;
using nkclass::capi::guarded;

namespace {

const char* name_in(const std::vector<std::string>& names, std::uint32_t code) noexcept {
    return code < names.size() ? names[code].c_str() : nullptr;
}

nk_status load(const std::uint8_t* data, std::size_t size, nk_ruleset** out) {
    std::shared_ptr<const nkclass::CompiledRuleset> compiled;
    const nkclass::RulesetStatus status = nkclass::CompiledRuleset::load(data, size, &compiled);
    if (!status.ok()) return nkclass::capi::fail_ruleset(status);
    *out = new nk_ruleset{std::move(compiled)};
    return NK_OK;
}

// Whether the bytes read so far decide the load: another magic (a foreign
// file: /dev/zero or a large file is not read whole), or more bytes than
// the header's length (the loader then reports the mismatch).
bool enough(const std::vector<std::uint8_t>& data) noexcept {
    const std::size_t magic = sizeof nkclass::kRulesetMagic;
    if (data.size() < magic) return false;
    if (std::memcmp(data.data(), nkclass::kRulesetMagic, magic) != 0) return true;
    if (data.size() < 24) return false;
    std::uint64_t length = 0;
    for (int k = 7; k >= 0; --k) length = length << 8 | data[16 + k];  // little-endian
    return data.size() > length;
}

}  // namespace

extern "C" {

nk_status nk_ruleset_load_bytes(const void* data, size_t size, nk_ruleset** out) {
    if (out == nullptr) return fail(NK_E_ARGUMENT, "nk_ruleset_load_bytes: out is NULL");
    *out = nullptr;
    if (data == nullptr && size != 0)
        return fail(NK_E_ARGUMENT, "nk_ruleset_load_bytes: data is NULL");
    return guarded("nk_ruleset_load_bytes", [&] {
        return load(static_cast<const std::uint8_t*>(data), size, out);
    });
}

nk_status nk_ruleset_load(const char* path, nk_ruleset** out) {
    if (out == nullptr) return fail(NK_E_ARGUMENT, "nk_ruleset_load: out is NULL");
    *out = nullptr;
    if (path == nullptr) return fail(NK_E_ARGUMENT, "nk_ruleset_load: path is NULL");
    return guarded("nk_ruleset_load", [&] {
        std::FILE* f = std::fopen(path, "rb");
        if (f == nullptr)
            return fail(NK_E_IO, std::string(path) + ": cannot open: " + std::strerror(errno));
        std::vector<std::uint8_t> data;
        std::uint8_t chunk[1 << 16];
        std::size_t got;
        while (!enough(data) && (got = std::fread(chunk, 1, sizeof chunk, f)) != 0)
            data.insert(data.end(), chunk, chunk + got);
        const bool failed = std::ferror(f) != 0;
        const int read_errno = errno;
        std::fclose(f);
        if (failed)
            return fail(NK_E_IO, std::string(path) + ": cannot read: " + std::strerror(read_errno));
        const nk_status status = load(data.data(), data.size(), out);
        if (status != NK_OK)  // name the file in front of the reason
            return fail(status, std::string(path) + ": " + nk_last_error(), nk_last_error_offset());
        return status;
    });
}

void nk_ruleset_free(nk_ruleset* rules) { delete rules; }

const char* nk_ruleset_name(const nk_ruleset* rules) {
    return rules ? name_in(rules->compiled->image().meta, 0) : nullptr;
}
const char* nk_ruleset_version(const nk_ruleset* rules) {
    return rules ? name_in(rules->compiled->image().meta, 1) : nullptr;
}
uint32_t nk_ruleset_path_count(const nk_ruleset* rules) {
    return rules ? static_cast<uint32_t>(rules->compiled->image().path_names.size()) : 0;
}
const char* nk_ruleset_path_name(const nk_ruleset* rules, uint32_t code) {
    return rules ? name_in(rules->compiled->image().path_names, code) : nullptr;
}
uint32_t nk_ruleset_service_count(const nk_ruleset* rules) {
    return rules ? static_cast<uint32_t>(rules->compiled->image().service_names.size()) : 0;
}
const char* nk_ruleset_service_name(const nk_ruleset* rules, uint32_t code) {
    return rules ? name_in(rules->compiled->image().service_names, code) : nullptr;
}
int nk_ruleset_has_as_stage(const nk_ruleset* rules) {
    return rules && rules->compiled->image().as_stage ? 1 : 0;
}
uint32_t nk_ruleset_org_count(const nk_ruleset* rules) {
    return rules ? static_cast<uint32_t>(rules->compiled->image().as_org_names.size()) : 0;
}
const char* nk_ruleset_org_name(const nk_ruleset* rules, uint32_t code) {
    return rules ? name_in(rules->compiled->image().as_org_names, code) : nullptr;
}

nk_status nk_classifier_new(const nk_ruleset* rules, nk_classifier** out) {
    if (out == nullptr) return fail(NK_E_ARGUMENT, "nk_classifier_new: out is NULL");
    *out = nullptr;
    if (rules == nullptr) return fail(NK_E_ARGUMENT, "nk_classifier_new: rules is NULL");
    return guarded("nk_classifier_new", [&] {
        *out = new nk_classifier{rules->compiled};
        return NK_OK;
    });
}

void nk_classifier_free(nk_classifier* classifier) { delete classifier; }

nk_status nk_pair_cache_new(size_t capacity, int64_t ttl_ms, nk_pair_cache** out) {
    if (out == nullptr) return fail(NK_E_ARGUMENT, "nk_pair_cache_new: out is NULL");
    *out = nullptr;
    if (capacity < 1)
        return fail(NK_E_ARGUMENT, "nk_pair_cache_new: capacity must be at least 1, got 0");
    if (ttl_ms < 0)
        return fail(NK_E_ARGUMENT, "nk_pair_cache_new: ttl_ms must be at least 0, got " +
                                       std::to_string(ttl_ms));
    return guarded("nk_pair_cache_new", [&] {
        *out = new nk_pair_cache(capacity, ttl_ms);
        return NK_OK;
    });
}

void nk_pair_cache_free(nk_pair_cache* cache) { delete cache; }

size_t nk_pair_cache_size(const nk_pair_cache* cache) { return cache ? cache->cache.size() : 0; }

}  // extern "C"
