/* End to end through libnkclass: meters real captures, labels their flows
 * and checks every line against the labels of the Python API
 * (expected_labels.py).
 *
 *   test_capture RULES.nkc EXPECTED_DIR CAPTURE...
 *
 * Each capture goes through the meter twice: as file bytes fed in chunks of
 * changing sizes (records split anywhere), and, for classic pcap files, as
 * single packets (nk_meter_add_packet); both must give the same flows.
 * Flows are drained into small buffers (so drains stop early on payload
 * room), labelled as one batch with 16-byte addresses, labelled again with
 * IPv4 narrowed to uint32 where every address is IPv4-mapped (the labels
 * must not change), labelled by four threads at once (the same again), and
 * compared with EXPECTED_DIR/NAME.tsv; their report
 * groups by day, week and month (nk_aggregator) with NAME.BUCKET.tsv. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

typedef struct {
    size_t n, cap;
    int64_t *ts_start, *ts_end;
    uint8_t *src_ip, *dst_ip;
    uint16_t *src_port, *dst_port;
    uint8_t* protocol;
    uint64_t *packets, *bytes;
    uint8_t* tcp_flags;
    uint8_t *src_payload, *dst_payload;
    size_t src_payload_size, dst_payload_size;
    int64_t *src_offsets, *dst_offsets;
} flows_t;

static void* grow(void* p, size_t bytes) {
    void* q = realloc(p, bytes ? bytes : 1);
    if (q == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return q;
}

static void flows_free(flows_t* f) {
    free(f->ts_start), free(f->ts_end), free(f->src_ip), free(f->dst_ip), free(f->src_port);
    free(f->dst_port), free(f->protocol), free(f->packets), free(f->bytes), free(f->tcp_flags);
    free(f->src_payload), free(f->dst_payload), free(f->src_offsets), free(f->dst_offsets);
    memset(f, 0, sizeof *f);
}

/* Appends `rows` drained rows of `b` to `f`. */
static void flows_append(flows_t* f, const nk_flow_buffers* b, size_t rows) {
    size_t need = f->n + rows;
    if (need > f->cap) {
        f->cap = need * 2;
#define GROW(col, per) f->col = grow(f->col, f->cap * (per) * sizeof *f->col)
        GROW(ts_start, 1), GROW(ts_end, 1), GROW(src_ip, 16), GROW(dst_ip, 16);
        GROW(src_port, 1), GROW(dst_port, 1), GROW(protocol, 1), GROW(packets, 1);
        GROW(bytes, 1), GROW(tcp_flags, 1);
        f->src_offsets = grow(f->src_offsets, (f->cap + 1) * sizeof *f->src_offsets);
        f->dst_offsets = grow(f->dst_offsets, (f->cap + 1) * sizeof *f->dst_offsets);
#undef GROW
    }
    if (f->n == 0) f->src_offsets[0] = f->dst_offsets[0] = 0;
#define COPY(col, per) memcpy(f->col + f->n * (per), b->col, rows * (per) * sizeof *f->col)
    COPY(ts_start, 1), COPY(ts_end, 1), COPY(src_ip, 16), COPY(dst_ip, 16);
    COPY(src_port, 1), COPY(dst_port, 1), COPY(protocol, 1), COPY(packets, 1);
    COPY(bytes, 1), COPY(tcp_flags, 1);
#undef COPY
    const size_t src_add = (size_t)b->src_payload_offsets[rows];
    const size_t dst_add = (size_t)b->dst_payload_offsets[rows];
    f->src_payload = grow(f->src_payload, f->src_payload_size + src_add);
    f->dst_payload = grow(f->dst_payload, f->dst_payload_size + dst_add);
    memcpy(f->src_payload + f->src_payload_size, b->src_payload, src_add);
    memcpy(f->dst_payload + f->dst_payload_size, b->dst_payload, dst_add);
    for (size_t i = 1; i <= rows; ++i) {
        f->src_offsets[f->n + i] = (int64_t)f->src_payload_size + b->src_payload_offsets[i];
        f->dst_offsets[f->n + i] = (int64_t)f->dst_payload_size + b->dst_payload_offsets[i];
    }
    f->src_payload_size += src_add;
    f->dst_payload_size += dst_add;
    f->n = need;
}

/* Buffers of 37 rows and a payload room of 1,500 bytes a side: with
 * payloads of up to 512 bytes, drains often stop early. */
enum { kRows = 37, kPayloadRoom = 1500 };

typedef struct {
    int64_t ts_start[kRows], ts_end[kRows];
    uint8_t src_ip[16 * kRows], dst_ip[16 * kRows];
    uint16_t src_port[kRows], dst_port[kRows];
    uint8_t protocol[kRows];
    uint64_t packets[kRows], bytes[kRows];
    uint8_t tcp_flags[kRows];
    uint8_t src_payload[kPayloadRoom], dst_payload[kPayloadRoom];
    int64_t src_offsets[kRows + 1], dst_offsets[kRows + 1];
} drain_space_t;

static nk_flow_buffers buffers_of(drain_space_t* s) {
    nk_flow_buffers b = {kRows, s->ts_start, s->ts_end, s->src_ip, s->dst_ip,
                         s->src_port, s->dst_port, s->protocol, s->packets, s->bytes,
                         s->tcp_flags, s->src_payload, kPayloadRoom, s->src_offsets,
                         s->dst_payload, kPayloadRoom, s->dst_offsets};
    return b;
}

/* Moves every ready record of `meter` into `f`. */
static void drain_all(nk_meter* meter, flows_t* f) {
    static drain_space_t space;
    nk_flow_buffers b = buffers_of(&space);
    for (;;) {
        size_t rows = 0;
        CHECK_STATUS(nk_meter_drain(meter, &b, &rows), NK_OK, "");
        if (rows == 0) break;
        flows_append(f, &b, rows);
    }
    CHECK(nk_meter_ready(meter) == 0);
}

static unsigned char* read_file(const char* path, size_t* size) {
    FILE* fp = fopen(path, "rb");
    if (fp == NULL) {
        perror(path);
        exit(2);
    }
    unsigned char* data = NULL;
    size_t n = 0, got;
    unsigned char chunk[65536];
    while ((got = fread(chunk, 1, sizeof chunk, fp)) != 0) {
        data = grow(data, n + got);
        memcpy(data + n, chunk, got);
        n += got;
    }
    fclose(fp);
    *size = n;
    return data;
}

/* The capture as file bytes, in chunks of 1, 2, 3, ... 700 bytes, draining
 * between chunks. */
static void meter_bytes(const unsigned char* data, size_t size, flows_t* f) {
    nk_meter* meter = NULL;
    CHECK_STATUS(nk_meter_new(NULL, &meter), NK_OK, "");
    size_t at = 0, chunk = 1;
    while (at < size) {
        size_t take = size - at < chunk ? size - at : chunk;
        CHECK_STATUS(nk_meter_feed(meter, data + at, take), NK_OK, "");
        at += take;
        chunk = chunk % 700 + 1;
        drain_all(meter, f);
    }
    CHECK_STATUS(nk_meter_finish(meter), NK_OK, "");
    drain_all(meter, f);
    nk_meter_counters c;
    nk_meter_get_counters(meter, &c);
    CHECK(c.flows_emitted == f->n);
    CHECK(c.packets > 0);
    nk_meter_free(meter);
}

static uint32_t rd32(const unsigned char* p, int swapped) {
    uint32_t v;
    memcpy(&v, p, 4);
    return swapped ? ((v >> 24) | ((v >> 8) & 0xff00) | ((v << 8) & 0xff0000) | (v << 24)) : v;
}

/* A classic pcap capture packet by packet; returns 0 for other formats. */
static int meter_packets(const unsigned char* data, size_t size, flows_t* f) {
    if (size < 24) return 0;
    uint32_t magic;
    memcpy(&magic, data, 4);
    int swapped, nano;
    if (magic == 0xa1b2c3d4 || magic == 0xa1b23c4d) {
        swapped = 0, nano = magic == 0xa1b23c4d;
    } else if (magic == 0xd4c3b2a1 || magic == 0x4d3cb2a1) {
        swapped = 1, nano = magic == 0x4d3cb2a1;
    } else {
        return 0;
    }
    const uint32_t link_type = rd32(data + 20, swapped) & 0x0fffffff;
    nk_meter* meter = NULL;
    CHECK_STATUS(nk_meter_new(NULL, &meter), NK_OK, "");
    size_t at = 24;
    while (at + 16 <= size) {
        const int64_t sec = rd32(data + at, swapped), frac = rd32(data + at + 4, swapped);
        const uint32_t caplen = rd32(data + at + 8, swapped), wire = rd32(data + at + 12, swapped);
        if (caplen > size - at - 16) break;
        const int64_t ts_ns = sec * 1000000000 + (nano ? frac : frac * 1000);
        CHECK_STATUS(nk_meter_add_packet(meter, link_type, ts_ns, data + at + 16, caplen, wire),
                     NK_OK, "");
        at += 16 + caplen;
        drain_all(meter, f);
    }
    CHECK(at == size);
    CHECK_STATUS(nk_meter_finish(meter), NK_OK, "");
    drain_all(meter, f);
    nk_meter_free(meter);
    return 1;
}

static int same_flows(const flows_t* a, const flows_t* b) {
    if (a->n != b->n || a->src_payload_size != b->src_payload_size ||
        a->dst_payload_size != b->dst_payload_size)
        return 0;
    const size_t n = a->n;
#define SAME(col, per) (memcmp(a->col, b->col, n * (per) * sizeof *a->col) == 0)
    return SAME(ts_start, 1) && SAME(ts_end, 1) && SAME(src_ip, 16) && SAME(dst_ip, 16) &&
           SAME(src_port, 1) && SAME(dst_port, 1) && SAME(protocol, 1) && SAME(packets, 1) &&
           SAME(bytes, 1) && SAME(tcp_flags, 1) && SAME(src_offsets, 1) &&
           SAME(dst_offsets, 1) &&
           memcmp(a->src_payload, b->src_payload, a->src_payload_size) == 0 &&
           memcmp(a->dst_payload, b->dst_payload, a->dst_payload_size) == 0;
#undef SAME
}

typedef struct {
    uint16_t* path;
    uint8_t *side, *app, *activity, *confidence;
    uint32_t *service, *peer_as, *peer_org;
    uint16_t* evidence;
} labels_t;

static nk_labels labels_alloc(labels_t* l, size_t n) {
    l->path = grow(NULL, n * 2), l->side = grow(NULL, n), l->app = grow(NULL, n);
    l->activity = grow(NULL, n), l->confidence = grow(NULL, n), l->service = grow(NULL, n * 4);
    l->peer_as = grow(NULL, n * 4), l->peer_org = grow(NULL, n * 4), l->evidence = grow(NULL, n * 2);
    nk_labels out = {l->path, l->side, l->service, l->app, l->activity,
                     l->evidence, l->confidence, l->peer_as, l->peer_org};
    return out;
}

static void labels_free(labels_t* l) {
    free(l->path), free(l->side), free(l->app), free(l->activity), free(l->confidence);
    free(l->service), free(l->peer_as), free(l->peer_org), free(l->evidence);
}

static int ipv4_mapped(const uint8_t* a) {
    static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a, prefix, 12) == 0;
}

static void address_text(const uint8_t* a, char* out, size_t size) {
    if (ipv4_mapped(a))
        inet_ntop(AF_INET, a + 12, out, (socklen_t)size);
    else
        inet_ntop(AF_INET6, a, out, (socklen_t)size);
}

/* One flow's line, as expected_labels.py writes it. */
static void flow_line(const nk_ruleset* rules, const flows_t* f, const labels_t* l, size_t i,
                      char* out, size_t size) {
    char src[64], dst[64], evidence[128];
    address_text(f->src_ip + 16 * i, src, sizeof src);
    address_text(f->dst_ip + 16 * i, dst, sizeof dst);
    nk_evidence_text(l->evidence[i], evidence, sizeof evidence);
    const char* org = nk_ruleset_org_name(rules, l->peer_org[i]);
    snprintf(out, size,
             "%lld\t%lld\t%s\t%s\t%u\t%u\t%u\t%llu\t%llu\t%u\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%u\t%s\n",
             (long long)f->ts_start[i], (long long)f->ts_end[i], src, dst, f->src_port[i],
             f->dst_port[i], f->protocol[i], (unsigned long long)f->packets[i],
             (unsigned long long)f->bytes[i], f->tcp_flags[i],
             nk_ruleset_path_name(rules, l->path[i]), nk_side_name(l->side[i]),
             nk_ruleset_service_name(rules, l->service[i]), nk_app_name(l->app[i]),
             nk_activity_name(l->activity[i]), evidence, nk_confidence_name(l->confidence[i]),
             l->peer_as[i], org ? org : "");
}

static nk_flow_columns columns_of(const flows_t* f) {
    nk_flow_columns c;
    memset(&c, 0, sizeof c);
    c.n = f->n;
    c.src_ip6 = f->src_ip, c.dst_ip6 = f->dst_ip;
    c.src_port = f->src_port, c.dst_port = f->dst_port, c.protocol = f->protocol;
    c.src_payload = f->src_payload, c.src_payload_offsets = f->src_offsets;
    c.dst_payload = f->dst_payload, c.dst_payload_offsets = f->dst_offsets;
    c.ts_start = f->ts_start, c.ts_end = f->ts_end;
    c.packets = f->packets, c.bytes = f->bytes, c.tcp_flags = f->tcp_flags;
    return c;
}

static int same_labels(const labels_t* a, const labels_t* b, size_t n) {
#define SAME(col) (memcmp(a->col, b->col, n * sizeof *a->col) == 0)
    return SAME(path) && SAME(side) && SAME(app) && SAME(activity) && SAME(confidence) &&
           SAME(service) && SAME(peer_as) && SAME(peer_org) && SAME(evidence);
#undef SAME
}

/* Several threads label the same batch with one classifier at once (it is
 * immutable: no locking); each must get the labels of a lone call. */
typedef struct {
    const nk_classifier* clf;
    const nk_flow_columns* cols;
    const labels_t* want;
    int same;
} thread_job_t;

static void* classify_in_thread(void* arg) {
    thread_job_t* job = arg;
    labels_t mine;
    nk_labels out = labels_alloc(&mine, job->cols->n);
    job->same = nk_classify(job->clf, job->cols, NULL, &out) == NK_OK &&
                same_labels(job->want, &mine, job->cols->n);
    labels_free(&mine);
    return NULL;
}

static void check_threads(const nk_classifier* clf, const nk_flow_columns* cols,
                          const labels_t* want, const char* capture) {
    enum { kThreads = 4 };
    pthread_t threads[kThreads];
    thread_job_t jobs[kThreads];
    for (int t = 0; t < kThreads; ++t) {
        jobs[t] = (thread_job_t){clf, cols, want, 0};
        if (pthread_create(&threads[t], NULL, classify_in_thread, &jobs[t]) != 0) {
            fprintf(stderr, "cannot start a thread\n");
            exit(2);
        }
    }
    for (int t = 0; t < kThreads; ++t) {
        pthread_join(threads[t], NULL);
        if (!jobs[t].same) {
            fprintf(stderr, "%s: thread %d got other labels than a lone call\n", capture, t);
            ++check_failures;
        }
    }
}

static int by_text(const void* a, const void* b) {
    return strcmp(*(const char* const*)a, *(const char* const*)b);
}

/* The report groups of the labelled flows (added in two parts, so the
 * groups also accumulate across batches) against EXPECTED/NAME.BUCKET.tsv. */
static void check_groups(const nk_ruleset* rules, const flows_t* f, const labels_t* l,
                         const char* capture, const char* expected_stem) {
    static const char* const names[] = {"day", "week", "month"};
    static const nk_bucket buckets[] = {NK_BUCKET_DAY, NK_BUCKET_WEEK, NK_BUCKET_MONTH};
    for (int k = 0; k < 3; ++k) {
        nk_aggregator* agg = NULL;
        CHECK_STATUS(nk_aggregator_new(buckets[k], &agg), NK_OK, "");
        nk_flow_columns cols = columns_of(f);
        nk_labels labels = {l->path, l->side, l->service, l->app, l->activity, l->evidence,
                            l->confidence, l->peer_as, l->peer_org};
        const size_t half = f->n / 2;
        nk_flow_columns first = cols, second = cols;
        first.n = half;
        second.n = f->n - half;
        second.ts_start += half, second.src_ip6 += 16 * half, second.dst_ip6 += 16 * half;
        second.bytes += half, second.packets += half;
        nk_labels rest = labels;
        rest.path += half, rest.side += half, rest.activity += half;
        CHECK_STATUS(nk_aggregator_add(agg, &first, &labels, NULL), NK_OK, "");
        CHECK_STATUS(nk_aggregator_add(agg, &second, &rest, NULL), NK_OK, "");

        const size_t groups = nk_aggregator_group_count(agg);
        char** lines = grow(NULL, (groups + 1) * sizeof *lines);
        for (size_t g = 0; g < groups; ++g) {
            nk_group group;
            CHECK_STATUS(nk_aggregator_group(agg, g, &group), NK_OK, "");
            lines[g] = grow(NULL, 512);
            snprintf(lines[g], 512, "%lld\t%s\t%s\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\t%llu\n",
                     (long long)group.bucket_start_ms, nk_ruleset_path_name(rules, group.path),
                     nk_activity_name(group.activity), (unsigned long long)group.flows,
                     (unsigned long long)group.bytes, (unsigned long long)group.packets,
                     (unsigned long long)group.hosts, (unsigned long long)group.peers,
                     (unsigned long long)group.hosts6, (unsigned long long)group.peers6);
        }
        qsort(lines, groups, sizeof *lines, by_text);
        char path[4200], want[1024];
        snprintf(path, sizeof path, "%s.%s.tsv", expected_stem, names[k]);
        FILE* fp = fopen(path, "r");
        if (fp == NULL) {
            perror(path);
            exit(2);
        }
        size_t g = 0;
        while (fgets(want, sizeof want, fp) != NULL) {
            if (g >= groups || strcmp(want, lines[g]) != 0) {
                fprintf(stderr, "%s: %s group %zu differs\n  python: %s  C:      %s", capture,
                        names[k], g, want, g < groups ? lines[g] : "(none)\n");
                ++check_failures;
            }
            ++g;
        }
        fclose(fp);
        if (g != groups) {
            fprintf(stderr, "%s: %s: the Python report has %zu groups, the C interface %zu\n",
                    capture, names[k], g, groups);
            ++check_failures;
        }
        for (size_t j = 0; j < groups; ++j) free(lines[j]);
        free(lines);
        nk_aggregator_free(agg);
    }
}

static void check_capture(const nk_ruleset* rules, const nk_classifier* clf,
                          const char* capture, const char* expected_dir) {
    size_t size;
    unsigned char* data = read_file(capture, &size);
    flows_t f, g;
    memset(&f, 0, sizeof f);
    memset(&g, 0, sizeof g);
    meter_bytes(data, size, &f);
    if (f.n == 0) {
        fprintf(stderr, "%s: no flows metered\n", capture);
        ++check_failures;
    }
    if (meter_packets(data, size, &g) && !same_flows(&f, &g)) {
        fprintf(stderr, "%s: single packets gave other flows than file bytes\n", capture);
        ++check_failures;
    }
    free(data);

    labels_t l, l4;
    nk_labels out = labels_alloc(&l, f.n), out4 = labels_alloc(&l4, f.n);
    nk_flow_columns cols = columns_of(&f);
    CHECK_STATUS(nk_classify(clf, &cols, NULL, &out), NK_OK, "");

    check_threads(clf, &cols, &l, capture);

    /* The same batch with IPv4 addresses as uint32 (host order). */
    int all_v4 = 1;
    for (size_t i = 0; i < f.n && all_v4; ++i)
        all_v4 = ipv4_mapped(f.src_ip + 16 * i) && ipv4_mapped(f.dst_ip + 16 * i);
    if (all_v4) {
        uint32_t* src4 = grow(NULL, f.n * 4);
        uint32_t* dst4 = grow(NULL, f.n * 4);
        for (size_t i = 0; i < f.n; ++i) {
            uint32_t v;
            memcpy(&v, f.src_ip + 16 * i + 12, 4);
            src4[i] = ntohl(v);
            memcpy(&v, f.dst_ip + 16 * i + 12, 4);
            dst4[i] = ntohl(v);
        }
        nk_flow_columns c4 = cols;
        c4.src_ip6 = c4.dst_ip6 = NULL;
        c4.src_ip4 = src4, c4.dst_ip4 = dst4;
        CHECK_STATUS(nk_classify(clf, &c4, NULL, &out4), NK_OK, "");
        if (!same_labels(&l, &l4, f.n)) {
            fprintf(stderr, "%s: uint32 addresses gave other labels than 16-byte ones\n", capture);
            ++check_failures;
        }
        free(src4), free(dst4);
    }

    /* Against the Python API's lines. */
    const char* base = strrchr(capture, '/');
    base = base ? base + 1 : capture;
    char stem[4096], path[4200];
    snprintf(stem, sizeof stem, "%s/%.*s", expected_dir,
             (int)(strrchr(base, '.') ? strrchr(base, '.') - base : (long)strlen(base)), base);
    snprintf(path, sizeof path, "%s.tsv", stem);
    FILE* fp = fopen(path, "r");
    if (fp == NULL) {
        perror(path);
        exit(2);
    }
    char want[8192], got[8192];
    size_t i = 0;
    while (fgets(want, sizeof want, fp) != NULL) {
        if (i >= f.n) {
            fprintf(stderr, "%s: the Python API has more flows than %zu\n", capture, f.n);
            ++check_failures;
            break;
        }
        flow_line(rules, &f, &l, i, got, sizeof got);
        if (strcmp(want, got) != 0) {
            fprintf(stderr, "%s: flow %zu differs\n  python: %s  C:      %s", capture, i, want, got);
            ++check_failures;
        }
        ++i;
    }
    fclose(fp);
    if (i != f.n) {
        fprintf(stderr, "%s: the Python API has %zu flows, the C interface %zu\n", capture, i, f.n);
        ++check_failures;
    }
    check_groups(rules, &f, &l, capture, stem);
    printf("%s: %zu flows, labels and report groups equal to the Python API's: %s\n", capture, f.n,
           check_failures ? "NO" : "yes");
    labels_free(&l), labels_free(&l4);
    flows_free(&f), flows_free(&g);
}

int main(int argc, char** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s RULES.nkc EXPECTED_DIR CAPTURE...\n", argv[0]);
        return 2;
    }
    nk_ruleset* rules = NULL;
    nk_classifier* clf = NULL;
    if (nk_ruleset_load(argv[1], &rules) != NK_OK || nk_classifier_new(rules, &clf) != NK_OK) {
        fprintf(stderr, "%s\n", nk_last_error());
        return 2;
    }
    for (int k = 3; k < argc; ++k) check_capture(rules, clf, argv[k], argv[2]);
    nk_classifier_free(clf);
    nk_ruleset_free(rules);
    return check_failures != 0;
}
