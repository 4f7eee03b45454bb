/* Every entry point of nkclass.h against malformed calls: NULL handles and
 * pointers, bad lengths and sizes, damaged rulesets and captures, calls out
 * of order. Each must return its error code with a message naming what was
 * wrong (and never crash: run under ASan/UBSan in CI); nothing is written
 * on failure.
 *
 *   test_capi RULES.nkc RULES_WATCHED.nkc RULES_DATED.nkc CAPTURE.pcap */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

static unsigned char* read_file(const char* path, size_t* size) {
    FILE* fp = fopen(path, "rb");
    if (fp == NULL) {
        perror(path);
        exit(2);
    }
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    unsigned char* data = malloc(n > 0 ? (size_t)n : 1);
    if (data == NULL || fread(data, 1, (size_t)n, fp) != (size_t)n) {
        fprintf(stderr, "%s: cannot read\n", path);
        exit(2);
    }
    fclose(fp);
    *size = (size_t)n;
    return data;
}

static void vocabulary(void) {
    CHECK(nk_abi_version() >> 16 == NK_ABI_VERSION_MAJOR);
    CHECK(nk_library_version() != NULL && nk_library_version()[0] != '\0');
    CHECK(strcmp(nk_status_name(NK_E_TRUNCATED), "NK_E_TRUNCATED") == 0);
    CHECK(strcmp(nk_status_name(99), "NK_E_UNKNOWN") == 0);
    CHECK(nk_app_count() > 1 && strcmp(nk_app_name(0), "unknown") == 0);
    CHECK(nk_app_name(nk_app_count()) == NULL && nk_app_name(UINT32_MAX) == NULL);
    CHECK(nk_activity_name(nk_activity_count()) == NULL);
    CHECK(nk_activity_code("mining") > 0);
    CHECK(strcmp(nk_activity_name((uint32_t)nk_activity_code("mining")), "mining") == 0);
    CHECK(nk_app_code("no such app") == -1 && nk_app_code(NULL) == -1);
    CHECK(nk_activity_code(NULL) == -1);
    CHECK(strcmp(nk_side_name(NK_SIDE_BOTH), "both") == 0 && nk_side_name(4) == NULL);
    CHECK(strcmp(nk_confidence_name(NK_CONFIDENCE_HIGH), "high") == 0);
    CHECK(nk_confidence_name(4) == NULL);
    CHECK(strcmp(nk_evidence_name(4), "ip_list") == 0 && nk_evidence_name(NK_EVIDENCE_BITS) == NULL);
    CHECK(strcmp(nk_evidence_name(11), "dns_score") == 0 && NK_EVIDENCE_DNS_SCORE == 1u << 11);

    char text[16];
    const uint16_t bits = NK_EVIDENCE_PORT | NK_EVIDENCE_ASN;
    CHECK(nk_evidence_text(bits, text, sizeof text) == 8 && strcmp(text, "port|asn") == 0);
    CHECK(nk_evidence_text(0, text, sizeof text) == 0 && text[0] == '\0');
    /* Cut as snprintf cuts: the length of the whole, a terminated prefix. */
    CHECK(nk_evidence_text(bits, text, 6) == 8 && strcmp(text, "port|") == 0);
    CHECK(nk_evidence_text(bits, text, 1) == 8 && text[0] == '\0');
    CHECK(nk_evidence_text(bits, NULL, 0) == 8);
    CHECK(nk_evidence_text(0xffff, NULL, 0) > 0);
}

static void ruleset_files(const char* path, const char* watched_path) {
    nk_ruleset* rules = (nk_ruleset*)1;
    CHECK_STATUS(nk_ruleset_load(NULL, &rules), NK_E_ARGUMENT, "path is NULL");
    CHECK(rules == NULL);
    CHECK_STATUS(nk_ruleset_load(path, NULL), NK_E_ARGUMENT, "out is NULL");
    CHECK_STATUS(nk_ruleset_load("/nonexistent/rules.nkc", &rules), NK_E_IO,
                 "/nonexistent/rules.nkc");
    CHECK_STATUS(nk_ruleset_load("/", &rules), NK_E_IO, "/");
    /* An endless file is not read whole: its magic settles it. */
    CHECK_STATUS(nk_ruleset_load("/dev/zero", &rules), NK_E_FOREIGN, "/dev/zero");
    CHECK_STATUS(nk_ruleset_load_bytes(NULL, 10, &rules), NK_E_ARGUMENT, "data is NULL");
    CHECK_STATUS(nk_ruleset_load_bytes(NULL, 0, &rules), NK_E_TRUNCATED, "");
    CHECK_STATUS(nk_ruleset_load_bytes("x", 1, NULL), NK_E_ARGUMENT, "out is NULL");

    size_t size;
    unsigned char* data = read_file(watched_path, &size);
    CHECK_STATUS(nk_ruleset_load_bytes(data, size, &rules), NK_OK, "");
    CHECK(nk_ruleset_has_as_stage(rules) == 0 && nk_ruleset_org_count(rules) == 0);
    CHECK(nk_ruleset_org_name(rules, 0) == NULL);
    nk_ruleset_free(rules);

    /* Every prefix is refused, with an offset inside the file. */
    for (size_t cut = 0; cut < size; cut += cut < 64 ? 1 : 97) {
        nk_status s = nk_ruleset_load_bytes(data, cut, &rules);
        CHECK(s == NK_E_TRUNCATED || s == NK_E_CORRUPT || s == NK_E_FOREIGN);
        CHECK(rules == NULL);
        CHECK(nk_last_error()[0] != '\0');
        CHECK(nk_last_error_offset() == UINT64_MAX || nk_last_error_offset() <= size);
    }
    /* A changed byte anywhere is caught (by the checksum at the latest). */
    for (size_t at = 0; at < size; at += at < 64 ? 1 : 89) {
        data[at] ^= 0x5a;
        nk_status s = nk_ruleset_load_bytes(data, size, &rules);
        CHECK(s != NK_OK);
        CHECK(rules == NULL);
        if (s == NK_OK) nk_ruleset_free(rules);
        data[at] ^= 0x5a;
    }
    /* Other magic: foreign; other format version: refused by version. */
    unsigned char* copy = malloc(size);
    memcpy(copy, data, size);
    memcpy(copy, "PK\x03\x04", 4);
    CHECK_STATUS(nk_ruleset_load_bytes(copy, size, &rules), NK_E_FOREIGN, "");
    CHECK_STATUS(nk_ruleset_load_bytes("not a ruleset at all, just text\n", 32, &rules),
                 NK_E_FOREIGN, "");
    free(copy);
    free(data);

    CHECK_STATUS(nk_ruleset_load(path, &rules), NK_OK, "");
    CHECK(nk_ruleset_path_count(rules) > 1 && nk_ruleset_service_count(rules) > 1);
    CHECK(nk_ruleset_path_name(rules, nk_ruleset_path_count(rules)) == NULL);
    CHECK(nk_ruleset_service_name(rules, UINT32_MAX) == NULL);
    CHECK(nk_ruleset_name(rules) != NULL && nk_ruleset_version(rules) != NULL);
    CHECK(nk_ruleset_has_as_stage(rules) == 1 && nk_ruleset_org_count(rules) > 1);
    nk_ruleset_free(rules);

    /* NULL handles give NULL / 0, never a crash. */
    CHECK(nk_ruleset_name(NULL) == NULL && nk_ruleset_version(NULL) == NULL);
    CHECK(nk_ruleset_path_count(NULL) == 0 && nk_ruleset_path_name(NULL, 0) == NULL);
    CHECK(nk_ruleset_service_count(NULL) == 0 && nk_ruleset_service_name(NULL, 0) == NULL);
    CHECK(nk_ruleset_has_as_stage(NULL) == 0 && nk_ruleset_org_count(NULL) == 0);
    CHECK(nk_ruleset_org_name(NULL, 0) == NULL);
    nk_ruleset_free(NULL);
    nk_classifier_free(NULL);
    nk_pair_cache_free(NULL);
    nk_meter_free(NULL);
}

/* CRC-32 (ISO-HDLC, as zlib.crc32), bitwise. */
static uint32_t crc32_of(const unsigned char* p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return ~c;
}

static void put_le(unsigned char* p, uint64_t v, int bytes) {
    for (int k = 0; k < bytes; ++k) p[k] = (unsigned char)(v >> (8 * k));
}

/* Loads `size` bytes of `data` with the checksum made to match, so that the
 * checks behind it are reached. */
static nk_status load_fixed(unsigned char* data, size_t size, nk_ruleset** rules) {
    put_le(data + size - 4, crc32_of(data, size - 4), 4);
    return nk_ruleset_load_bytes(data, size, rules);
}

/* A ruleset with dated lists (since format 2): every cut is refused, and a
 * damaged interval row (empty, out of order, its key or verdict out of
 * range) is corrupt, naming the row, at an offset inside it. */
static void dated_ruleset_file(const char* path) {
    size_t size;
    unsigned char* data = read_file(path, &size);
    nk_ruleset* rules = NULL;
    CHECK_STATUS(nk_ruleset_load_bytes(data, size, &rules), NK_OK, "");
    nk_ruleset_free(rules);
    CHECK(data[12] == 2); /* flags: dated lists, no AS stage */

    size_t rows_at = 0;
    for (size_t at = 32; at + 16 <= size; ++at)
        if (memcmp(data + at, "DTIV", 4) == 0 && data[at + 4] == 24) {
            rows_at = at + 16;
            break;
        }
    CHECK(rows_at != 0);
    if (rows_at == 0) {
        free(data);
        return;
    }
    uint64_t rows = 0;
    for (int k = 7; k >= 0; --k) rows = rows << 8 | data[rows_at - 8 + k];
    CHECK(rows >= 2);
    for (size_t cut = rows_at - 16; cut < rows_at + 48 && cut < size; ++cut) {
        CHECK(nk_ruleset_load_bytes(data, cut, &rules) == NK_E_TRUNCATED);
        CHECK(rules == NULL && nk_last_error_offset() == cut);
    }

    unsigned char* copy = malloc(size);
    unsigned char* row = copy + rows_at;
    const uint64_t row_offset = rows_at;
    /* valid until := valid from */
    memcpy(copy, data, size);
    memcpy(row + 16, row + 8, 8);
    CHECK_STATUS(load_fixed(copy, size, &rules), NK_E_CORRUPT, "DTIV row 0: empty validity");
    CHECK(rules == NULL && nk_last_error_offset() == row_offset + 8);
    /* rows 0 and 1 swapped */
    memcpy(copy, data, size);
    memcpy(row, data + rows_at + 24, 24);
    memcpy(row + 24, data + rows_at, 24);
    CHECK_STATUS(load_fixed(copy, size, &rules), NK_E_CORRUPT, "DTIV row 1: out of order");
    CHECK(nk_last_error_offset() == row_offset + 24);
    /* a key past the dated prefixes */
    memcpy(copy, data, size);
    put_le(row, 0xfffffff0u, 4);
    CHECK_STATUS(load_fixed(copy, size, &rules), NK_E_CORRUPT, "dated prefixes");
    CHECK(nk_last_error_offset() == row_offset);
    /* verdict 0, reserved for "none" */
    memcpy(copy, data, size);
    put_le(row + 4, 0, 2);
    CHECK_STATUS(load_fixed(copy, size, &rules), NK_E_CORRUPT, "verdict 0 outside");
    CHECK(nk_last_error_offset() == row_offset + 4);
    /* the formats before dated lists and DNS tunnelling thresholds: compile again */
    memcpy(copy, data, size);
    put_le(copy + 8, 1, 4);
    CHECK_STATUS(load_fixed(copy, size, &rules), NK_E_VERSION, "format version 1");
    put_le(copy + 8, 2, 4);
    CHECK_STATUS(load_fixed(copy, size, &rules), NK_E_VERSION, "format version 2");
    /* the dated flag cleared: the section count no longer fits */
    memcpy(copy, data, size);
    copy[12] = 0;
    CHECK_STATUS(load_fixed(copy, size, &rules), NK_E_CORRUPT, "sections, expected 18");
    CHECK(rules == NULL);
    free(copy);
    free(data);
}

/* Two flows to a stratum port; the second pair repeats in a later batch. */
static void classify_calls(const char* path) {
    nk_ruleset* rules = NULL;
    nk_classifier* clf = (nk_classifier*)1;
    CHECK_STATUS(nk_classifier_new(NULL, &clf), NK_E_ARGUMENT, "rules is NULL");
    CHECK(clf == NULL);
    CHECK_STATUS(nk_ruleset_load(path, &rules), NK_OK, "");
    CHECK_STATUS(nk_classifier_new(rules, NULL), NK_E_ARGUMENT, "out is NULL");
    CHECK_STATUS(nk_classifier_new(rules, &clf), NK_OK, "");
    nk_ruleset_free(rules); /* the classifier keeps what it needs */

    const uint32_t src4[2] = {0xAF2DB009u /* 175.45.176.9 */, 0x0A000001u};
    const uint32_t dst4[2] = {0xC000020Au, 0xAF2DB047u /* 175.45.176.71 */};
    const uint16_t sport[2] = {50000, 40000}, dport[2] = {3333, 80};
    const uint8_t proto[2] = {6, 6};
    uint8_t activity[2] = {0xee, 0xee}, side[2] = {0xee, 0xee};
    uint16_t path_code[2] = {0xeeee, 0xeeee};
    nk_labels out;
    memset(&out, 0, sizeof out);
    out.activity = activity, out.side = side, out.path = path_code;
    nk_flow_columns f;
    memset(&f, 0, sizeof f);
    f.n = 2;
    f.src_ip4 = src4, f.dst_ip4 = dst4, f.src_port = sport, f.dst_port = dport, f.protocol = proto;

    CHECK_STATUS(nk_classify(NULL, &f, NULL, &out), NK_E_ARGUMENT, "must not be NULL");
    CHECK_STATUS(nk_classify(clf, NULL, NULL, &out), NK_E_ARGUMENT, "must not be NULL");
    CHECK_STATUS(nk_classify(clf, &f, NULL, NULL), NK_E_ARGUMENT, "must not be NULL");
    nk_flow_columns bad = f;
    bad.src_ip4 = NULL;
    CHECK_STATUS(nk_classify(clf, &bad, NULL, &out), NK_E_ARGUMENT, "src_ip");
    bad = f;
    bad.dst_ip6 = (const uint8_t*)dst4; /* both forms */
    CHECK_STATUS(nk_classify(clf, &bad, NULL, &out), NK_E_ARGUMENT, "dst_ip");
    bad = f;
    bad.dst_port = NULL;
    CHECK_STATUS(nk_classify(clf, &bad, NULL, &out), NK_E_ARGUMENT, "dst_port");
    bad = f;
    bad.protocol = NULL;
    CHECK_STATUS(nk_classify(clf, &bad, NULL, &out), NK_E_ARGUMENT, "protocol");
    const uint8_t payload[4] = {'a', 'b', 'c', 'd'};
    const int64_t backwards[3] = {0, 3, 1}, negative[3] = {-1, 0, 2};
    bad = f;
    bad.src_payload = payload; /* without offsets */
    CHECK_STATUS(nk_classify(clf, &bad, NULL, &out), NK_E_ARGUMENT, "src_payload");
    bad.src_payload_offsets = backwards;
    CHECK_STATUS(nk_classify(clf, &bad, NULL, &out), NK_E_ARGUMENT, "row 1 ends at offset 1");
    bad.src_payload_offsets = negative;
    CHECK_STATUS(nk_classify(clf, &bad, NULL, &out), NK_E_ARGUMENT, "below 0");
    bad = f;
    bad.dst_payload_offsets = backwards; /* offsets without bytes */
    CHECK_STATUS(nk_classify(clf, &bad, NULL, &out), NK_E_ARGUMENT, "dst_payload");
    nk_pair_cache* cache = NULL;
    CHECK_STATUS(nk_pair_cache_new(0, 1000, &cache), NK_E_ARGUMENT, "capacity");
    CHECK_STATUS(nk_pair_cache_new(16, -1, &cache), NK_E_ARGUMENT, "ttl_ms");
    CHECK_STATUS(nk_pair_cache_new(16, 1000, NULL), NK_E_ARGUMENT, "out is NULL");
    CHECK_STATUS(nk_pair_cache_new(16, 3600000, &cache), NK_OK, "");
    CHECK_STATUS(nk_classify(clf, &f, cache, &out), NK_E_ARGUMENT, "ts_end");
    /* Nothing was written by the refused calls. */
    CHECK(activity[0] == 0xee && side[1] == 0xee && path_code[0] == 0xeeee);

    CHECK_STATUS(nk_classify(clf, &f, NULL, &out), NK_OK, "");
    CHECK(strcmp(nk_side_name(side[0]), "src") == 0 && strcmp(nk_side_name(side[1]), "dst") == 0);
    CHECK(strcmp(nk_activity_name(activity[0]), "mining_suspect") == 0);

    /* An empty batch needs no columns; only labels given are written. */
    nk_flow_columns empty;
    memset(&empty, 0, sizeof empty);
    CHECK_STATUS(nk_classify(clf, &empty, NULL, &out), NK_OK, "");
    nk_labels none;
    memset(&none, 0, sizeof none);
    CHECK_STATUS(nk_classify(clf, &f, NULL, &none), NK_OK, "");

    /* The pair cache: a confirmed stratum flow makes the pair mining later. */
    const char* login = "{\"id\":1,\"method\":\"login\",\"params\":{\"login\":\"x\",\"pass\":\"x\"}}\n";
    const int64_t src_offsets[3] = {0, (int64_t)strlen(login), (int64_t)strlen(login)};
    const int64_t dst_offsets[3] = {0, 0, 0};
    const int64_t ts_start[2] = {1000, 2000}, ts_end[2] = {1500, 2500};
    nk_flow_columns mined = f;
    mined.src_payload = (const uint8_t*)login, mined.src_payload_offsets = src_offsets;
    mined.dst_payload = (const uint8_t*)"", mined.dst_payload_offsets = dst_offsets;
    mined.ts_start = ts_start, mined.ts_end = ts_end;
    CHECK_STATUS(nk_classify(clf, &mined, cache, &out), NK_OK, "");
    CHECK(strcmp(nk_activity_name(activity[0]), "mining") == 0);
    CHECK(nk_pair_cache_size(cache) == 1);
    nk_flow_columns later = f;
    const uint16_t other_port[2] = {443, 443};
    const int64_t later_start[2] = {3000, 3000}, later_end[2] = {4000, 4000};
    later.dst_port = other_port, later.ts_start = later_start, later.ts_end = later_end;
    uint16_t evidence[2];
    out.evidence = evidence;
    CHECK_STATUS(nk_classify(clf, &later, cache, &out), NK_OK, "");
    CHECK(strcmp(nk_activity_name(activity[0]), "mining") == 0);
    CHECK((evidence[0] & NK_EVIDENCE_PAIR_CACHE) != 0);
    CHECK(strcmp(nk_activity_name(activity[1]), "mining") != 0);
    CHECK(nk_pair_cache_size(NULL) == 0);

    nk_pair_cache_free(cache);
    nk_classifier_free(clf);
}

static int src_port_or_dst_is_53(const uint16_t* src, const uint16_t* dst, size_t n) {
    for (size_t i = 0; i < n; ++i)
        if (src[i] != 53 && dst[i] != 53) return 0;
    return n > 0;
}

static void meter_calls(const char* capture) {
    nk_meter* meter = (nk_meter*)1;
    nk_meter_config cfg;
    nk_meter_config_init(&cfg);
    nk_meter_config_init(NULL);
    CHECK(cfg.payload_bytes == 512 && cfg.max_flows == 1000000);
    CHECK_STATUS(nk_meter_new(&cfg, NULL), NK_E_ARGUMENT, "out is NULL");
    cfg.payload_bytes = 70000;
    CHECK_STATUS(nk_meter_new(&cfg, &meter), NK_E_ARGUMENT, "payload_bytes");
    CHECK(meter == NULL);
    nk_meter_config_init(&cfg);
    cfg.idle_timeout_ms = 0;
    CHECK_STATUS(nk_meter_new(&cfg, &meter), NK_E_ARGUMENT, "idle_timeout_ms");
    nk_meter_config_init(&cfg);
    cfg.active_timeout_ms = -5;
    CHECK_STATUS(nk_meter_new(&cfg, &meter), NK_E_ARGUMENT, "active_timeout_ms");
    nk_meter_config_init(&cfg);
    cfg.max_flows = 0;
    CHECK_STATUS(nk_meter_new(&cfg, &meter), NK_E_ARGUMENT, "max_flows");
    cfg.max_flows = UINT64_MAX;
    CHECK_STATUS(nk_meter_new(&cfg, &meter), NK_E_ARGUMENT, "max_flows");
    nk_meter_config_init(&cfg);
    cfg.max_memory_bytes = 10;
    CHECK_STATUS(nk_meter_new(&cfg, &meter), NK_E_ARGUMENT, "max_memory_bytes");

    /* NULL meters and buffers. */
    size_t rows = 7;
    CHECK_STATUS(nk_meter_feed(NULL, "x", 1), NK_E_ARGUMENT, "must not be NULL");
    CHECK_STATUS(nk_meter_add_packet(NULL, 1, 0, "x", 1, 1), NK_E_ARGUMENT, "must not be NULL");
    CHECK_STATUS(nk_meter_finish(NULL), NK_E_ARGUMENT, "meter is NULL");
    CHECK_STATUS(nk_meter_drain(NULL, NULL, &rows), NK_E_ARGUMENT, "must not be NULL");
    CHECK(rows == 0);
    CHECK(nk_meter_ready(NULL) == 0);
    nk_meter_counters counters;
    memset(&counters, 0xee, sizeof counters);
    nk_meter_get_counters(NULL, &counters);
    CHECK(counters.packets == 0xeeeeeeeeeeeeeeeeull);

    size_t size;
    unsigned char* data = read_file(capture, &size);
    CHECK_STATUS(nk_meter_new(NULL, &meter), NK_OK, "");
    CHECK_STATUS(nk_meter_feed(meter, NULL, 5), NK_E_ARGUMENT, "must not be NULL");
    CHECK_STATUS(nk_meter_feed(meter, NULL, 0), NK_OK, "");
    CHECK_STATUS(nk_meter_feed(meter, data, size), NK_OK, "");
    CHECK_STATUS(nk_meter_add_packet(meter, 1, 0, data, 10, 10), NK_E_STATE, "capture bytes");
    CHECK_STATUS(nk_meter_finish(meter), NK_OK, "");
    CHECK_STATUS(nk_meter_feed(meter, data, size), NK_E_STATE, "finished");
    CHECK(nk_meter_ready(meter) > 0);

    /* Drain buffers: NULL columns, payload halves, too small for a record. */
    enum { kRows = 4 };
    int64_t ts[kRows], te[kRows], so[kRows + 1], dof[kRows + 1];
    uint8_t sip[16 * kRows], dip[16 * kRows], proto[kRows], flags[kRows], sp[8], dp[8];
    uint16_t sport[kRows], dport[kRows];
    uint64_t packets[kRows], bytes[kRows];
    nk_flow_buffers b = {kRows, ts, te, sip, dip, sport, dport, proto, packets, bytes, flags,
                         sp, sizeof sp, so, dp, sizeof dp, dof};
    CHECK_STATUS(nk_meter_drain(meter, &b, NULL), NK_E_ARGUMENT, "must not be NULL");
    nk_flow_buffers bad = b;
    bad.bytes = NULL;
    CHECK_STATUS(nk_meter_drain(meter, &bad, &rows), NK_E_ARGUMENT, "'bytes'");
    bad = b;
    bad.dst_payload_offsets = NULL;
    CHECK_STATUS(nk_meter_drain(meter, &bad, &rows), NK_E_ARGUMENT, "together");
    const size_t ready = nk_meter_ready(meter);
    /* dns53: the first flow's query does not fit in 8 bytes. */
    CHECK_STATUS(nk_meter_drain(meter, &b, &rows), NK_E_BUFFER, "payload needs");
    CHECK(rows == 0 && nk_meter_ready(meter) == ready);
    /* Zero capacity drains nothing; payloads may be dropped. */
    bad = b;
    bad.capacity = 0;
    CHECK_STATUS(nk_meter_drain(meter, &bad, &rows), NK_OK, "");
    CHECK(rows == 0);
    b.src_payload = b.dst_payload = NULL;
    b.src_payload_offsets = b.dst_payload_offsets = NULL;
    CHECK_STATUS(nk_meter_drain(meter, &b, &rows), NK_OK, "");
    CHECK(rows == (ready < kRows ? ready : kRows));
    CHECK(src_port_or_dst_is_53(sport, dport, rows));
    nk_flow_columns cols;
    nk_flow_columns_from_buffers(&b, rows, &cols);
    CHECK(cols.n == rows && cols.src_ip6 == sip && cols.src_payload == NULL);
    nk_flow_columns_from_buffers(NULL, rows, &cols);
    nk_flow_columns_from_buffers(&b, rows, NULL);
    nk_meter_get_counters(meter, &counters);
    CHECK(counters.packets > 0 && counters.flows_emitted >= rows);
    nk_meter_free(meter);

    /* Packets: not after file bytes, not too long, not after finishing. */
    CHECK_STATUS(nk_meter_new(NULL, &meter), NK_OK, "");
    CHECK_STATUS(nk_meter_add_packet(meter, 1, 0, NULL, 10, 10), NK_E_ARGUMENT, "frame");
    CHECK_STATUS(nk_meter_add_packet(meter, 1, 0, data, 262145, 262145), NK_E_ARGUMENT,
                 "caplen 262145");
    /* A frame of garbage or none is counted, not a failure. */
    CHECK_STATUS(nk_meter_add_packet(meter, 1, 0, data, 3, 3), NK_OK, "");
    CHECK_STATUS(nk_meter_add_packet(meter, 101, -1, NULL, 0, 0), NK_OK, "");
    CHECK_STATUS(nk_meter_add_packet(meter, 999, 0, data, 40, 40000000), NK_OK, "");
    CHECK_STATUS(nk_meter_feed(meter, data, size), NK_E_STATE, "single packets");
    CHECK_STATUS(nk_meter_finish(meter), NK_OK, "");
    CHECK_STATUS(nk_meter_add_packet(meter, 1, 0, data, 10, 10), NK_E_STATE, "finished");
    nk_meter_get_counters(meter, &counters);
    CHECK(counters.packets == 3 && counters.non_ip + counters.malformed == 3);
    CHECK(counters.wire_len_fixed >= 1);
    nk_meter_free(meter);

    /* A capture cut inside a record: truncated, at the record's offset;
     * the flows before it stay drainable. */
    CHECK_STATUS(nk_meter_new(NULL, &meter), NK_OK, "");
    CHECK_STATUS(nk_meter_feed(meter, data, size - 5), NK_OK, "");
    CHECK_STATUS(nk_meter_finish(meter), NK_E_TRUNCATED, "truncated at byte");
    CHECK(nk_last_error_offset() < size);
    CHECK_STATUS(nk_meter_finish(meter), NK_E_TRUNCATED, "truncated");
    nk_meter_free(meter);
    /* An empty capture is truncated too. */
    CHECK_STATUS(nk_meter_new(NULL, &meter), NK_OK, "");
    CHECK_STATUS(nk_meter_finish(meter), NK_E_TRUNCATED, "truncated");
    nk_meter_free(meter);
    /* A record length beyond any frame: corrupt, at that record. */
    unsigned char* broken = malloc(size);
    memcpy(broken, data, size);
    memset(broken + 24 + 8, 0xff, 4); /* the first record's caplen */
    CHECK_STATUS(nk_meter_new(NULL, &meter), NK_OK, "");
    CHECK_STATUS(nk_meter_feed(meter, broken, size), NK_E_CORRUPT, "corrupt capture at byte 24");
    CHECK(nk_last_error_offset() == 24);
    CHECK_STATUS(nk_meter_feed(meter, broken, size), NK_E_CORRUPT, "corrupt");
    CHECK_STATUS(nk_meter_finish(meter), NK_E_CORRUPT, "corrupt");
    nk_meter_free(meter);
    /* Not a capture at all. */
    CHECK_STATUS(nk_meter_new(NULL, &meter), NK_OK, "");
    CHECK_STATUS(nk_meter_feed(meter, "hello, this is not a capture file", 33), NK_E_CORRUPT,
                 "byte 0");
    nk_meter_free(meter);
    free(broken);
    free(data);
}

static void aggregate_calls(void) {
    nk_aggregator* agg = (nk_aggregator*)1;
    CHECK_STATUS(nk_aggregator_new(7, &agg), NK_E_ARGUMENT, "bucket");
    CHECK(agg == NULL);
    CHECK_STATUS(nk_aggregator_new(NK_BUCKET_DAY, NULL), NK_E_ARGUMENT, "out is NULL");
    CHECK_STATUS(nk_aggregator_new(NK_BUCKET_MONTH, &agg), NK_OK, "");

    const int64_t ts[3] = {0, 86400000LL * 59, 86400000LL * 59 + 5}; /* Jan 1, Mar 1 1970 */
    const uint32_t src4[3] = {0x0A000001u, 0x0A000001u, 0x0A000002u};
    const uint32_t dst4[3] = {0xAF2DB009u, 0xAF2DB009u, 0xAF2DB00Au};
    const uint64_t bytes[3] = {100, 200, UINT64_MAX};
    const uint16_t path[3] = {1, 1, 1};
    const uint8_t activity[3] = {0, 0, 0}, side[3] = {NK_SIDE_DST, NK_SIDE_DST, NK_SIDE_DST};
    const uint8_t bad_side[3] = {NK_SIDE_DST, 9, NK_SIDE_DST};
    nk_flow_columns f;
    memset(&f, 0, sizeof f);
    f.n = 2, f.ts_start = ts, f.src_ip4 = src4, f.dst_ip4 = dst4, f.bytes = bytes;
    nk_labels l;
    memset(&l, 0, sizeof l);
    l.path = (uint16_t*)path, l.activity = (uint8_t*)activity, l.side = (uint8_t*)side;

    CHECK_STATUS(nk_aggregator_add(NULL, &f, &l, NULL), NK_E_ARGUMENT, "must not be NULL");
    CHECK_STATUS(nk_aggregator_add(agg, NULL, &l, NULL), NK_E_ARGUMENT, "must not be NULL");
    CHECK_STATUS(nk_aggregator_add(agg, &f, NULL, NULL), NK_E_ARGUMENT, "must not be NULL");
    nk_flow_columns bad = f;
    bad.ts_start = NULL;
    CHECK_STATUS(nk_aggregator_add(agg, &bad, &l, NULL), NK_E_ARGUMENT, "'ts_start'");
    bad = f;
    bad.dst_ip4 = NULL;
    CHECK_STATUS(nk_aggregator_add(agg, &bad, &l, NULL), NK_E_ARGUMENT, "'dst_ip'");
    nk_labels bad_labels = l;
    bad_labels.side = NULL;
    CHECK_STATUS(nk_aggregator_add(agg, &f, &bad_labels, NULL), NK_E_ARGUMENT, "'side'");
    bad_labels = l;
    bad_labels.side = (uint8_t*)bad_side;
    CHECK_STATUS(nk_aggregator_add(agg, &f, &bad_labels, NULL), NK_E_ARGUMENT, "row 1 is 9");
    const int64_t before[2] = {5, -1};
    bad = f;
    bad.ts_start = before;
    CHECK_STATUS(nk_aggregator_add(agg, &bad, &l, NULL), NK_E_ARGUMENT, "row 1 is before 1970");
    CHECK(nk_aggregator_group_count(agg) == 0);

    CHECK_STATUS(nk_aggregator_add(agg, &f, &l, NULL), NK_OK, "");
    CHECK(nk_aggregator_group_count(agg) == 2);
    nk_group g;
    CHECK_STATUS(nk_aggregator_group(agg, 1, &g), NK_OK, "");
    CHECK(g.bucket_start_ms == 86400000LL * 59 && g.flows == 1 && g.bytes == 200);
    CHECK(g.hosts == 1 && g.peers == 1 && g.hosts6 == 0 && g.peers6 == 0);
    CHECK_STATUS(nk_aggregator_group(agg, 2, &g), NK_E_ARGUMENT, "index 2");
    CHECK_STATUS(nk_aggregator_group(agg, 0, NULL), NK_E_ARGUMENT, "must not be NULL");
    CHECK_STATUS(nk_aggregator_group(NULL, 0, &g), NK_E_ARGUMENT, "must not be NULL");
    CHECK(nk_aggregator_group_count(NULL) == 0);
    /* A byte sum past 2^64 - 1 is refused whole: the group keeps its sums. */
    nk_flow_columns over = f;
    over.n = 3;
    CHECK_STATUS(nk_aggregator_add(agg, &over, &l, NULL), NK_E_CORRUPT, "2^64");
    CHECK_STATUS(nk_aggregator_group(agg, 1, &g), NK_OK, "");
    CHECK(g.flows == 1 && g.bytes == 200);
    nk_aggregator_free(agg);
    nk_aggregator_free(NULL);
}

int main(int argc, char** argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s RULES.nkc RULES_WATCHED.nkc RULES_DATED.nkc CAPTURE.pcap\n",
                argv[0]);
        return 2;
    }
    vocabulary();
    ruleset_files(argv[1], argv[2]);
    dated_ruleset_file(argv[3]);
    classify_calls(argv[1]);
    meter_calls(argv[4]);
    aggregate_calls();
    if (check_failures == 0) printf("all checks passed\n");
    return check_failures != 0;
}
