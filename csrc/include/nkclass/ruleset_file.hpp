// Compiled rulesets: everything a classifier is built from, as rows, and
// the versioned binary file they are stored in (`nkclass rules compile`
// writes it; the C interface and nkclass.load_compiled read it).
//
// File format, version 3 (version 1 had no dated lists, version 2 no DNS
// tunnelling thresholds). Every integer is little-endian; offsets are from
// the start of the file.
//
//   header (32 bytes)
//     0   8  magic       89 4e 4b 43 0d 0a 1a 0a  ("\x89NKC\r\n\x1a\n")
//     8   4  version     kRulesetFormatVersion
//     12  4  flags       bit 0: the AS stage is compiled in; bit 1: dated
//                        lists are; other bits 0
//     16  8  length      of the whole file, checksum included
//     24  4  sections    how many sections follow (18, plus 5 with the AS
//                        stage, plus 4 with dated lists)
//     28  4  zero
//   sections, back to back, in the order of kRulesetSections
//     0   4  tag         four ASCII letters naming the section
//     4   4  item size   bytes per item (fixed per tag)
//     8   8  items       how many items
//     16  .  the items, then zero bytes up to a multiple of 8
//   checksum (4 bytes): CRC-32 (ISO-HDLC, as zlib.crc32) of every byte before it
//
// Item layouts (byte offsets within an item):
//   text list (item size 1): names, each ended by a zero byte; UTF-8
//   ipv4 row (12): network u32 (host value: 1.2.3.0 is 0x01020300),
//                  label u32, length u8 (0..32), three zero bytes
//   ipv6 row (24): network 16 bytes in network order, label u32,
//                  length u8 (0..128), three zero bytes
//   port rule (8): protocol u8, zero u8, first port u16, last port u16, zero u16
//   verdict (12): app u8, activity u8, rank u8 (0..4), zero u8,
//                 evidence u16 (bits of Evidence), zero u16, service u32
//   domain (8): service u32, activity u8, three zero bytes
//   shape (8): min conditions u8 (0..9), three zero bytes, min flows u32
//   DNS tunnelling (40; section DNST, one item, after SHAP): min conditions
//                  u8 (0..6), label bytes u8, two zero bytes, name chars
//                  u32, min queries u64, queries u64, names u32, four zero
//                  bytes, entropy bits f64 (IEEE 754 binary64); ranges as
//                  validate_dns_tunnel() (classifier.hpp)
//   AS entry (12): AS number u32 (0 = none known), organisation u32 (index
//                  into ASOR), verdict u16 (index into ASVD), zero u16
//   dated interval (24): key u32 (0-based: the DTP4 / DTP6 rows labelled
//                  key + 1), verdict u16 (1.. into DTVD), zero u16,
//                  valid from i64, valid until i64 (ms since the epoch,
//                  UTC; from < until); rows in increasing (key, from,
//                  verdict) order, as DatedIntervals merges them
//   u8 / u16 items: plain integers
//
// Dated lists (flag bit 1) are four sections after the AS stage's: DTP4 and
// DTP6 (ipv4 / ipv6 rows whose labels are 1 + a key; as many keys as rows),
// DTVD (their verdicts, entry 0 empty) and DTIV (the intervals).
//
// A reader rejects, with the byte offset where it stopped: a file that is
// not one (kForeign: another magic), another format version or label
// vocabulary (kVersion), a file shorter than its header says (kTruncated),
// and a checksum mismatch, a section out of order, a wrong item size,
// nonzero padding, a code outside its table, dated intervals out of order
// or empty, a DNS tunnelling threshold out of range, or a table that does
// not build (kCorrupt). Any byte string is safe to give: every read is bounds-checked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nkclass/classifier.hpp"
#include "nkclass/port_table.hpp"
#include "nkclass/prefix_table.hpp"

namespace nkclass {

inline constexpr std::uint32_t kRulesetFormatVersion = 3;
inline constexpr std::uint8_t kRulesetMagic[8] = {0x89, 'N', 'K', 'C', '\r', '\n', 0x1a, '\n'};
inline constexpr std::size_t kRulesetHeaderBytes = 32;
inline constexpr std::uint32_t kRulesetFlagAs = 1u;
inline constexpr std::uint32_t kRulesetFlagDated = 2u;

// One validity interval of a dated list's key: [start, end) in ms since the
// epoch, carrying verdict code `verdict`.
struct DatedRow {
    std::uint32_t key;
    std::uint16_t verdict;
    std::int64_t start, end;
};

// Everything a classifier is built from. Codes index the name lists:
// a watched-path row's label is its path code, a network row's label its
// service code, an AS row's label its AS entry id. Entry 0 of each name
// list and verdict table is "none" (the verdicts' entry 0 is empty).
struct RulesetImage {
    std::vector<std::string> meta;           // ruleset name, its version, the writer
    std::vector<std::string> apps;           // the label vocabulary it was compiled for
    std::vector<std::string> activities;
    std::vector<std::string> path_names;     // by path code; [0] = "none"
    std::vector<std::string> service_names;  // by service code; [0] = "none"
    // Watched paths and labelled networks; among rows with the same prefix
    // the later one wins (as layered rulesets override earlier layers).
    std::vector<Ipv4Prefix> path_v4;
    std::vector<Ipv6Prefix> path_v6;
    std::vector<Ipv4Prefix> service_v4;
    std::vector<Ipv6Prefix> service_v6;
    std::vector<PortRule> port_rules;            // rule id = row + 1
    std::vector<Candidate> port_verdicts;        // by rule id
    std::vector<Candidate> service_verdicts;     // by service code
    std::vector<std::uint8_t> path_server_activity;  // by path code
    std::vector<std::uint16_t> precedence;       // by activity code; lower wins
    std::vector<std::string> domain_suffixes;
    std::vector<std::uint32_t> domain_services;  // per suffix
    std::vector<std::uint8_t> domain_activities; // per suffix
    std::uint8_t shape_min_conditions = 7;
    std::uint32_t shape_min_flows = 1;
    DnsTunnelThresholds dns_tunnel;
    // The AS stage (when as_stage): an IP-to-AS table whose labels are
    // entry ids (no two rows with the same prefix), and per entry id its
    // AS number, organisation and verdict.
    bool as_stage = false;
    std::vector<Ipv4Prefix> as_v4;
    std::vector<Ipv6Prefix> as_v6;
    std::vector<std::uint32_t> as_numbers;       // by entry id; [0] = 0
    std::vector<std::uint32_t> as_orgs;          // by entry id, into as_org_names
    std::vector<std::uint16_t> as_entry_verdict; // by entry id, into as_verdicts
    std::vector<std::string> as_org_names;       // [0] = ""
    std::vector<Candidate> as_verdicts;          // [0] empty
    // Dated lists (when dated; see dated_table.hpp): a prefix table whose
    // labels are 1 + a key (one row per key), each key's validity intervals
    // and the verdicts they carry.
    bool dated = false;
    std::vector<Ipv4Prefix> dated_v4;
    std::vector<Ipv6Prefix> dated_v6;
    std::vector<DatedRow> dated_rows;            // ordered by (key, start, verdict)
    std::vector<Candidate> dated_verdicts;       // [0] empty
};

// Why a compiled ruleset was refused.
enum class RulesetError : std::uint8_t {
    kNone = 0,
    kTruncated,  // shorter than the file says
    kForeign,    // not a compiled nkclass ruleset
    kVersion,    // another format version or label vocabulary
    kCorrupt,    // damaged or inconsistent
    kNoMemory,
};

struct RulesetStatus {
    RulesetError error = RulesetError::kNone;
    std::uint64_t offset = 0;  // byte offset the problem was found at
    std::string message;       // what was wrong, for people
    bool ok() const noexcept { return error == RulesetError::kNone; }
};

// The file bytes of `image` (which should build: see CompiledRuleset).
// Throws std::bad_alloc when memory runs out.
std::vector<std::uint8_t> encode_ruleset(const RulesetImage& image);

// Parses and checks the structure of a file (magic, version, length,
// checksum, sections, vocabulary) into `*out`. O(size); any input is safe.
RulesetStatus decode_ruleset(const std::uint8_t* data, std::size_t size,
                             RulesetImage* out) noexcept;

// A loaded ruleset: its rows, the classifier built from them, and the
// AS-number index. Immutable; share it between threads freely.
class CompiledRuleset {
public:
    // Builds the tables and the classifier; any code outside its table, or
    // a table that does not build, is kCorrupt naming the section and row.
    static RulesetStatus build(RulesetImage image, std::shared_ptr<const CompiledRuleset>* out);
    // decode_ruleset() then build().
    static RulesetStatus load(const std::uint8_t* data, std::size_t size,
                              std::shared_ptr<const CompiledRuleset>* out);

    const RulesetImage& image() const noexcept { return image_; }
    const Classifier& classifier() const noexcept { return *classifier_; }
    std::shared_ptr<const Classifier> classifier_ptr() const noexcept { return classifier_; }
    // The AS table (null when the ruleset has no AS rows).
    std::shared_ptr<const PrefixTable> as_table() const noexcept { return as_table_; }
    // The AS entry id for an AS number: the lowest id with that number;
    // 0 for number 0 or a number no entry has. O(log entries).
    std::uint32_t entry_for_number(std::uint32_t asn) const noexcept;

private:
    RulesetImage image_;
    std::shared_ptr<const Classifier> classifier_;
    std::shared_ptr<const PrefixTable> as_table_;
    std::vector<std::uint64_t> by_number_;  // (number << 32 | entry id), sorted
};

// CRC-32 (ISO-HDLC: reflected 0x04c11db7, as zlib.crc32) of n bytes,
// continuing from `crc` (0 to start).
std::uint32_t crc32(const std::uint8_t* p, std::size_t n, std::uint32_t crc = 0) noexcept;

}  // namespace nkclass
