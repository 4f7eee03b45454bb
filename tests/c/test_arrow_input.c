/* nk_classify_arrow on struct arrays built by hand, as a producer might get
 * them wrong: every malformed layout must be refused (NK_E_ARGUMENT or
 * NK_E_UNSUPPORTED naming the column) without reading out of bounds, and
 * the well-formed batch must label as nk_classify labels the same columns.
 * (arrow_batches.py checks batches pyarrow exports against the Python API.)
 *
 *   test_arrow_input RULES.nkc */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"

enum { N = 3, COLS = 6 };

/* A struct batch of N flows over fixed buffers; tests break a copy. */
typedef struct {
    struct ArrowSchema schema, child_schema[COLS];
    struct ArrowSchema* schema_children[COLS];
    struct ArrowArray array, child[COLS];
    struct ArrowArray* children[COLS];
    const void* buffers[COLS][3];
    const void* struct_buffers[1];
} batch_t;

static const uint32_t kSrc[N] = {0xAF2DB009u, 0x0A000001u, 0x0A000002u};
static uint8_t kDst[16 * N];
static const uint16_t kSport[N] = {50000, 40000, 1234};
static const uint16_t kDport[N] = {3333, 80, 443};
static const uint8_t kProto[N] = {6, 6, 17};
static const int32_t kPayloadOffsets[N + 1] = {0, 4, 4, 9};
static const char kPayload[] = "GET /abcde";

static void column(batch_t* b, int k, const char* name, const char* format, int n_buffers,
                   const void* b0, const void* b1, const void* b2) {
    struct ArrowSchema* s = &b->child_schema[k];
    memset(s, 0, sizeof *s);
    s->format = format;
    s->name = name;
    b->schema_children[k] = s;
    struct ArrowArray* a = &b->child[k];
    memset(a, 0, sizeof *a);
    a->length = N;
    a->n_buffers = n_buffers;
    b->buffers[k][0] = b0, b->buffers[k][1] = b1, b->buffers[k][2] = b2;
    a->buffers = b->buffers[k];
    b->children[k] = a;
}

static void make_batch(batch_t* b) {
    memset(b, 0, sizeof *b);
    for (int i = 0; i < N; ++i) {
        kDst[16 * i + 10] = kDst[16 * i + 11] = 0xff; /* ::ffff:192.0.2.(10+i) */
        kDst[16 * i + 12] = 192, kDst[16 * i + 14] = 2, kDst[16 * i + 15] = (uint8_t)(10 + i);
    }
    column(b, 0, "src_ip", "I", 2, NULL, kSrc, NULL);
    column(b, 1, "dst_ip", "w:16", 2, NULL, kDst, NULL);
    column(b, 2, "src_port", "S", 2, NULL, kSport, NULL);
    column(b, 3, "dst_port", "S", 2, NULL, kDport, NULL);
    column(b, 4, "protocol", "C", 2, NULL, kProto, NULL);
    column(b, 5, "src_payload", "z", 3, NULL, kPayloadOffsets, kPayload);
    b->schema.format = "+s";
    b->schema.name = "";
    b->schema.n_children = COLS;
    b->schema.children = b->schema_children;
    b->array.length = N;
    b->array.n_buffers = 1;
    b->struct_buffers[0] = NULL;
    b->array.buffers = b->struct_buffers;
    b->array.n_children = COLS;
    b->array.children = b->children;
}

static nk_classifier* clf;
static uint8_t activity[N + 8], app[N + 8];
static nk_labels out;

static nk_status run(batch_t* b) {
    memset(activity, 0xee, sizeof activity);
    return nk_classify_arrow(clf, &b->schema, &b->array, NULL, &out);
}

int main(int argc, char** argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s RULES.nkc\n", argv[0]);
        return 2;
    }
    nk_ruleset* rules = NULL;
    if (nk_ruleset_load(argv[1], &rules) != NK_OK || nk_classifier_new(rules, &clf) != NK_OK) {
        fprintf(stderr, "%s\n", nk_last_error());
        return 2;
    }
    memset(&out, 0, sizeof out);
    out.activity = activity, out.app = app;
    batch_t b;

    /* Well formed: the same labels as nk_classify over the same columns. */
    make_batch(&b);
    CHECK_STATUS(run(&b), NK_OK, "");
    uint8_t want_activity[N], want_app[N];
    nk_labels want;
    memset(&want, 0, sizeof want);
    want.activity = want_activity, want.app = want_app;
    const int64_t offsets[N + 1] = {0, 4, 4, 9};
    nk_flow_columns f;
    memset(&f, 0, sizeof f);
    f.n = N, f.src_ip4 = kSrc, f.dst_ip6 = kDst, f.src_port = kSport, f.dst_port = kDport;
    f.protocol = kProto, f.src_payload = (const uint8_t*)kPayload, f.src_payload_offsets = offsets;
    CHECK_STATUS(nk_classify(clf, &f, NULL, &want), NK_OK, "");
    CHECK(memcmp(activity, want_activity, N) == 0 && memcmp(app, want_app, N) == 0);
    CHECK(strcmp(nk_app_name(app[1]), "http") == 0);
    CHECK(activity[N] == 0xee); /* nothing past the batch */

    /* A sliced batch: the struct's offset applies to every child. */
    make_batch(&b);
    b.array.offset = 1, b.array.length = N - 1;
    CHECK_STATUS(run(&b), NK_OK, "");
    CHECK(memcmp(activity, want_activity + 1, N - 1) == 0 && activity[N - 1] == 0xee);

    /* Malformed calls and layouts. */
    CHECK_STATUS(nk_classify_arrow(NULL, &b.schema, &b.array, NULL, &out), NK_E_ARGUMENT,
                 "must not be NULL");
    CHECK_STATUS(nk_classify_arrow(clf, NULL, &b.array, NULL, &out), NK_E_ARGUMENT,
                 "must not be NULL");
    CHECK_STATUS(nk_classify_arrow(clf, &b.schema, NULL, NULL, &out), NK_E_ARGUMENT,
                 "must not be NULL");
    CHECK_STATUS(nk_classify_arrow(clf, &b.schema, &b.array, NULL, NULL), NK_E_ARGUMENT,
                 "must not be NULL");
    make_batch(&b);
    b.schema.format = "i";
    CHECK_STATUS(run(&b), NK_E_UNSUPPORTED, "struct array");
    b.schema.format = NULL;
    CHECK_STATUS(run(&b), NK_E_UNSUPPORTED, "(null)");
    make_batch(&b);
    b.array.n_children = COLS - 1;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "does not match its schema");
    make_batch(&b);
    b.array.length = -1;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "does not match its schema");
    make_batch(&b);
    b.array.children = NULL;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "does not match its schema");
    make_batch(&b);
    b.children[2] = NULL;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "child 2");
    make_batch(&b);
    b.child_schema[3].name = NULL;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "child 3");
    make_batch(&b);
    b.child[4].length = N - 1; /* shorter than the batch */
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'protocol'");
    make_batch(&b);
    b.array.offset = 2; /* children too short for the struct's offset */
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "shorter than the batch");
    make_batch(&b);
    b.child[2].buffers = NULL;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'src_port'");
    make_batch(&b);
    b.child[2].n_buffers = 1; /* no values buffer */
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'src_port'");
    make_batch(&b);
    b.buffers[3][1] = NULL;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'dst_port'");
    make_batch(&b);
    b.child_schema[1].format = "u"; /* text addresses */
    CHECK_STATUS(run(&b), NK_E_UNSUPPORTED, "column 'dst_ip'");
    make_batch(&b);
    b.child_schema[1].format = "w:4";
    CHECK_STATUS(run(&b), NK_E_UNSUPPORTED, "column 'dst_ip'");
    make_batch(&b);
    b.child_schema[2].format = "f"; /* float ports */
    CHECK_STATUS(run(&b), NK_E_UNSUPPORTED, "column 'src_port'");
    make_batch(&b);
    struct ArrowSchema dict;
    memset(&dict, 0, sizeof dict);
    dict.format = "S";
    b.child_schema[2].dictionary = &dict;
    CHECK_STATUS(run(&b), NK_E_UNSUPPORTED, "dictionary");
    make_batch(&b);
    static const uint32_t wide_ports[N] = {1, 70000, 3};
    b.child_schema[3].format = "I";
    b.buffers[3][1] = wide_ports;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "row 1 is 70000");
    make_batch(&b);
    static const int8_t negative[N] = {6, -6, 17};
    b.child_schema[4].format = "c";
    b.buffers[4][1] = negative;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "row 1 is -6");
    make_batch(&b);
    static const uint8_t valid_bits[1] = {0x5}; /* row 1 null */
    b.child[0].null_count = 1;
    b.buffers[0][0] = valid_bits;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'src_ip': row 1 is null");
    make_batch(&b);
    b.array.null_count = 1;
    b.struct_buffers[0] = valid_bits;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "row 1 of the batch is null");
    make_batch(&b);
    b.child_schema[4].name = "src_port"; /* two src_port, no protocol */
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "two columns are named 'src_port'");
    make_batch(&b);
    b.child_schema[4].name = "other";
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "missing column 'protocol'");
    make_batch(&b);
    static const int32_t backwards[N + 1] = {0, 4, 2, 9};
    b.buffers[5][1] = backwards;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'src_payload': row 1 ends before it starts");
    make_batch(&b);
    static const int32_t below[N + 1] = {-1, 4, 4, 9};
    b.buffers[5][1] = below;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'src_payload'");
    make_batch(&b);
    b.child[5].n_buffers = 2;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'src_payload': expected 3 buffers");
    make_batch(&b);
    b.buffers[5][2] = NULL;
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'src_payload': its data buffer is NULL");
    make_batch(&b);
    b.child_schema[5].format = "u";
    CHECK_STATUS(run(&b), NK_E_UNSUPPORTED, "column 'src_payload'");
    make_batch(&b);
    make_batch(&b);
    /* A timestamp column of an unknown unit, then one beyond int64 ms. */
    static const int64_t times[N] = {1, INT64_MAX, 3};
    struct ArrowSchema* extra_schema[COLS + 1];
    struct ArrowArray* extra_array[COLS + 1];
    struct ArrowSchema ts_schema;
    struct ArrowArray ts_array;
    const void* ts_buffers[2] = {NULL, times};
    memset(&ts_schema, 0, sizeof ts_schema);
    memset(&ts_array, 0, sizeof ts_array);
    ts_schema.name = "ts_start", ts_schema.format = "tsq:UTC";
    ts_array.length = N, ts_array.n_buffers = 2, ts_array.buffers = ts_buffers;
    for (int k = 0; k < COLS; ++k) extra_schema[k] = b.schema_children[k], extra_array[k] = b.children[k];
    extra_schema[COLS] = &ts_schema, extra_array[COLS] = &ts_array;
    b.schema.children = extra_schema, b.array.children = extra_array;
    b.schema.n_children = b.array.n_children = COLS + 1;
    CHECK_STATUS(run(&b), NK_E_UNSUPPORTED, "column 'ts_start': unknown timestamp format");
    ts_schema.format = "tss:UTC";
    CHECK_STATUS(run(&b), NK_E_ARGUMENT, "column 'ts_start': row 1 is beyond");
    ts_schema.format = "tsn:UTC";
    CHECK_STATUS(run(&b), NK_OK, "");
    CHECK(activity[0] != 0xee && activity[N] == 0xee);

    /* Nothing was written by refused calls: the last refused call above
     * left the activity column as the run() before it set it. */
    make_batch(&b);
    b.child_schema[1].format = "u";
    memset(activity, 0xee, sizeof activity);
    CHECK(nk_classify_arrow(clf, &b.schema, &b.array, NULL, &out) != NK_OK);
    CHECK(activity[0] == 0xee && activity[N - 1] == 0xee);

    nk_classifier_free(clf);
    nk_ruleset_free(rules);
    if (check_failures == 0) printf("all checks passed\n");
    return check_failures != 0;
}
