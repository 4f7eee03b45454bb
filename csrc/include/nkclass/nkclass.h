/* nkclass.h - the C interface of libnkclass.
 *
 * Classify network flows by the watched network paths they touch and by
 * what the traffic is doing, from C (or anything that calls C: Go, Rust,
 * Zig, ...). Plain C99; the library is C++17 inside and throws nothing
 * across this interface.
 *
 * The pieces:
 *   nk_ruleset    a compiled ruleset (`nkclass rules compile -o rules.nkc`),
 *                 loaded and checked whole; it names every code it outputs.
 *   nk_classifier the batch classifier built from a ruleset.
 *   nk_pair_cache optional: payload-confirmed mining pairs carried across
 *                 batches.
 *   nk_meter      the packet meter: pcap / pcapng bytes or single packets
 *                 in, bidirectional flow records out.
 *   nk_aggregator report groups of labelled flows: sums and distinct hosts
 *                 and peers per time bucket, path and activity.
 *
 * Conventions (every function):
 *   - Functions that can fail return an nk_status: NK_OK (0) or an error
 *     code. The text of the last error on the calling thread is
 *     nk_last_error() (and its byte offset, where one applies,
 *     nk_last_error_offset()). Functions that cannot fail return values.
 *   - Handles are opaque. *_new / *_load return them through an out
 *     pointer (set to NULL on failure); *_free(NULL) does nothing.
 *   - Input pointers are borrowed for the call only; the library keeps no
 *     pointer to caller memory after a call returns, and never frees it.
 *   - Byte order: IPv4 addresses as uint32_t are in host byte order
 *     (1.2.3.4 is 0x01020304); IPv6 addresses are 16 bytes in network byte
 *     order, exactly as on the wire, IPv4 as IPv4-mapped IPv6
 *     (::ffff:a.b.c.d). Ports are host-order integers.
 *   - Units: times are int64 milliseconds since the Unix epoch (UTC);
 *     packet timestamps given to the meter are nanoseconds. Byte and packet
 *     counters count both directions of a flow.
 *   - Sentinels: code 0 means "none" / "unknown" in every label column; AS
 *     number 0 means "unknown"; a NULL optional column means "absent".
 *
 * Thread-safety:
 *   - nk_ruleset and nk_classifier are immutable once made: any number of
 *     threads may call nk_classify / nk_classify_arrow and the name
 *     functions on the same objects at once, without locking. Free them
 *     only when no call on them is running.
 *   - nk_pair_cache locks itself: classify calls sharing one cache take
 *     turns for their whole batch.
 *   - nk_meter and nk_aggregator are not thread-safe: use one per thread
 *     (they share nothing).
 *   - nk_last_error is per thread.
 */
#ifndef NKCLASS_NKCLASS_H
#define NKCLASS_NKCLASS_H

#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32) && defined(NKCLASS_SHARED)
#  ifdef NKCLASS_BUILDING
#    define NK_API __declspec(dllexport)
#  else
#    define NK_API __declspec(dllimport)
#  endif
#elif defined(__GNUC__) || defined(__clang__)
#  define NK_API __attribute__((visibility("default")))
#else
#  define NK_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ versions */

/* The ABI this header describes. The major version changes whenever a
 * function, struct or constant changes incompatibly (structs passed by
 * pointer included); the minor version when something is added. A program
 * built against major M runs with a library whose nk_abi_version() has the
 * same major and a minor at least its own. */
#define NK_ABI_VERSION_MAJOR 1
#define NK_ABI_VERSION_MINOR 0
#define NK_ABI_VERSION ((NK_ABI_VERSION_MAJOR << 16) | NK_ABI_VERSION_MINOR)

/* The compiled ruleset file format this library reads and writes (3:
 * rulesets carry their DNS tunnelling thresholds, since 2 their dated
 * lists; files of formats 1 and 2 are refused with NK_E_VERSION and must be
 * compiled again). */
#define NK_RULESET_FORMAT_VERSION 3

/* NK_ABI_VERSION of the library running (major << 16 | minor). */
NK_API uint32_t nk_abi_version(void);
/* The library's version text, e.g. "0.1.0". Static storage. */
NK_API const char* nk_library_version(void);

/* ------------------------------------------------------------ errors */

typedef enum nk_status {
    NK_OK = 0,
    NK_E_ARGUMENT = 1,    /* a NULL handle or pointer, a bad length, size or column */
    NK_E_IO = 2,          /* a file could not be opened or read */
    NK_E_FOREIGN = 3,     /* not a compiled nkclass ruleset (another magic) */
    NK_E_VERSION = 4,     /* a ruleset of another format version or label vocabulary */
    NK_E_TRUNCATED = 5,   /* shorter than it says: a ruleset file or a capture */
    NK_E_CORRUPT = 6,     /* damaged or inconsistent: a checksum, a code, a capture record */
    NK_E_UNSUPPORTED = 7, /* an Arrow type or layout this library does not read */
    NK_E_NO_MEMORY = 8,   /* memory ran out; nothing was changed */
    NK_E_STATE = 9,       /* a call out of order (feeding a finished meter, mixing feeds) */
    NK_E_BUFFER = 10      /* a caller buffer is too small for the next record */
} nk_status;

/* The code's name, e.g. "NK_E_TRUNCATED"; "NK_E_UNKNOWN" for others. (An
 * int, so that any value may be passed.) */
NK_API const char* nk_status_name(int status);
/* The message of the last failing call on this thread ("" when none
 * failed yet): what was wrong and where. Valid until the next failing call
 * on this thread. */
NK_API const char* nk_last_error(void);
/* The byte offset of the last error on this thread (in a ruleset file or a
 * capture), or UINT64_MAX when it has none. */
NK_API uint64_t nk_last_error_offset(void);

/* ------------------------------------------------------------ vocabulary */

/* Label codes and names. App and activity codes are the fixed vocabulary
 * of this library version (a compiled ruleset records the vocabulary it was
 * compiled for and is refused by a library with another). Names are static
 * strings; an out-of-range code gives NULL. */
NK_API uint32_t nk_app_count(void);
NK_API const char* nk_app_name(uint32_t code);
NK_API uint32_t nk_activity_count(void);
NK_API const char* nk_activity_name(uint32_t code);
/* The code of a name, or -1 when the vocabulary has no such name. */
NK_API int32_t nk_app_code(const char* name);
NK_API int32_t nk_activity_code(const char* name);

/* Side codes: where the watched address sits. */
#define NK_SIDE_NONE 0
#define NK_SIDE_SRC 1
#define NK_SIDE_DST 2
#define NK_SIDE_BOTH 3
NK_API const char* nk_side_name(uint32_t code); /* "none", "src", "dst", "both" */

/* Confidence codes, from the strongest evidence behind the activity. */
#define NK_CONFIDENCE_NONE 0
#define NK_CONFIDENCE_LOW 1
#define NK_CONFIDENCE_MEDIUM 2
#define NK_CONFIDENCE_HIGH 3
NK_API const char* nk_confidence_name(uint32_t code);

/* Evidence bits: what decided a flow's app and activity. */
#define NK_EVIDENCE_PAYLOAD (1u << 0)
#define NK_EVIDENCE_SNI (1u << 1)
#define NK_EVIDENCE_HOST (1u << 2)
#define NK_EVIDENCE_DNS (1u << 3)
#define NK_EVIDENCE_IP_LIST (1u << 4)
#define NK_EVIDENCE_PORT (1u << 5)
#define NK_EVIDENCE_FLOW_SHAPE (1u << 6)
#define NK_EVIDENCE_PAIR_CACHE (1u << 7)
#define NK_EVIDENCE_ASN (1u << 8)
#define NK_EVIDENCE_WATCHED (1u << 9)
#define NK_EVIDENCE_DNS_LEARNED (1u << 10) /* unused here: the C interface keeps no name cache */
#define NK_EVIDENCE_DNS_SCORE (1u << 11)   /* the DNS tunnelling score of the query's zone */
#define NK_EVIDENCE_BITS 12
/* The name of bit `bit` (0..11), e.g. "ip_list"; NULL outside. */
NK_API const char* nk_evidence_name(uint32_t bit);
/* Writes the names of the bits set in `evidence`, joined by '|' ("port|asn";
 * "" for 0), as snprintf does: at most `capacity` bytes including the
 * terminating zero; returns the length of the whole text. */
NK_API size_t nk_evidence_text(uint16_t evidence, char* buffer, size_t capacity);

/* ------------------------------------------------------------ rulesets */

typedef struct nk_ruleset nk_ruleset;

/* Loads a compiled ruleset file (see csrc/include/nkclass/ruleset_file.hpp
 * for the format) and checks it whole before building anything: magic
 * (NK_E_FOREIGN), format version and label vocabulary (NK_E_VERSION),
 * length (NK_E_TRUNCATED), checksum, structure and every code
 * (NK_E_CORRUPT); nk_last_error_offset() gives the byte offset. Costs
 * memory and time in proportion to its rows (an AS table of 640,000
 * prefixes loads in about half a second). */
NK_API nk_status nk_ruleset_load(const char* path, nk_ruleset** out);
/* The same from `size` bytes in memory (copied as needed; the caller's
 * buffer may be freed after the call). */
NK_API nk_status nk_ruleset_load_bytes(const void* data, size_t size, nk_ruleset** out);
NK_API void nk_ruleset_free(nk_ruleset* rules);

/* What a ruleset names. Codes index these lists; code 0 is "none". Names
 * live as long as the ruleset; an out-of-range code gives NULL. */
NK_API const char* nk_ruleset_name(const nk_ruleset* rules);    /* the ruleset's own name */
NK_API const char* nk_ruleset_version(const nk_ruleset* rules); /* its version text */
NK_API uint32_t nk_ruleset_path_count(const nk_ruleset* rules);
NK_API const char* nk_ruleset_path_name(const nk_ruleset* rules, uint32_t code);
NK_API uint32_t nk_ruleset_service_count(const nk_ruleset* rules);
NK_API const char* nk_ruleset_service_name(const nk_ruleset* rules, uint32_t code);
/* 1 when the ruleset was compiled with the AS stage (peer AS numbers and
 * organisations), else 0. */
NK_API int nk_ruleset_has_as_stage(const nk_ruleset* rules);
/* AS organisation names (code 0 is ""); 0 / NULL without the AS stage. */
NK_API uint32_t nk_ruleset_org_count(const nk_ruleset* rules);
NK_API const char* nk_ruleset_org_name(const nk_ruleset* rules, uint32_t code);

/* ------------------------------------------------------------ classifying */

typedef struct nk_classifier nk_classifier;

/* The classifier of a ruleset. It keeps what it needs: the ruleset may be
 * freed before it. */
NK_API nk_status nk_classifier_new(const nk_ruleset* rules, nk_classifier** out);
NK_API void nk_classifier_free(nk_classifier* classifier);

typedef struct nk_pair_cache nk_pair_cache;

/* A mining pair cache: once a (src, dst) pair is confirmed mining by
 * payload, later flows of that pair (in flow time, up to `ttl_ms` after the
 * confirming flow's end) are labelled mining, evidence pair_cache. Holds at
 * most `capacity` (>= 1) pairs, evicting the least recently confirmed. */
NK_API nk_status nk_pair_cache_new(size_t capacity, int64_t ttl_ms, nk_pair_cache** out);
NK_API void nk_pair_cache_free(nk_pair_cache* cache);
NK_API size_t nk_pair_cache_size(const nk_pair_cache* cache); /* pairs held */

/* One batch of n flows as columns (structure of arrays). Each address
 * column is given in exactly one form: `*_ip4` (n uint32, host order) or
 * `*_ip6` (16 * n bytes, network order); the two sides may differ. Every
 * other pointer is NULL when absent; present columns hold n values. */
typedef struct nk_flow_columns {
    size_t n;
    const uint32_t* src_ip4;
    const uint8_t* src_ip6;
    const uint32_t* dst_ip4;
    const uint8_t* dst_ip6;
    const uint16_t* src_port;  /* required */
    const uint16_t* dst_port;  /* required */
    const uint8_t* protocol;   /* required: the IP protocol number (6 TCP, 17 UDP) */
    /* Optional payload prefixes (the first bytes each side sent): flow i's
     * bytes are payload[offsets[i] .. offsets[i + 1]); offsets holds n + 1
     * non-decreasing values from 0 or more, and payload holds offsets[n]
     * bytes. They feed the payload detectors (TLS SNI, HTTP Host, DNS,
     * stratum mining, SSH, VPNs, ...). */
    const uint8_t* src_payload;
    const int64_t* src_payload_offsets;
    const uint8_t* dst_payload;
    const int64_t* dst_payload_offsets;
    /* Optional measurements. With all five, the miner flow-shape score runs
     * (over the whole batch); a pair cache needs ts_end; a ruleset's dated
     * lists match a flow's peer at its ts_start (without it they match
     * nothing). */
    const int64_t* ts_start;   /* ms since the epoch, UTC */
    const int64_t* ts_end;     /* ms since the epoch, UTC */
    const uint64_t* packets;   /* both directions */
    const uint64_t* bytes;     /* both directions */
    const uint8_t* tcp_flags;  /* OR of the TCP flags of all the flow's packets */
    /* Optional AS numbers an exporter gave (0 = unknown: the ruleset's AS
     * table decides); used with the AS stage only. */
    const uint32_t* src_as;
    const uint32_t* dst_as;
} nk_flow_columns;

/* Where labels go: each non-NULL column receives n values. Columns left
 * NULL are not written (the classifier then uses scratch memory of its
 * own). Codes decode with the name functions above. */
typedef struct nk_labels {
    uint16_t* path;       /* nk_ruleset_path_name; the source's path when both are watched */
    uint8_t* side;        /* NK_SIDE_* */
    uint32_t* service;    /* nk_ruleset_service_name: the named peer service */
    uint8_t* app;         /* nk_app_name */
    uint8_t* activity;    /* nk_activity_name */
    uint16_t* evidence;   /* NK_EVIDENCE_* bits */
    uint8_t* confidence;  /* NK_CONFIDENCE_* */
    /* With the AS stage (else written as 0): the peer's AS number (the
     * exporter's where given, else the table's; 0 = unknown) and its
     * organisation (nk_ruleset_org_name). The peer is the endpoint outside
     * the watched network, or the destination when both or neither are. */
    uint32_t* peer_as;
    uint32_t* peer_org;
} nk_labels;

/* Labels flows [0, flows->n). Columns are checked first (NK_E_ARGUMENT
 * naming the column: a missing address or required column, an address
 * column given in both forms, payload offsets that decrease or start below
 * 0, a pair cache without ts_end); nothing is written then. O(n); the
 * flow-shape stage and scratch columns allocate O(n) temporary memory
 * (NK_E_NO_MEMORY if that fails). `cache` may be NULL. Thread-safe. */
NK_API nk_status nk_classify(const nk_classifier* classifier, const nk_flow_columns* flows,
                             nk_pair_cache* cache, const nk_labels* out);

/* ------------------------------------------------------------ Arrow */

/* The Arrow C Data Interface (https://arrow.apache.org/docs/format/CDataInterface.html),
 * defined here as the specification allows; a program that includes
 * Arrow's own definition first keeps it. */
#ifndef ARROW_C_DATA_INTERFACE
#define ARROW_C_DATA_INTERFACE

#define ARROW_FLAG_DICTIONARY_ORDERED 1
#define ARROW_FLAG_NULLABLE 2
#define ARROW_FLAG_MAP_KEYS_SORTED 4

struct ArrowSchema {
    const char* format;
    const char* name;
    const char* metadata;
    int64_t flags;
    int64_t n_children;
    struct ArrowSchema** children;
    struct ArrowSchema* dictionary;
    void (*release)(struct ArrowSchema*);
    void* private_data;
};

struct ArrowArray {
    int64_t length;
    int64_t null_count;
    int64_t offset;
    int64_t n_buffers;
    int64_t n_children;
    const void** buffers;
    struct ArrowArray** children;
    struct ArrowArray* dictionary;
    void (*release)(struct ArrowArray*);
    void* private_data;
};

#endif /* ARROW_C_DATA_INTERFACE */

/* Labels a record batch given as an Arrow struct array ("+s", as
 * RecordBatch export gives it) of the columns named as in nk_flow_columns:
 *   src_ip, dst_ip   uint32 ("I", IPv4 host order) or fixed_size_binary(16)
 *                    ("w:16", network order)
 *   src_port, dst_port, protocol, packets, bytes, tcp_flags, src_as, dst_as
 *                    any integer type, values in the column's range
 *                    (uint16, uint8, uint64, uint8, uint32)
 *   ts_start, ts_end timestamp of any unit (cut to ms toward zero, as
 *                    Arrow's cast) or int64 ms
 *   src_payload, dst_payload  binary ("z") or large_binary ("Z")
 * Other columns are ignored. Nulls: a null payload is empty; a null
 * tcp_flags gives flags 0 and keeps that flow out of the flow-shape stage;
 * a null elsewhere, or a null row of the struct, is NK_E_ARGUMENT naming
 * the column and row. Dictionary-encoded or other types are
 * NK_E_UNSUPPORTED naming the column and its format. Columns of the exact
 * types are read in place; others are converted into temporary memory.
 * The schema and array are borrowed: they are not released. Otherwise as
 * nk_classify (out columns hold array->length values). */
NK_API nk_status nk_classify_arrow(const nk_classifier* classifier,
                                   const struct ArrowSchema* schema,
                                   const struct ArrowArray* array, nk_pair_cache* cache,
                                   const nk_labels* out);

/* ------------------------------------------------------------ aggregating */

typedef struct nk_aggregator nk_aggregator;

/* Time buckets of a report: hours, days, ISO weeks (Monday first) or
 * calendar months, UTC. */
typedef enum nk_bucket {
    NK_BUCKET_HOUR = 0,
    NK_BUCKET_DAY = 1,
    NK_BUCKET_WEEK = 2,
    NK_BUCKET_MONTH = 3
} nk_bucket;

/* An aggregator: groups labelled flows by (time bucket, path, activity,
 * extra) with flow, byte and packet sums and the distinct watched hosts
 * and outside peers, in one native pass per batch (as nkclass.report does;
 * its groups are the Python report's). Not thread-safe: one aggregator per
 * thread. */
NK_API nk_status nk_aggregator_new(uint32_t bucket /* nk_bucket */, nk_aggregator** out);
NK_API void nk_aggregator_free(nk_aggregator* aggregator);

/* Adds a labelled batch: from `flows` ts_start (required, ms since the
 * epoch, not before 1970), src_ip / dst_ip (required, either form), bytes
 * and packets (NULL: 0); from `labels` path, activity and side (required).
 * `extra` (NULL: 0 for every flow) is an optional n-value key column of the
 * caller's, e.g. labels->app or labels->service to group by app or
 * service. Only flows on a watched path (side not NK_SIDE_NONE) add hosts
 * and peers: the host is the watched side's address (the source when both
 * are), the peer the other endpoint. NK_E_ARGUMENT names a missing column
 * or the first time before 1970; NK_E_CORRUPT when a sum would pass
 * 2^64 - 1. A refused batch adds nothing. */
NK_API nk_status nk_aggregator_add(nk_aggregator* aggregator, const nk_flow_columns* flows,
                                   const nk_labels* labels, const uint32_t* extra);

typedef struct nk_group {
    int64_t bucket_start_ms; /* the start of its bucket, ms since the epoch (UTC) */
    uint16_t path;           /* nk_ruleset_path_name */
    uint8_t activity;        /* nk_activity_name */
    uint32_t extra;          /* the caller's extra code (0 without) */
    uint64_t flows, bytes, packets;
    uint64_t hosts;          /* distinct watched IPv4 hosts */
    uint64_t peers;          /* distinct outside IPv4 peers */
    uint64_t hosts6;         /* distinct watched IPv6 /64s */
    uint64_t peers6;         /* distinct outside IPv6 /64s */
} nk_group;

/* Groups so far, in the order they were first seen. */
NK_API size_t nk_aggregator_group_count(const nk_aggregator* aggregator);
/* Group `index` (< nk_aggregator_group_count) into *out. */
NK_API nk_status nk_aggregator_group(const nk_aggregator* aggregator, size_t index,
                                     nk_group* out);

/* ------------------------------------------------------------ metering */

typedef struct nk_meter nk_meter;

typedef struct nk_meter_config {
    uint32_t payload_bytes;     /* payload prefix kept per direction, 0..65535 (512) */
    int64_t idle_timeout_ms;    /* a flow idle this long (capture time) ends (120000) */
    int64_t active_timeout_ms;  /* a flow this old is cut into a new record (1800000) */
    uint64_t max_flows;         /* flows held at once, 1..2^30 (1000000); when full the
                                   least recently seen is emitted early and counted */
    uint64_t max_memory_bytes;  /* flow state and payload buffers held at once (2^31);
                                   at least one flow's worth (about 1,728 bytes at the
                                   default payload_bytes); past it flows are emitted
                                   early and counted */
} nk_meter_config;

/* Fills `config` with the defaults given above. */
NK_API void nk_meter_config_init(nk_meter_config* config);

/* A meter (config NULL: the defaults). NK_E_ARGUMENT names a value out of
 * range. */
NK_API nk_status nk_meter_new(const nk_meter_config* config, nk_meter** out);
NK_API void nk_meter_free(nk_meter* meter);

/* Feeds the next `size` bytes of a capture file: classic pcap (either byte
 * order, micro- or nanosecond) or pcapng (EPB, SPB; several sections and
 * interfaces). Chunks may split records anywhere. Link types: Ethernet
 * (with VLAN tags), Linux SLL / SLL2, raw IP, BSD loopback; other link
 * types count packets as non-IP. A corrupt record stops parsing: this call
 * and later ones return NK_E_CORRUPT with the record's byte offset (flows
 * of the packets before it stay drainable). */
NK_API nk_status nk_meter_feed(nk_meter* meter, const void* data, size_t size);

/* Adds one captured packet, for collectors that capture themselves:
 * `link_type` is a pcap LINKTYPE_ value (1 Ethernet, 101 raw IP, 113 Linux
 * SLL, ...), `ts_ns` the capture time in ns since the epoch (kept as ms,
 * rounded down), `frame` the `caplen` captured bytes (at most 262144) and
 * `wire_len` the packet's length on the wire (bytes counted; caplen when
 * smaller or above 262144, counted in wire_len_fixed). Packets must come in capture-time order per flow for the
 * timeouts to work. A meter takes either nk_meter_feed or
 * nk_meter_add_packet, not both (NK_E_STATE). */
NK_API nk_status nk_meter_add_packet(nk_meter* meter, uint32_t link_type, int64_t ts_ns,
                                     const void* frame, size_t caplen, size_t wire_len);

/* Ends the input: every flow still held is emitted. Returns NK_OK, or how
 * a capture file ended badly (NK_E_TRUNCATED: inside a record or empty;
 * NK_E_CORRUPT: a bad record), with its offset. Later feeds are NK_E_STATE. */
NK_API nk_status nk_meter_finish(nk_meter* meter);

/* Flow records emitted and not yet drained. */
NK_API size_t nk_meter_ready(const nk_meter* meter);

/* Caller buffers for nk_meter_drain: every fixed column holds `capacity`
 * rows (src_ip and dst_ip 16 * capacity bytes). The payload columns are
 * optional (both NULL: payloads are dropped); when given, *_payload_offsets
 * holds capacity + 1 values and *_payload `*_payload_capacity` bytes
 * (capacity * payload_bytes always suffices). */
typedef struct nk_flow_buffers {
    size_t capacity;
    int64_t* ts_start;   /* ms since the epoch, UTC: the first packet */
    int64_t* ts_end;     /* the last packet */
    uint8_t* src_ip;     /* 16 bytes per row, network order; IPv4 as ::ffff:a.b.c.d */
    uint8_t* dst_ip;
    uint16_t* src_port;  /* 0 for protocols without ports */
    uint16_t* dst_port;
    uint8_t* protocol;
    uint64_t* packets;   /* both directions */
    uint64_t* bytes;     /* frame bytes on the wire, both directions */
    uint8_t* tcp_flags;  /* OR over the flow's packets */
    uint8_t* src_payload;
    size_t src_payload_capacity;
    int64_t* src_payload_offsets;
    uint8_t* dst_payload;
    size_t dst_payload_capacity;
    int64_t* dst_payload_offsets;
} nk_flow_buffers;

/* Moves up to `capacity` ready records into `out` (payload offsets start at
 * 0) and sets *rows to how many; the source of each record is the sender of
 * its first packet. Stops early where the next record's payload would not
 * fit; NK_E_BUFFER when not even one fits. */
NK_API nk_status nk_meter_drain(nk_meter* meter, const nk_flow_buffers* out, size_t* rows);

/* `rows` drained rows of `buffers` as classifier input (addresses as
 * 16-byte rows; payloads when the buffers have them). */
NK_API void nk_flow_columns_from_buffers(const nk_flow_buffers* buffers, size_t rows,
                                         nk_flow_columns* columns);

typedef struct nk_meter_counters {
    uint64_t packets;       /* packet records read */
    uint64_t bytes;         /* their wire lengths */
    uint64_t non_ip;        /* frames with no IPv4/IPv6 */
    uint64_t malformed;     /* IP packets too short or inconsistent, skipped */
    uint64_t ip_fragments;  /* IPv4 or IPv6 fragments */
    uint64_t flows_emitted; /* records produced, evicted ones included */
    uint64_t flows_evicted; /* records forced out by a full table */
    uint64_t memory_evictions; /* of those, forced out by max_memory_bytes */
    uint64_t wire_len_fixed;   /* packets whose wire length could not be right
                                  (below caplen, above 262144): caplen counted */
} nk_meter_counters;

/* Totals since the meter was made. */
NK_API void nk_meter_get_counters(const nk_meter* meter, nk_meter_counters* counters);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* NKCLASS_NKCLASS_H */
