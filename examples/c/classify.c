/* A small collector on libnkclass: meters a capture (a pcap or pcapng file,
 * or "-" for standard input, as tcpdump -w - writes it), labels its flows
 * as they end and prints one line per labelled flow, then flow and byte
 * totals per (path, activity).
 *
 *   classify RULES.nkc CAPTURE
 *
 * RULES.nkc comes from `nkclass rules compile -o RULES.nkc`. Build against
 * an installed libnkclass:
 *   cc classify.c $(pkg-config --cflags --libs nkclass) -o classify
 * Flows are labelled per drained batch of up to 4096, so the flow-shape
 * stage sees one batch at a time. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nkclass/nkclass.h>

enum { kRows = 4096, kPayload = 512 };

static int64_t ts_start[kRows], ts_end[kRows], src_offsets[kRows + 1], dst_offsets[kRows + 1];
static uint8_t src_ip[16 * kRows], dst_ip[16 * kRows], protocol[kRows], tcp_flags[kRows];
static uint16_t src_port[kRows], dst_port[kRows];
static uint64_t packets[kRows], bytes[kRows];
static uint8_t src_payload[kRows * kPayload], dst_payload[kRows * kPayload];
static uint16_t path[kRows], evidence[kRows];
static uint8_t side[kRows], app[kRows], activity[kRows], confidence[kRows];

/* Totals per (path, activity); paths and activities are small codes. */
typedef struct {
    uint64_t flows, bytes;
} total_t;

static void address(const uint8_t* a, char* out) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(a, mapped, 12) == 0)
        inet_ntop(AF_INET, a + 12, out, INET6_ADDRSTRLEN);
    else
        inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN);
}

static int fail(const char* what) {
    fprintf(stderr, "classify: %s: %s\n", what, nk_last_error());
    return 1;
}

/* Labels and prints what the meter has ready; adds to the totals. */
static int drain(nk_meter* meter, const nk_classifier* clf, const nk_ruleset* rules,
                 total_t* totals, uint32_t activities) {
    const nk_flow_buffers buffers = {kRows, ts_start, ts_end, src_ip, dst_ip, src_port,
                                     dst_port, protocol, packets, bytes, tcp_flags,
                                     src_payload, sizeof src_payload, src_offsets,
                                     dst_payload, sizeof dst_payload, dst_offsets};
    const nk_labels labels = {path, side, NULL, app, activity, evidence, confidence, NULL, NULL};
    for (;;) {
        size_t rows;
        if (nk_meter_drain(meter, &buffers, &rows) != NK_OK) return fail("drain");
        if (rows == 0) return 0;
        nk_flow_columns flows;
        nk_flow_columns_from_buffers(&buffers, rows, &flows);
        if (nk_classify(clf, &flows, NULL, &labels) != NK_OK) return fail("classify");
        for (size_t i = 0; i < rows; ++i) {
            totals[path[i] * activities + activity[i]].flows += 1;
            totals[path[i] * activities + activity[i]].bytes += bytes[i];
            char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN], why[96];
            address(src_ip + 16 * i, src);
            address(dst_ip + 16 * i, dst);
            nk_evidence_text(evidence[i], why, sizeof why);
            printf("%lld %s:%u -> %s:%u proto %u  %s %s  %s/%s (%s, %s)\n",
                   (long long)ts_start[i], src, src_port[i], dst, dst_port[i], protocol[i],
                   nk_ruleset_path_name(rules, path[i]), nk_side_name(side[i]),
                   nk_app_name(app[i]), nk_activity_name(activity[i]), why,
                   nk_confidence_name(confidence[i]));
        }
    }
}

int main(int argc, char** argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: classify RULES.nkc CAPTURE (\"-\" for standard input)\n");
        return 2;
    }
    nk_ruleset* rules = NULL;
    nk_classifier* clf = NULL;
    nk_meter* meter = NULL;
    if (nk_ruleset_load(argv[1], &rules) != NK_OK) return fail(argv[1]);
    if (nk_classifier_new(rules, &clf) != NK_OK) return fail("classifier");
    nk_meter_config config;
    nk_meter_config_init(&config);
    config.payload_bytes = kPayload;
    if (nk_meter_new(&config, &meter) != NK_OK) return fail("meter");

    const uint32_t paths = nk_ruleset_path_count(rules), activities = nk_activity_count();
    total_t* totals = calloc((size_t)paths * activities, sizeof *totals);
    FILE* in = strcmp(argv[2], "-") == 0 ? stdin : fopen(argv[2], "rb");
    if (totals == NULL || in == NULL) {
        perror(argv[2]);
        return 1;
    }
    static unsigned char chunk[1 << 16];
    size_t got;
    int status = 0;
    while (status == 0 && (got = fread(chunk, 1, sizeof chunk, in)) != 0) {
        if (nk_meter_feed(meter, chunk, got) != NK_OK) status = fail(argv[2]);
        if (drain(meter, clf, rules, totals, activities) != 0) status = 1;
    }
    if (in != stdin) fclose(in);
    /* A bad capture still gives the flows before the bad record. */
    if (nk_meter_finish(meter) != NK_OK && status == 0) status = fail(argv[2]);
    if (drain(meter, clf, rules, totals, activities) != 0) status = 1;

    printf("\n%-12s %-18s %10s %14s\n", "path", "activity", "flows", "bytes");
    for (uint32_t p = 0; p < paths; ++p)
        for (uint32_t a = 0; a < activities; ++a) {
            const total_t* t = &totals[p * activities + a];
            if (t->flows != 0)
                printf("%-12s %-18s %10llu %14llu\n", nk_ruleset_path_name(rules, p),
                       nk_activity_name(a), (unsigned long long)t->flows,
                       (unsigned long long)t->bytes);
        }
    free(totals);
    nk_meter_free(meter);
    nk_classifier_free(clf);
    nk_ruleset_free(rules);
    return status;
}
