// Compiled ruleset files (see ruleset_file.hpp for the format).
//
// Every field is read byte by byte in little-endian order (never by casting
// the buffer to a struct), so the reader is independent of the host's byte
// order and alignment, and every read is checked against the bytes left.
#include "nkclass/ruleset_file.hpp"

#include <algorithm>
#include <array>
#include <cstring>
#include <new>
#include <utility>

#include "nkclass/bytes.hpp"
#include "nkclass/dated_table.hpp"
#include "nkclass/detectors.hpp"
#include "nkclass/domains.hpp"
#include "nkclass/flow_shape.hpp"
#include "nkclass/vocab.hpp"

namespace nkclass {

namespace {

// Section tags in file order, with their item sizes. AS4P..ASVD are present
// only with the AS stage (flag bit 0), DTP4..DTIV only with dated lists
// (flag bit 1).
struct SectionSpec {
    char tag[5];
    std::uint32_t item_size;
};
constexpr SectionSpec kSections[] = {
    {"META", 1},  {"APPS", 1},  {"ACTS", 1},  {"PATH", 1},  {"SERV", 1},  {"WAT4", 12},
    {"WAT6", 24}, {"NET4", 12}, {"NET6", 24}, {"PORT", 8},  {"PVRD", 12}, {"SVRD", 12},
    {"WSRV", 1},  {"PREC", 2},  {"DOMN", 1},  {"DOMV", 8},  {"SHAP", 8},  {"DNST", 40},
    {"AS4P", 12}, {"AS6P", 24}, {"ASEN", 12}, {"ASOR", 1},  {"ASVD", 12}, {"DTP4", 12},
    {"DTP6", 24}, {"DTVD", 12}, {"DTIV", 24},
};
constexpr std::uint32_t kBaseSections = 18;
constexpr std::size_t kDnsTunnelSection = 17;
constexpr std::uint32_t kAsSections = 5;
constexpr std::uint32_t kDatedSections = 4;
constexpr std::size_t kFirstAsSection = kBaseSections;
constexpr std::size_t kFirstDatedSection = kBaseSections + kAsSections;
static_assert(sizeof(kSections) / sizeof(kSections[0]) == kBaseSections + kAsSections + kDatedSections,
              "section table");

std::uint32_t section_count(bool as_stage, bool dated) noexcept {
    return kBaseSections + (as_stage ? kAsSections : 0) + (dated ? kDatedSections : 0);
}

using bytes::le16;
using bytes::le32;
using bytes::le64;

std::int64_t le64_signed(const std::uint8_t* p) noexcept {
    return static_cast<std::int64_t>(le64(p));  // two's complement (C++20, and every C++17 target)
}

// ---------------------------------------------------------------- writing

class Writer {
public:
    void u8(std::uint8_t v) { out.push_back(v); }
    void u16(std::uint16_t v) {
        u8(static_cast<std::uint8_t>(v));
        u8(static_cast<std::uint8_t>(v >> 8));
    }
    void u32(std::uint32_t v) {
        u16(static_cast<std::uint16_t>(v));
        u16(static_cast<std::uint16_t>(v >> 16));
    }
    void u64(std::uint64_t v) {
        u32(static_cast<std::uint32_t>(v));
        u32(static_cast<std::uint32_t>(v >> 32));
    }
    void zeros(std::size_t n) { out.insert(out.end(), n, 0); }
    void bytes(const void* p, std::size_t n) {
        const auto* b = static_cast<const std::uint8_t*>(p);
        out.insert(out.end(), b, b + n);
    }

    // Opens section `index`: its header, with the item count.
    void begin(std::size_t index, std::uint64_t items) {
        bytes(kSections[index].tag, 4);
        u32(kSections[index].item_size);
        u64(items);
        section_start = out.size();
    }
    // Pads the items to a multiple of 8.
    void end() { zeros((8 - (out.size() - section_start) % 8) % 8); }

    void texts(std::size_t index, const std::vector<std::string>& names) {
        std::uint64_t total = 0;
        for (const std::string& s : names) total += s.size() + 1;
        begin(index, total);
        for (const std::string& s : names) {
            bytes(s.data(), s.size());
            u8(0);
        }
        end();
    }
    void ipv4_rows(std::size_t index, const std::vector<Ipv4Prefix>& rows) {
        begin(index, rows.size());
        for (const Ipv4Prefix& r : rows) {
            u32(r.network);
            u32(r.label);
            u8(r.length);
            zeros(3);
        }
        end();
    }
    void ipv6_rows(std::size_t index, const std::vector<Ipv6Prefix>& rows) {
        begin(index, rows.size());
        for (const Ipv6Prefix& r : rows) {
            bytes(r.network.bytes, 16);
            u32(r.label);
            u8(r.length);
            zeros(3);
        }
        end();
    }
    void verdicts(std::size_t index, const std::vector<Candidate>& rows) {
        begin(index, rows.size());
        for (const Candidate& c : rows) {
            u8(c.app);
            u8(c.activity);
            u8(c.rank);
            u8(0);
            u16(c.evidence);
            u16(0);
            u32(c.service);
        }
        end();
    }

    std::vector<std::uint8_t> out;
    std::size_t section_start = 0;
};

// ---------------------------------------------------------------- reading

class Reader {
public:
    Reader(const std::uint8_t* data, std::size_t end, RulesetStatus* status)
        : data_(data), end_(end), status_(status) {}

    bool fail(RulesetError error, std::uint64_t offset, std::string message) {
        status_->error = error;
        status_->offset = offset;
        status_->message = std::move(message);
        return false;
    }

    // Reads the header of section `index` at the cursor; sets `items` to its
    // first item and `count` to the number of items, and moves past it.
    bool section(std::size_t index, const std::uint8_t** items, std::size_t* count) {
        const SectionSpec& spec = kSections[index];
        const std::string what = std::string("section ") + spec.tag;
        if (end_ - at_ < 16)
            return fail(RulesetError::kCorrupt, at_, what + ": header runs past the sections");
        if (std::memcmp(data_ + at_, spec.tag, 4) != 0) {
            std::string found;
            for (int k = 0; k < 4; ++k) {
                const std::uint8_t c = data_[at_ + k];
                found += (c >= 0x20 && c < 0x7f) ? static_cast<char>(c) : '?';
            }
            return fail(RulesetError::kCorrupt, at_,
                        what + " expected, found '" + found + "' (sections out of order)");
        }
        const std::uint32_t item_size = le32(data_ + at_ + 4);
        if (item_size != spec.item_size)
            return fail(RulesetError::kCorrupt, at_ + 4,
                        what + ": items of " + std::to_string(item_size) + " bytes, expected " +
                            std::to_string(spec.item_size));
        const std::uint64_t n = le64(data_ + at_ + 8);
        const std::size_t body = at_ + 16;
        if (n > (end_ - body) / spec.item_size)
            return fail(RulesetError::kCorrupt, at_ + 8,
                        what + ": " + std::to_string(n) + " items run past the sections");
        const std::size_t bytes = static_cast<std::size_t>(n) * spec.item_size;
        const std::size_t padded = bytes + (8 - bytes % 8) % 8;
        if (padded > end_ - body)
            return fail(RulesetError::kCorrupt, body + bytes, what + ": padding runs past the sections");
        for (std::size_t k = bytes; k < padded; ++k)
            if (data_[body + k] != 0)
                return fail(RulesetError::kCorrupt, body + k, what + ": nonzero padding");
        *items = data_ + body;
        *count = static_cast<std::size_t>(n);
        offset_ = body;
        at_ = body + padded;
        return true;
    }

    // Checks that the bytes [from, from + n) of an item are zero.
    bool zero(const std::uint8_t* item, std::size_t from, std::size_t n, std::size_t row,
              const char* tag) {
        for (std::size_t k = from; k < from + n; ++k)
            if (item[k] != 0)
                return fail(RulesetError::kCorrupt, std::size_t(item - data_) + k,
                            std::string("section ") + tag + " row " + std::to_string(row) +
                                ": nonzero reserved byte");
        return true;
    }

    bool texts(std::size_t index, std::vector<std::string>* out) {
        const std::uint8_t* p;
        std::size_t n;
        if (!section(index, &p, &n)) return false;
        out->clear();
        if (n == 0) return true;
        if (p[n - 1] != 0)
            return fail(RulesetError::kCorrupt, offset_ + n - 1,
                        std::string("section ") + kSections[index].tag +
                            ": the last name has no terminating zero byte");
        std::size_t start = 0;
        for (std::size_t k = 0; k < n; ++k) {
            if (p[k] != 0) continue;
            if (!valid_utf8(p + start, k - start))
                return fail(RulesetError::kCorrupt, offset_ + start,
                            std::string("section ") + kSections[index].tag + " name " +
                                std::to_string(out->size()) + " is not UTF-8");
            out->emplace_back(reinterpret_cast<const char*>(p + start), k - start);
            start = k + 1;
        }
        return true;
    }

    // Reads section `index` into one T per item: read(item, row, &value)
    // decodes an item (section() checked its size) and returns false when
    // it is bad.
    template <typename T, typename Read>
    bool items(std::size_t index, std::vector<T>* out, Read read) {
        const std::uint8_t* p;
        std::size_t n;
        if (!section(index, &p, &n)) return false;
        out->resize(n);
        const std::size_t stride = kSections[index].item_size;
        for (std::size_t i = 0; i < n; ++i, p += stride)
            if (!read(p, i, &(*out)[i])) return false;
        return true;
    }

    bool ipv4_rows(std::size_t index, std::vector<Ipv4Prefix>* out) {
        return items(index, out, [&](const std::uint8_t* p, std::size_t i, Ipv4Prefix* r) {
            *r = {le32(p), p[8], le32(p + 4)};
            return zero(p, 9, 3, i, kSections[index].tag);
        });
    }

    bool ipv6_rows(std::size_t index, std::vector<Ipv6Prefix>* out) {
        return items(index, out, [&](const std::uint8_t* p, std::size_t i, Ipv6Prefix* r) {
            std::memcpy(r->network.bytes, p, 16);
            r->label = le32(p + 16);
            r->length = p[20];
            return zero(p, 21, 3, i, kSections[index].tag);
        });
    }

    bool verdicts(std::size_t index, std::vector<Candidate>* out) {
        return items(index, out, [&](const std::uint8_t* p, std::size_t i, Candidate* c) {
            c->app = p[0];
            c->activity = p[1];
            c->rank = p[2];
            c->evidence = le16(p + 4);
            c->service = le32(p + 8);
            return zero(p, 3, 1, i, kSections[index].tag) && zero(p, 6, 2, i, kSections[index].tag);
        });
    }

    // Plain u8 / u16 items.
    template <typename T>
    bool integers(std::size_t index, std::vector<T>* out) {
        return items(index, out, [](const std::uint8_t* p, std::size_t, T* v) {
            *v = sizeof(T) == 1 ? T(p[0]) : T(le16(p));
            return true;
        });
    }

    bool port_rules(std::size_t index, std::vector<PortRule>* out) {
        return items(index, out, [&](const std::uint8_t* p, std::size_t i, PortRule* r) {
            *r = {p[0], le16(p + 2), le16(p + 4)};
            return zero(p, 1, 1, i, "PORT") && zero(p, 6, 2, i, "PORT");
        });
    }

    // The dated-list sections: prefixes, verdicts, then the intervals, each
    // checked against them (key and verdict in range, a nonempty interval,
    // rows in strictly increasing (key, start, verdict) order).
    bool dated(RulesetImage* im) {
        const std::size_t first = kFirstDatedSection;
        if (!ipv4_rows(first, &im->dated_v4) || !ipv6_rows(first + 1, &im->dated_v6) ||
            !verdicts(first + 2, &im->dated_verdicts))
            return false;
        const std::uint64_t keys = im->dated_v4.size() + im->dated_v6.size();
        const std::size_t verdict_count = im->dated_verdicts.size();
        const std::uint8_t* p;
        std::size_t n;
        if (!section(first + 3, &p, &n)) return false;
        im->dated_rows.resize(n);
        for (std::size_t i = 0; i < n; ++i, p += 24) {
            DatedRow& row = im->dated_rows[i];
            row = {le32(p), le16(p + 4), le64_signed(p + 8), le64_signed(p + 16)};
            const std::size_t at = std::size_t(p - data_);
            const std::string where = "section DTIV row " + std::to_string(i) + ": ";
            if (!zero(p, 6, 2, i, "DTIV")) return false;
            if (row.key >= keys)
                return fail(RulesetError::kCorrupt, at,
                            where + "key " + std::to_string(row.key) + " outside the " +
                                std::to_string(keys) + " dated prefixes");
            if (row.verdict == 0 || row.verdict >= verdict_count)
                return fail(RulesetError::kCorrupt, at + 4,
                            where + "verdict " + std::to_string(row.verdict) + " outside 1.." +
                                std::to_string(verdict_count == 0 ? 0 : verdict_count - 1));
            if (!(row.start < row.end))
                return fail(RulesetError::kCorrupt, at + 8,
                            where + "empty validity interval [" + std::to_string(row.start) +
                                ", " + std::to_string(row.end) + ")");
            if (i > 0) {
                const DatedRow& prev = im->dated_rows[i - 1];
                const bool increasing =
                    prev.key != row.key ? prev.key < row.key
                    : prev.start != row.start ? prev.start < row.start
                                              : prev.verdict < row.verdict;
                if (!increasing)
                    return fail(RulesetError::kCorrupt, at,
                                where + "out of order (rows go by key, then start, then verdict)");
            }
        }
        return true;
    }

    std::size_t at() const noexcept { return at_; }
    void seek(std::size_t at) noexcept { at_ = at; }
    std::size_t section_offset() const noexcept { return offset_; }

private:
    static bool valid_utf8(const std::uint8_t* s, std::size_t n) noexcept {
        std::size_t i = 0;
        while (i < n) {
            const std::uint8_t c = s[i];
            std::size_t more;
            std::uint32_t cp;
            if (c < 0x80) {
                ++i;
                continue;
            } else if ((c & 0xe0) == 0xc0) {
                more = 1, cp = c & 0x1f;
            } else if ((c & 0xf0) == 0xe0) {
                more = 2, cp = c & 0x0f;
            } else if ((c & 0xf8) == 0xf0) {
                more = 3, cp = c & 0x07;
            } else {
                return false;
            }
            if (n - i - 1 < more) return false;
            for (std::size_t k = 1; k <= more; ++k) {
                if ((s[i + k] & 0xc0) != 0x80) return false;
                cp = (cp << 6) | (s[i + k] & 0x3f);
            }
            static constexpr std::uint32_t kLeast[] = {0, 0x80, 0x800, 0x10000};
            if (cp < kLeast[more] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
            i += more + 1;
        }
        return true;
    }

    const std::uint8_t* data_;
    std::size_t end_;
    RulesetStatus* status_;
    std::size_t at_ = kRulesetHeaderBytes;
    std::size_t offset_ = 0;
};

RulesetStatus failure(RulesetError error, std::uint64_t offset, std::string message) {
    RulesetStatus s;
    s.error = error;
    s.offset = offset;
    s.message = std::move(message);
    return s;
}

template <std::size_t N>
bool same_names(const std::vector<std::string>& names, const char* const (&expected)[N]) {
    if (names.size() != N) return false;
    for (std::size_t i = 0; i < N; ++i)
        if (names[i] != expected[i]) return false;
    return true;
}

}  // namespace

// ------------------------------------------------------------------ CRC-32

std::uint32_t crc32(const std::uint8_t* p, std::size_t n, std::uint32_t crc) noexcept {
    static const std::array<std::uint32_t, 256> table = [] {
        std::array<std::uint32_t, 256> t{};
        for (std::uint32_t i = 0; i < 256; ++i) {
            std::uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    for (std::size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

// ---------------------------------------------------------------- encoding

std::vector<std::uint8_t> encode_ruleset(const RulesetImage& im) {
    Writer w;
    w.bytes(kRulesetMagic, 8);
    w.u32(kRulesetFormatVersion);
    w.u32((im.as_stage ? kRulesetFlagAs : 0) | (im.dated ? kRulesetFlagDated : 0));
    w.u64(0);  // the length, set below
    w.u32(section_count(im.as_stage, im.dated));
    w.u32(0);

    w.texts(0, im.meta);
    w.texts(1, im.apps);
    w.texts(2, im.activities);
    w.texts(3, im.path_names);
    w.texts(4, im.service_names);
    w.ipv4_rows(5, im.path_v4);
    w.ipv6_rows(6, im.path_v6);
    w.ipv4_rows(7, im.service_v4);
    w.ipv6_rows(8, im.service_v6);
    w.begin(9, im.port_rules.size());
    for (const PortRule& r : im.port_rules) {
        w.u8(r.protocol);
        w.u8(0);
        w.u16(r.first_port);
        w.u16(r.last_port);
        w.u16(0);
    }
    w.end();
    w.verdicts(10, im.port_verdicts);
    w.verdicts(11, im.service_verdicts);
    w.begin(12, im.path_server_activity.size());
    w.bytes(im.path_server_activity.data(), im.path_server_activity.size());
    w.end();
    w.begin(13, im.precedence.size());
    for (std::uint16_t v : im.precedence) w.u16(v);
    w.end();
    w.texts(14, im.domain_suffixes);
    const std::size_t domains = std::min(im.domain_services.size(), im.domain_activities.size());
    w.begin(15, domains);
    for (std::size_t i = 0; i < domains; ++i) {
        w.u32(im.domain_services[i]);
        w.u8(im.domain_activities[i]);
        w.zeros(3);
    }
    w.end();
    w.begin(16, 1);
    w.u8(im.shape_min_conditions);
    w.zeros(3);
    w.u32(im.shape_min_flows);
    w.end();
    const DnsTunnelThresholds& dns = im.dns_tunnel;
    w.begin(kDnsTunnelSection, 1);
    w.u8(dns.min_conditions);
    w.u8(dns.label_bytes);
    w.zeros(2);
    w.u32(dns.name_chars);
    w.u64(dns.min_queries);
    w.u64(dns.queries);
    w.u32(dns.names);
    w.zeros(4);
    std::uint64_t entropy_bits;
    std::memcpy(&entropy_bits, &dns.entropy_bits, 8);
    w.u64(entropy_bits);
    w.end();
    if (im.as_stage) {
        const std::size_t first = kFirstAsSection;
        w.ipv4_rows(first, im.as_v4);
        w.ipv6_rows(first + 1, im.as_v6);
        const std::size_t entries = im.as_numbers.size();
        w.begin(first + 2, entries);
        for (std::size_t i = 0; i < entries; ++i) {
            w.u32(im.as_numbers[i]);
            w.u32(i < im.as_orgs.size() ? im.as_orgs[i] : 0);
            w.u16(i < im.as_entry_verdict.size() ? im.as_entry_verdict[i] : 0);
            w.u16(0);
        }
        w.end();
        w.texts(first + 3, im.as_org_names);
        w.verdicts(first + 4, im.as_verdicts);
    }
    if (im.dated) {
        w.ipv4_rows(kFirstDatedSection, im.dated_v4);
        w.ipv6_rows(kFirstDatedSection + 1, im.dated_v6);
        w.verdicts(kFirstDatedSection + 2, im.dated_verdicts);
        w.begin(kFirstDatedSection + 3, im.dated_rows.size());
        for (const DatedRow& r : im.dated_rows) {
            w.u32(r.key);
            w.u16(r.verdict);
            w.u16(0);
            w.u64(static_cast<std::uint64_t>(r.start));
            w.u64(static_cast<std::uint64_t>(r.end));
        }
        w.end();
    }
    const std::uint64_t length = w.out.size() + 4;
    for (int k = 0; k < 8; ++k) w.out[16 + k] = static_cast<std::uint8_t>(length >> (8 * k));
    w.u32(crc32(w.out.data(), w.out.size()));
    return std::move(w.out);
}

// ---------------------------------------------------------------- decoding

RulesetStatus decode_ruleset(const std::uint8_t* data, std::size_t size,
                             RulesetImage* out) noexcept {
    try {
        if (size == 0 || (data == nullptr && size != 0))
            return failure(RulesetError::kTruncated, 0, "the file is empty");
        const std::size_t magic = std::min<std::size_t>(size, 8);
        if (std::memcmp(data, kRulesetMagic, magic) != 0)
            return failure(RulesetError::kForeign, 0,
                           "not a compiled nkclass ruleset (its first bytes are not the "
                           "\\x89NKC\\r\\n\\x1a\\n magic)");
        if (size < kRulesetHeaderBytes + 4)
            return failure(RulesetError::kTruncated, size,
                           "truncated: " + std::to_string(size) + " bytes, shorter than the " +
                               std::to_string(kRulesetHeaderBytes + 4) +
                               "-byte header and checksum");
        const std::uint32_t version = le32(data + 8);
        if (version != kRulesetFormatVersion)
            return failure(RulesetError::kVersion, 8,
                           "format version " + std::to_string(version) + ", this library reads " +
                               std::to_string(kRulesetFormatVersion) +
                               " (compile the ruleset again with this version)");
        const std::uint64_t length = le64(data + 16);
        if (length > size)
            return failure(RulesetError::kTruncated, size,
                           "truncated: " + std::to_string(size) + " of " + std::to_string(length) +
                               " bytes");
        if (length < size)
            return failure(RulesetError::kCorrupt, length,
                           std::to_string(size - length) + " bytes after the end the header gives (" +
                               std::to_string(length) + ")");
        const std::size_t body = size - 4;
        if (crc32(data, body) != le32(data + body))
            return failure(RulesetError::kCorrupt, body,
                           "checksum mismatch: the file is damaged");
        const std::uint32_t flags = le32(data + 12);
        if ((flags & ~(kRulesetFlagAs | kRulesetFlagDated)) != 0)
            return failure(RulesetError::kCorrupt, 12, "unknown flag bits set");
        const bool as_stage = (flags & kRulesetFlagAs) != 0;
        const bool dated = (flags & kRulesetFlagDated) != 0;
        const std::uint32_t sections = le32(data + 24);
        const std::uint32_t expected = section_count(as_stage, dated);
        if (sections != expected)
            return failure(RulesetError::kCorrupt, 24,
                           std::to_string(sections) + " sections, expected " +
                               std::to_string(expected));
        if (le32(data + 28) != 0) return failure(RulesetError::kCorrupt, 28, "nonzero reserved field");

        RulesetStatus status;
        Reader r(data, body, &status);
        RulesetImage& im = *out;
        im = RulesetImage{};
        im.as_stage = as_stage;
        im.dated = dated;
        if (!r.texts(0, &im.meta) || !r.texts(1, &im.apps) || !r.texts(2, &im.activities))
            return status;
        if (!same_names(im.apps, kAppNames) || !same_names(im.activities, kActivityNames))
            return failure(RulesetError::kVersion, kRulesetHeaderBytes,
                           "compiled for another label vocabulary (" +
                               std::to_string(im.apps.size()) + " apps, " +
                               std::to_string(im.activities.size()) +
                               " activities); compile the ruleset again with this version");
        if (!r.texts(3, &im.path_names) || !r.texts(4, &im.service_names) ||
            !r.ipv4_rows(5, &im.path_v4) || !r.ipv6_rows(6, &im.path_v6) ||
            !r.ipv4_rows(7, &im.service_v4) || !r.ipv6_rows(8, &im.service_v6))
            return status;
        if (!r.port_rules(9, &im.port_rules) || !r.verdicts(10, &im.port_verdicts) ||
            !r.verdicts(11, &im.service_verdicts) || !r.integers(12, &im.path_server_activity) ||
            !r.integers(13, &im.precedence) || !r.texts(14, &im.domain_suffixes))
            return status;
        const std::uint8_t* p;
        std::size_t n;
        if (!r.section(15, &p, &n)) return status;
        im.domain_services.resize(n);
        im.domain_activities.resize(n);
        for (std::size_t i = 0; i < n; ++i, p += 8) {
            im.domain_services[i] = le32(p);
            im.domain_activities[i] = p[4];
            if (!r.zero(p, 5, 3, i, "DOMV")) return status;
        }
        if (!r.section(16, &p, &n)) return status;
        if (n != 1) return failure(RulesetError::kCorrupt, r.section_offset(), "section SHAP must hold one item");
        im.shape_min_conditions = p[0];
        im.shape_min_flows = le32(p + 4);
        if (!r.zero(p, 1, 3, 0, "SHAP")) return status;
        if (!r.section(kDnsTunnelSection, &p, &n)) return status;
        if (n != 1)
            return failure(RulesetError::kCorrupt, r.section_offset(),
                           "section DNST must hold one item");
        DnsTunnelThresholds& dns = im.dns_tunnel;
        dns.min_conditions = p[0];
        dns.label_bytes = p[1];
        dns.name_chars = le32(p + 4);
        dns.min_queries = le64(p + 8);
        dns.queries = le64(p + 16);
        dns.names = le32(p + 24);
        const std::uint64_t entropy_bits = le64(p + 32);
        std::memcpy(&dns.entropy_bits, &entropy_bits, 8);
        if (!r.zero(p, 2, 2, 0, "DNST") || !r.zero(p, 28, 4, 0, "DNST")) return status;
        if (const char* why = validate_dns_tunnel(dns))
            return failure(RulesetError::kCorrupt, r.section_offset(),
                           std::string("section DNST: ") + why);
        if (as_stage) {
            const std::size_t first = kFirstAsSection;
            if (!r.ipv4_rows(first, &im.as_v4) || !r.ipv6_rows(first + 1, &im.as_v6))
                return status;
            if (!r.section(first + 2, &p, &n)) return status;
            im.as_numbers.resize(n);
            im.as_orgs.resize(n);
            im.as_entry_verdict.resize(n);
            for (std::size_t i = 0; i < n; ++i, p += 12) {
                im.as_numbers[i] = le32(p);
                im.as_orgs[i] = le32(p + 4);
                im.as_entry_verdict[i] = le16(p + 8);
                if (!r.zero(p, 10, 2, i, "ASEN")) return status;
            }
            if (!r.texts(first + 3, &im.as_org_names) || !r.verdicts(first + 4, &im.as_verdicts))
                return status;
        }
        if (dated && !r.dated(&im)) return status;
        if (r.at() != body)
            return failure(RulesetError::kCorrupt, r.at(),
                           std::to_string(body - r.at()) + " unexpected bytes after the sections");
        return status;
    } catch (const std::bad_alloc&) {
        return failure(RulesetError::kNoMemory, 0, "out of memory while reading the ruleset");
    }
}

// ---------------------------------------------------------------- building

namespace {

// Checks of codes against their tables, naming the section and row.
class Checker {
public:
    explicit Checker(RulesetStatus* status) : status_(status) {}

    bool fail(const char* tag, std::size_t row, const std::string& why) {
        status_->error = RulesetError::kCorrupt;
        status_->message = std::string("section ") + tag + " row " + std::to_string(row) + ": " + why;
        return false;
    }
    bool fail(const char* tag, const std::string& why) {
        status_->error = RulesetError::kCorrupt;
        status_->message = std::string("section ") + tag + ": " + why;
        return false;
    }

    bool count(const char* tag, std::size_t got, std::size_t want, const char* what) {
        if (got == want) return true;
        return fail(tag, std::to_string(got) + " items, expected " + std::to_string(want) + " (" +
                             what + ")");
    }

    bool verdicts(const char* tag, const std::vector<Candidate>& v, std::size_t services) {
        for (std::size_t i = 0; i < v.size(); ++i) {
            const Candidate& c = v[i];
            if (c.app >= kAppCount) return fail(tag, i, "app code " + std::to_string(c.app) + " outside the vocabulary");
            if (c.activity >= kActivityCount)
                return fail(tag, i, "activity code " + std::to_string(c.activity) + " outside the vocabulary");
            if (c.rank > kRankPayload) return fail(tag, i, "rank " + std::to_string(c.rank) + " above 4");
            if (c.evidence >= (1u << 10)) return fail(tag, i, "unknown evidence bits");
            if (c.service >= services)
                return fail(tag, i, "service code " + std::to_string(c.service) + " outside the " +
                                        std::to_string(services) + " services");
        }
        if (!v.empty()) {
            const Candidate& c = v[0];
            if (c.app || c.activity || c.rank || c.evidence || c.service)
                return fail(tag, 0, "entry 0 must be empty");
        }
        return true;
    }

    template <typename Row>
    bool labels(const char* tag, const std::vector<Row>& rows, std::size_t names) {
        for (std::size_t i = 0; i < rows.size(); ++i)
            if (rows[i].label == 0 || rows[i].label >= names)
                return fail(tag, i, "label " + std::to_string(rows[i].label) + " outside 1.." +
                                        std::to_string(names == 0 ? 0 : names - 1));
        return true;
    }

    bool table(const char* tag4, const char* tag6, std::size_t n4, const BuildStatus& s) {
        if (s.ok) return true;
        return s.index < n4 ? fail(tag4, s.index, s.reason) : fail(tag6, s.index - n4, s.reason);
    }

private:
    RulesetStatus* status_;
};

}  // namespace

RulesetStatus CompiledRuleset::build(RulesetImage image,
                                     std::shared_ptr<const CompiledRuleset>* out) {
    RulesetStatus status;
    try {
        Checker check(&status);
        const RulesetImage& im = image;
        const std::size_t n_paths = im.path_names.size();
        const std::size_t n_services = im.service_names.size();
        if (n_paths == 0 || n_paths > 65536) {
            check.fail("PATH", std::to_string(n_paths) + " paths, expected 1..65536");
            return status;
        }
        if (n_services == 0 || n_services > kMaxLabel) {
            check.fail("SERV", std::to_string(n_services) + " services, expected at least 1");
            return status;
        }
        if (!check.labels("WAT4", im.path_v4, n_paths) || !check.labels("WAT6", im.path_v6, n_paths) ||
            !check.labels("NET4", im.service_v4, n_services) ||
            !check.labels("NET6", im.service_v6, n_services) ||
            !check.count("PVRD", im.port_verdicts.size(), im.port_rules.size() + 1,
                         "one per port rule, plus entry 0") ||
            !check.count("SVRD", im.service_verdicts.size(), n_services, "one per service") ||
            !check.count("WSRV", im.path_server_activity.size(), n_paths, "one per path") ||
            !check.count("PREC", im.precedence.size(), kActivityCount, "one per activity") ||
            !check.count("DOMV", im.domain_services.size(), im.domain_suffixes.size(),
                         "one per domain suffix") ||
            !check.verdicts("PVRD", im.port_verdicts, n_services) ||
            !check.verdicts("SVRD", im.service_verdicts, n_services))
            return status;
        for (std::size_t i = 0; i < n_paths; ++i)
            if (im.path_server_activity[i] >= kActivityCount) {
                check.fail("WSRV", i, "activity code outside the vocabulary");
                return status;
            }
        for (std::size_t i = 0; i < im.domain_services.size(); ++i)
            if (im.domain_services[i] >= n_services) {
                check.fail("DOMV", i, "service code outside the services");
                return status;
            }
        if (im.shape_min_conditions > kShapeConditions) {
            check.fail("SHAP", 0, "flow shape needs 0..9 conditions");
            return status;
        }

        auto paths = std::make_shared<PrefixTable>();
        if (!check.table("WAT4", "WAT6", im.path_v4.size(),
                         paths->build(im.path_v4.data(), im.path_v4.size(), im.path_v6.data(),
                                      im.path_v6.size(), Duplicates::kLastWins)))
            return status;
        auto services = std::make_shared<PrefixTable>();
        if (!check.table("NET4", "NET6", im.service_v4.size(),
                         services->build(im.service_v4.data(), im.service_v4.size(),
                                         im.service_v6.data(), im.service_v6.size(),
                                         Duplicates::kLastWins)))
            return status;
        auto ports = std::make_shared<PortTable>();
        if (BuildStatus s = ports->build(im.port_rules.data(), im.port_rules.size(), Duplicates::kError);
            !s.ok) {
            check.fail("PORT", s.index, s.reason);
            return status;
        }
        auto domains = std::make_shared<DomainTable>();
        if (BuildStatus s = domains->build(im.domain_suffixes, im.domain_services.data(),
                                           im.domain_activities.data());
            !s.ok) {
            check.fail("DOMN", s.index, s.reason);
            return status;
        }

        ClassifierSpec spec;
        spec.paths = paths;
        spec.services = services;
        spec.ports = ports;
        spec.port_verdicts = im.port_verdicts;
        spec.service_verdicts = im.service_verdicts;
        spec.path_server_activity = im.path_server_activity;
        spec.precedence = im.precedence;
        spec.payload = std::make_shared<DetectorInspector>(domains);
        spec.shape_min_conditions = im.shape_min_conditions;
        spec.shape_min_flows = im.shape_min_flows;
        spec.dns_tunnel = im.dns_tunnel;

        auto result = std::shared_ptr<CompiledRuleset>(new CompiledRuleset());
        if (im.as_stage) {
            const std::size_t entries = im.as_numbers.size();
            if (entries == 0 || entries > kMaxLabel) {
                check.fail("ASEN", "expected 1..2**31-1 entries (entry 0 included)");
                return status;
            }
            if (im.as_numbers[0] != 0 || im.as_entry_verdict[0] != 0) {
                check.fail("ASEN", 0, "entry 0 must have no number and no verdict");
                return status;
            }
            if (im.as_verdicts.empty()) {
                check.fail("ASVD", "the AS verdicts need their entry 0");
                return status;
            }
            if (!check.verdicts("ASVD", im.as_verdicts, n_services) ||
                !check.labels("AS4P", im.as_v4, entries) || !check.labels("AS6P", im.as_v6, entries))
                return status;
            for (std::size_t i = 0; i < entries; ++i) {
                if (im.as_orgs[i] >= im.as_org_names.size()) {
                    check.fail("ASEN", i, "organisation outside the names of ASOR");
                    return status;
                }
                if (im.as_entry_verdict[i] >= im.as_verdicts.size()) {
                    check.fail("ASEN", i, "verdict outside the AS verdicts");
                    return status;
                }
            }
            if (!im.as_v4.empty() || !im.as_v6.empty()) {
                auto table = std::make_shared<PrefixTable>();
                if (!check.table("AS4P", "AS6P", im.as_v4.size(),
                                 table->build(im.as_v4.data(), im.as_v4.size(), im.as_v6.data(),
                                              im.as_v6.size(), Duplicates::kError)))
                    return status;
                result->as_table_ = table;
            }
            spec.as_table = result->as_table_;
            spec.as_entry_verdict = im.as_entry_verdict;
            spec.as_verdicts = im.as_verdicts;
            result->by_number_.reserve(entries);
            for (std::size_t i = 1; i < entries; ++i)
                if (im.as_numbers[i] != 0)
                    result->by_number_.push_back((std::uint64_t(im.as_numbers[i]) << 32) | i);
            std::sort(result->by_number_.begin(), result->by_number_.end());
        }
        if (im.dated) {
            const std::size_t keys = im.dated_v4.size() + im.dated_v6.size();
            if (im.dated_verdicts.empty()) {
                check.fail("DTVD", "the dated verdicts need their entry 0");
                return status;
            }
            if (!check.verdicts("DTVD", im.dated_verdicts, n_services) ||
                !check.labels("DTP4", im.dated_v4, keys + 1) ||
                !check.labels("DTP6", im.dated_v6, keys + 1))
                return status;
            auto table = std::make_shared<PrefixTable>();
            if (!check.table("DTP4", "DTP6", im.dated_v4.size(),
                             table->build(im.dated_v4.data(), im.dated_v4.size(),
                                          im.dated_v6.data(), im.dated_v6.size(),
                                          Duplicates::kLastWins)))
                return status;
            const std::size_t n = im.dated_rows.size();
            std::vector<std::uint32_t> key(n);
            std::vector<std::int64_t> start(n), end(n);
            std::vector<std::uint16_t> verdict(n);
            for (std::size_t i = 0; i < n; ++i) {
                const DatedRow& r = im.dated_rows[i];
                key[i] = r.key, start[i] = r.start, end[i] = r.end, verdict[i] = r.verdict;
            }
            auto intervals = std::make_shared<DatedIntervals>();
            if (BuildStatus s = intervals->build(key.data(), start.data(), end.data(),
                                                 verdict.data(), n, keys);
                !s.ok) {
                check.fail("DTIV", s.index, s.reason);
                return status;
            }
            spec.dated_prefixes = table;
            spec.dated = intervals;
            spec.dated_verdicts = im.dated_verdicts;
        }
        if (BuildStatus s = Classifier::validate(spec); !s.ok) {
            status.error = RulesetError::kCorrupt;
            status.message = s.reason;
            return status;
        }
        result->classifier_ = std::make_shared<Classifier>(std::move(spec));
        result->image_ = std::move(image);
        *out = std::move(result);
        return status;
    } catch (const std::bad_alloc&) {
        return failure(RulesetError::kNoMemory, 0, "out of memory while building the ruleset");
    }
}

RulesetStatus CompiledRuleset::load(const std::uint8_t* data, std::size_t size,
                                    std::shared_ptr<const CompiledRuleset>* out) {
    RulesetImage image;
    RulesetStatus status = decode_ruleset(data, size, &image);
    if (!status.ok()) return status;
    return build(std::move(image), out);
}

std::uint32_t CompiledRuleset::entry_for_number(std::uint32_t asn) const noexcept {
    if (asn == 0) return 0;
    const std::uint64_t key = std::uint64_t(asn) << 32;
    const auto it = std::lower_bound(by_number_.begin(), by_number_.end(), key);
    if (it == by_number_.end() || (*it >> 32) != asn) return 0;
    return static_cast<std::uint32_t>(*it);
}

}  // namespace nkclass
