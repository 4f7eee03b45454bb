// The bidirectional flow table of the meter (private): an open-addressing
// hash index over a slab of flows, two intrusive recency lists for expiry,
// pooled payload buffers, and the queue of emitted records.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <unordered_map>
#include <vector>

#include "nkclass/huge_pages.hpp"
#include "nkclass/stratum_scan.hpp"

#include "nkclass/flow_meter.hpp"
#include "packet_decode.hpp"

namespace nkclass::meter {

// The unordered 5-tuple: (lo, lo_port) sorts before (hi, hi_port). Padding
// is explicit and zero so keys compare and hash as five 64-bit words.
struct FlowKey {
    std::uint8_t lo[16];
    std::uint8_t hi[16];
    std::uint16_t lo_port;
    std::uint16_t hi_port;
    std::uint8_t protocol;
    std::uint8_t tunnel;  // PacketInfo::tunnel: a tunnel's inner flows stay apart
    std::uint8_t pad[2];
};
static_assert(sizeof(FlowKey) == 40, "FlowKey must be five words");

inline constexpr std::uint32_t kNone = 0xffffffffu;
inline constexpr std::uint8_t kStratumProbes = 4;
inline constexpr std::uint8_t kStratumNo = 0xfe;
inline constexpr std::uint8_t kStratumYes = 0xff;

// Payload capture state of one direction.
struct SideState {
    std::uint32_t slot = kNone;  // PayloadPool slot, allocated on first payload
    std::uint32_t filled = 0;    // bytes captured contiguously from stream byte 0
    std::uint32_t max_end = 0;   // end of the furthest byte captured (TCP)
    std::uint32_t base_seq = 0;  // TCP sequence number of stream byte 0
    bool has_base = false;
    bool fin = false;
};

struct Flow {
    FlowKey key;
    std::uint32_t hash;
    std::uint32_t prev, next;  // recency list links (flow indices)
    bool initiator_is_lo;
    bool closed;               // RST or FIN both ways: on the closing list
    std::uint8_t tcp_flags;
    // Stratum scanning: 0 .. kStratumProbes-1 payload segments seen that did
    // not start a JSON object, then kStratumNo (never scanned) or kStratumYes
    // (a StratumFlow in FlowTable::stratum_ counts its shares).
    std::uint8_t stratum;
    std::int64_t first_ms, last_ms;
    std::int64_t touched_ms;   // meter clock when last seen (monotonic)
    std::uint64_t packets, bytes;
    SideState side[2];         // 0 = initiator (src), 1 = responder (dst)
};
// kFlowStateBytes covers a flow, its growth slack, four 8-byte index
// buckets and a free-list entry (see flow_meter.hpp).
static_assert(2 * sizeof(Flow) + 4 * 8 + 2 * sizeof(std::uint32_t) <= kFlowStateBytes,
              "kFlowStateBytes must bound the per-flow table memory");

static_assert(sizeof(std::pair<const std::uint32_t, StratumFlow>) + 3 * sizeof(void*) <=
                  kStratumStateBytes,
              "kStratumStateBytes must bound a stratum_ entry with its node and bucket");

// Fixed-size payload buffers with a fill bitmap each, in blocks so that
// slots never move. Bytes below SideState::filled are complete whatever
// their bits say; the bitmap marks early (out-of-order) bytes past it.
// A block is one huge page (see huge_pages.hpp: a capture of 100k flows
// fills over 100 MiB of slots at random), so the memory allocated stays
// within 2 MiB of the slots in use at the high-water mark. A slot id is its
// block << kSlotBits | its place in the block.
class PayloadPool {
public:
    explicit PayloadPool(std::uint32_t capacity);
    std::uint32_t acquire();
    void release(std::uint32_t slot) {
        free_.push_back(slot);
        --in_use_;
    }
    std::uint8_t* data(std::uint32_t slot) noexcept {
        return static_cast<std::uint8_t*>(blocks_[slot >> kSlotBits].get()) +
               std::size_t(slot & ((1u << kSlotBits) - 1)) * stride_;
    }
    std::uint8_t* bitmap(std::uint32_t slot) noexcept { return data(slot) + capacity_; }
    std::uint32_t capacity() const noexcept { return capacity_; }
    std::size_t stride() const noexcept { return stride_; }
    std::size_t in_use() const noexcept { return in_use_; }

private:
    static constexpr unsigned kSlotBits = 16;
    struct Free {
        void operator()(void* p) const noexcept { std::free(p); }
    };
    std::uint32_t capacity_;
    std::size_t stride_;         // capacity_ data bytes + bitmap bytes
    std::size_t per_block_;      // slots in a block
    std::size_t block_used_ = 0;  // slots of the last block ever handed out
    std::size_t in_use_ = 0;
    std::vector<std::unique_ptr<void, Free>> blocks_;
    std::vector<std::uint32_t> free_;
};

// One emitted flow awaiting drain; payloads live in EmittedFlows::payload.
struct EmittedFlow {
    std::int64_t ts_start, ts_end;
    ipv6_net_t src, dst;
    std::uint16_t src_port, dst_port;
    std::uint8_t protocol, tcp_flags, tunnel;
    std::uint64_t packets, bytes;
    std::uint64_t stratum_submits;
    double stratum_difficulty;  // 0: none seen
    StratumAlgo stratum_algo;
    std::size_t payload_at[2];  // start in `payload` per side
    std::uint32_t payload_len[2];
};

struct EmittedFlows {
    std::vector<EmittedFlow, HugePageAllocator<EmittedFlow>> rows;
    HugeByteBuffer payload;
    std::size_t head = 0;  // rows before head were drained
};

// A packet's flow key and hash, computed once before add() so callers can
// prefetch the table lines the packet will touch (see FlowTable::prefetch_*).
struct KeyedPacket {
    FlowKey key;
    std::uint32_t hash;
    bool from_lo;  // the sender is the key's `lo` endpoint
};

class FlowTable {
public:
    FlowTable(const FlowMeterConfig& cfg, MeterCounters* counters);

    static KeyedPacket key_of(const PacketInfo& pkt) noexcept;
    static void key_into(const PacketInfo& pkt, KeyedPacket* k) noexcept;

    // Accounts one decoded IP packet seen at `ts_ms` with `wire_bytes`;
    // `k` must be key_of(pkt).
    void add(const PacketInfo& pkt, const KeyedPacket& k, std::int64_t ts_ms,
             std::uint64_t wire_bytes);
    void add(const PacketInfo& pkt, std::int64_t ts_ms, std::uint64_t wire_bytes) {
        add(pkt, key_of(pkt), ts_ms, wire_bytes);
    }

    // Hints only (no effect on results): a caller that keys packets a few
    // steps before add() issues these in turn, so the index bucket, then the
    // flow, then its list neighbours and payload buffer are in cache by the
    // time add() runs. Each may read the index and flows speculatively.
    void prefetch_bucket(std::uint32_t hash) const noexcept {
        __builtin_prefetch(&index_[hash & mask_]);
    }
    void prefetch_flow(std::uint32_t hash) const noexcept;
    void prefetch_links(const KeyedPacket& k) noexcept;
    // Emits every flow in the table.
    void flush();

    EmittedFlows& emitted() noexcept { return out_; }
    const EmittedFlows& emitted() const noexcept { return out_; }

private:
    struct List {
        std::uint32_t head = kNone, tail = kNone;
    };
    struct Bucket {
        std::uint32_t hash;
        std::uint32_t flow;  // kNone when empty
    };

    std::uint32_t find(const FlowKey& key, std::uint32_t hash) const noexcept;
    std::uint32_t create(const FlowKey& key, std::uint32_t hash, bool initiator_is_lo);
    // Table memory charged against max_memory_bytes (see flow_meter.hpp).
    std::size_t memory_used() const noexcept {
        return live_ * kFlowStateBytes + pool_.in_use() * pool_.stride() +
               stratum_.size() * kStratumStateBytes;
    }
    void note_memory() noexcept {
        counters_->peak_memory_bytes =
            std::max<std::uint64_t>(counters_->peak_memory_bytes, memory_used());
    }
    // The flow to evict next, skipping `keep`: closed flows first (they are
    // complete already), then the least recently seen; kNone if none.
    std::uint32_t victim(std::uint32_t keep) const noexcept;
    // Emits flows until `bytes` more fit the memory bound (and, for a new
    // flow, until one more fits max_flows); never evicts `keep`.
    void make_room(std::uint32_t keep, std::size_t bytes, bool new_flow);
    void start_record(Flow& f, std::int64_t ts_ms);
    void emit(std::uint32_t idx, bool evicted);
    void expire();
    void capture(std::uint32_t idx, int side, const PacketInfo& pkt);
    // Feeds a TCP payload segment to the flow's stratum counters, starting
    // them when the flow looks like JSON-RPC.
    void count_stratum(std::uint32_t idx, int side, const PacketInfo& pkt);
    void start_stratum(std::uint32_t idx, const StratumFlow& state);
    void index_insert(std::uint32_t idx);
    void index_erase(std::uint32_t idx) noexcept;
    void grow_index();
    void unlink(List& list, std::uint32_t idx) noexcept;
    void push_back(List& list, std::uint32_t idx) noexcept;

    FlowMeterConfig cfg_;
    MeterCounters* counters_;
    std::vector<Flow, HugePageAllocator<Flow>> flows_;
    std::vector<std::uint32_t> free_flows_;
    std::size_t live_ = 0;
    std::vector<Bucket, HugePageAllocator<Bucket>> index_;  // power-of-two size, at most half full
    std::size_t mask_ = 0;
    List active_;   // open flows, least recently seen first
    List closing_;  // closed TCP flows waiting out kCloseGraceMs, oldest first
    std::int64_t clock_ms_ = INT64_MIN;  // latest timestamp seen
    PayloadPool pool_;
    std::unordered_map<std::uint32_t, StratumFlow> stratum_;  // by flow index
    EmittedFlows out_;
};

}  // namespace nkclass::meter
