// Flow metering: lookup, accounting, payload assembly and expiry.
#include "flow_table.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "nkclass/bytes.hpp"

namespace nkclass::meter {

namespace {

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::size_t kInitialIndexSize = 1024;

// A word loaded from memory as the big-endian number its bytes spell.
inline std::uint64_t be64(std::uint64_t loaded) noexcept {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return loaded;
#else
    return __builtin_bswap64(loaded);
#endif
}

inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) noexcept {
    const unsigned __int128 r = static_cast<unsigned __int128>(a ^ 0x9e3779b97f4a7c15ull) *
                                (b ^ 0xd6e8feb86659fd93ull);
    return static_cast<std::uint64_t>(r) ^ static_cast<std::uint64_t>(r >> 64);
}

inline bool same_key(const FlowKey& a, const FlowKey& b) noexcept {
    return std::memcmp(&a, &b, sizeof(FlowKey)) == 0;
}

static_assert(offsetof(FlowKey, lo_port) == 32 && offsetof(FlowKey, hi_port) == 34 &&
                  offsetof(FlowKey, protocol) == 36 && offsetof(FlowKey, tunnel) == 37,
              "key_into writes the ports, protocol and tunnel as the fifth word");

}  // namespace

// Writes the unordered key of a packet and its hash into *k. The hash is
// taken from the words in registers and each word is stored once, whole:
// built field by field and read back, the key's words could not be
// forwarded from the narrower stores, and that wait was the meter's
// costliest stall.
void FlowTable::key_into(const PacketInfo& p, KeyedPacket* k) noexcept {
    // Addresses compared as memcmp orders them, in two big-endian words.
    const std::uint64_t s0 = bytes::load8(p.src.bytes), s1 = bytes::load8(p.src.bytes + 8);
    const std::uint64_t d0 = bytes::load8(p.dst.bytes), d1 = bytes::load8(p.dst.bytes + 8);
    const std::uint64_t sh = be64(s0), dh = be64(d0), sl = be64(s1), dl = be64(d1);
    const bool from_lo = sh != dh ? sh < dh : sl != dl ? sl < dl : p.src_port <= p.dst_port;
    const std::uint64_t w0 = from_lo ? s0 : d0, w1 = from_lo ? s1 : d1;
    const std::uint64_t w2 = from_lo ? d0 : s0, w3 = from_lo ? d1 : s1;
    const std::uint16_t lo_port = from_lo ? p.src_port : p.dst_port;
    const std::uint16_t hi_port = from_lo ? p.dst_port : p.src_port;
    std::uint8_t tail[8] = {};  // lo_port, hi_port, protocol, tunnel, padding
    std::memcpy(tail, &lo_port, 2);
    std::memcpy(tail + 2, &hi_port, 2);
    tail[4] = p.protocol;
    tail[5] = p.tunnel;
    const std::uint64_t w4 = bytes::load8(tail);
    auto* out = reinterpret_cast<std::uint8_t*>(&k->key);
    std::memcpy(out, &w0, 8);
    std::memcpy(out + 8, &w1, 8);
    std::memcpy(out + 16, &w2, 8);
    std::memcpy(out + 24, &w3, 8);
    std::memcpy(out + 32, &w4, 8);
    const std::uint64_t h = mix(mix(w0, w1) ^ w4, mix(w2, w3));
    k->hash = static_cast<std::uint32_t>(h ^ (h >> 32));
    k->from_lo = from_lo;
}

namespace {

inline bool bit(const std::uint8_t* map, std::uint32_t i) noexcept {
    return (map[i >> 3] >> (i & 7)) & 1;
}

}  // namespace

PayloadPool::PayloadPool(std::uint32_t capacity)
    : capacity_(capacity),
      stride_(payload_buffer_bytes(capacity)),
      // (no payload kept: stride 0, and no slot is ever taken)
      per_block_(std::clamp<std::size_t>(kHugePage / std::max<std::size_t>(stride_, 1), 1,
                                         (std::size_t{1} << kSlotBits) - 1)) {}

std::uint32_t PayloadPool::acquire() {
    std::uint32_t slot;
    if (!free_.empty()) {
        slot = free_.back();
        free_.pop_back();
    } else {
        if (blocks_.empty() || block_used_ == per_block_) {
            if (blocks_.size() >= (std::size_t{1} << (32 - kSlotBits))) throw std::bad_alloc();
            blocks_.emplace_back(allocate_huge(per_block_ * stride_));
            block_used_ = 0;
        }
        slot = static_cast<std::uint32_t>((blocks_.size() - 1) << kSlotBits | block_used_++);
    }
    ++in_use_;
    std::memset(bitmap(slot), 0, stride_ - capacity_);
    return slot;
}

FlowTable::FlowTable(const FlowMeterConfig& cfg, MeterCounters* counters)
    : cfg_(cfg), counters_(counters), pool_(cfg.payload_bytes) {
    index_.assign(kInitialIndexSize, Bucket{0, kNone});
    mask_ = kInitialIndexSize - 1;
}

std::uint32_t FlowTable::find(const FlowKey& key, std::uint32_t hash) const noexcept {
    for (std::size_t i = hash & mask_;; i = (i + 1) & mask_) {
        const Bucket& b = index_[i];
        if (b.flow == kNone) return kNone;
        if (b.hash == hash && same_key(flows_[b.flow].key, key)) return b.flow;
    }
}

void FlowTable::index_insert(std::uint32_t idx) {
    if ((live_ + 1) * 2 > index_.size()) grow_index();
    std::size_t i = flows_[idx].hash & mask_;
    while (index_[i].flow != kNone) i = (i + 1) & mask_;
    index_[i] = Bucket{flows_[idx].hash, idx};
}

void FlowTable::grow_index() {
    std::vector<Bucket, HugePageAllocator<Bucket>> old(index_.size() * 2, Bucket{0, kNone});
    old.swap(index_);
    mask_ = index_.size() - 1;
    for (const Bucket& b : old) {
        if (b.flow == kNone) continue;
        std::size_t i = b.hash & mask_;
        while (index_[i].flow != kNone) i = (i + 1) & mask_;
        index_[i] = b;
    }
}

// Backward-shift deletion keeps linear probing free of tombstones.
void FlowTable::index_erase(std::uint32_t idx) noexcept {
    std::size_t i = flows_[idx].hash & mask_;
    while (index_[i].flow != idx) i = (i + 1) & mask_;
    for (std::size_t j = (i + 1) & mask_; index_[j].flow != kNone; j = (j + 1) & mask_) {
        const std::size_t home = index_[j].hash & mask_;
        // Move j back into the gap at i unless its home lies in (i, j].
        const bool home_between = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!home_between) {
            index_[i] = index_[j];
            i = j;
        }
    }
    index_[i].flow = kNone;
}

void FlowTable::unlink(List& list, std::uint32_t idx) noexcept {
    Flow& f = flows_[idx];
    if (f.prev != kNone) flows_[f.prev].next = f.next; else list.head = f.next;
    if (f.next != kNone) flows_[f.next].prev = f.prev; else list.tail = f.prev;
}

void FlowTable::push_back(List& list, std::uint32_t idx) noexcept {
    Flow& f = flows_[idx];
    f.prev = list.tail;
    f.next = kNone;
    if (list.tail != kNone) flows_[list.tail].next = idx; else list.head = idx;
    list.tail = idx;
}

void FlowTable::start_record(Flow& f, std::int64_t ts_ms) {
    f.closed = false;
    f.tcp_flags = 0;
    f.stratum = 0;
    f.first_ms = f.last_ms = ts_ms;
    f.packets = f.bytes = 0;
    for (SideState& s : f.side) s = SideState{};
}

std::uint32_t FlowTable::victim(std::uint32_t keep) const noexcept {
    for (const List* list : {&closing_, &active_}) {
        std::uint32_t i = list->head;
        if (i != kNone && i == keep) i = flows_[i].next;
        if (i != kNone) return i;
    }
    return kNone;
}

void FlowTable::make_room(std::uint32_t keep, std::size_t bytes, bool new_flow) {
    for (;;) {
        const bool flows_full = new_flow && live_ >= cfg_.max_flows;
        const bool memory_full = memory_used() + bytes > cfg_.max_memory_bytes;
        if (!flows_full && !memory_full) return;
        const std::uint32_t v = victim(keep);
        // validate() makes one flow always fit, so only `keep` is left
        // when nothing else can go; it then goes over by nothing.
        if (v == kNone) return;
        // Closed flows are complete already; only a live one counts as evicted.
        const bool live = !flows_[v].closed;
        emit(v, live);
        if (live && !flows_full) ++counters_->memory_evictions;
    }
}

std::uint32_t FlowTable::create(const FlowKey& key, std::uint32_t hash, bool initiator_is_lo) {
    make_room(kNone, kFlowStateBytes, true);
    std::uint32_t idx;
    if (!free_flows_.empty()) {
        idx = free_flows_.back();
        free_flows_.pop_back();
    } else {
        idx = static_cast<std::uint32_t>(flows_.size());
        flows_.emplace_back();
    }
    Flow& f = flows_[idx];
    f.key = key;
    f.hash = hash;
    f.initiator_is_lo = initiator_is_lo;
    index_insert(idx);
    ++live_;
    note_memory();
    push_back(active_, idx);
    return idx;
}

void FlowTable::emit(std::uint32_t idx, bool evicted) {
    Flow& f = flows_[idx];
    EmittedFlow r;
    r.ts_start = f.first_ms;
    r.ts_end = f.last_ms;
    const bool lo_is_src = f.initiator_is_lo;
    std::memcpy(r.src.bytes, lo_is_src ? f.key.lo : f.key.hi, 16);
    std::memcpy(r.dst.bytes, lo_is_src ? f.key.hi : f.key.lo, 16);
    r.src_port = lo_is_src ? f.key.lo_port : f.key.hi_port;
    r.dst_port = lo_is_src ? f.key.hi_port : f.key.lo_port;
    r.protocol = f.key.protocol;
    r.tunnel = f.key.tunnel;
    r.tcp_flags = f.tcp_flags;
    r.packets = f.packets;
    r.bytes = f.bytes;
    r.stratum_submits = 0;
    r.stratum_difficulty = 0;
    r.stratum_algo = StratumAlgo::kNone;
    if (f.stratum == kStratumYes) {
        const auto it = stratum_.find(idx);
        if (it != stratum_.end()) {
            r.stratum_submits = it->second.submits;
            r.stratum_difficulty = it->second.difficulty;
            r.stratum_algo = it->second.algo;
            stratum_.erase(it);
        }
        f.stratum = kStratumNo;
    }
    for (int s = 0; s < 2; ++s) {
        SideState& side = f.side[s];
        r.payload_at[s] = out_.payload.size();
        r.payload_len[s] = side.slot == kNone ? 0 : side.filled;
        if (side.slot != kNone) {
            const std::uint8_t* d = pool_.data(side.slot);
            out_.payload.append(d, side.filled);
            pool_.release(side.slot);
            side.slot = kNone;
        }
    }
    out_.rows.push_back(r);
    ++counters_->flows_emitted;
    if (evicted) ++counters_->flows_evicted;
    unlink(f.closed ? closing_ : active_, idx);
    index_erase(idx);
    free_flows_.push_back(idx);
    --live_;
}

// Both lists are ordered by touched_ms, so expired flows sit at the heads.
void FlowTable::expire() {
    const std::int64_t grace = std::min(kCloseGraceMs, cfg_.idle_timeout_ms);
    while (closing_.head != kNone && clock_ms_ - flows_[closing_.head].touched_ms >= grace)
        emit(closing_.head, false);
    while (active_.head != kNone &&
           clock_ms_ - flows_[active_.head].touched_ms >= cfg_.idle_timeout_ms)
        emit(active_.head, false);
}

void FlowTable::capture(std::uint32_t idx, int side_no, const PacketInfo& pkt) {
    Flow& f = flows_[idx];
    SideState& side = f.side[side_no];
    const std::uint32_t cap = pool_.capacity();
    std::int64_t start = side.filled;  // stream offset of the payload's first byte
    if (pkt.protocol == kProtoTcp) {
        const bool syn = pkt.tcp_flags & kTcpSyn;
        // Data on a SYN starts one past its sequence number.
        const std::uint32_t data_seq = pkt.tcp_seq + (syn ? 1 : 0);
        if (!side.has_base) {
            side.base_seq = data_seq;
            side.has_base = true;
        }
        start = static_cast<std::int32_t>(data_seq - side.base_seq);
    }
    if (side.filled >= cap || pkt.payload_len == 0) return;
    const std::int64_t end = std::min<std::int64_t>(start + pkt.payload_len, cap);
    const std::int64_t from = std::max<std::int64_t>(start, side.filled);
    if (from >= end) return;  // retransmission of captured bytes, or beyond the prefix
    if (side.slot == kNone) {
        make_room(idx, pool_.stride(), false);
        side.slot = pool_.acquire();
        note_memory();
    }
    std::uint8_t* data = pool_.data(side.slot);
    std::uint8_t* map = pool_.bitmap(side.slot);
    const std::uint8_t* src = pkt.payload + (from - start);
    // In-order data (the common case) extends the prefix with one copy; the
    // bitmap only tracks bytes at or past `filled` that arrived early.
    if (pkt.protocol != kProtoTcp || (from == side.filled && side.max_end <= side.filled)) {
        std::memcpy(data + from, src, std::size_t(end - from));
        side.filled = static_cast<std::uint32_t>(end);
        side.max_end = side.filled;
        return;
    }
    for (std::int64_t i = from; i < end; ++i, ++src) {
        const auto u = static_cast<std::uint32_t>(i);
        if (bit(map, u)) continue;  // first copy of a byte wins
        data[u] = *src;
        map[u >> 3] = static_cast<std::uint8_t>(map[u >> 3] | (1u << (u & 7)));
    }
    side.max_end = std::max(side.max_end, static_cast<std::uint32_t>(end));
    while (side.filled < cap && bit(map, side.filled)) ++side.filled;
}

void FlowTable::start_stratum(std::uint32_t idx, const StratumFlow& state) {
    make_room(idx, kStratumStateBytes, false);
    stratum_.insert_or_assign(idx, state);
    flows_[idx].stratum = kStratumYes;
    note_memory();
}

void FlowTable::count_stratum(std::uint32_t idx, int side, const PacketInfo& pkt) {
    Flow& f = flows_[idx];
    if (f.stratum != kStratumYes) {
        if (pkt.payload[0] != '{') {
            if (++f.stratum >= kStratumProbes) f.stratum = kStratumNo;
            return;
        }
        start_stratum(idx, StratumFlow{});
    }
    const auto it = stratum_.find(idx);
    if (it == stratum_.end()) return;
    StratumFlow& st = it->second;
    const bool syn = pkt.tcp_flags & kTcpSyn;
    // A side first seen in the middle of a line waits for the next one.
    if (!st.side[side].has_next && pkt.payload[0] != '{') stratum_gap(st, side);
    stratum_segment(st, side, pkt.tcp_seq + (syn ? 1 : 0), pkt.payload, pkt.payload_len);
}

KeyedPacket FlowTable::key_of(const PacketInfo& pkt) noexcept {
    KeyedPacket k;
    key_into(pkt, &k);
    return k;
}

void FlowTable::prefetch_flow(std::uint32_t hash) const noexcept {
    const std::uint32_t idx = index_[hash & mask_].flow;
    if (idx == kNone) return;
    const auto* f = reinterpret_cast<const char*>(&flows_[idx]);
    for (std::size_t off = 0; off < sizeof(Flow); off += 64) __builtin_prefetch(f + off);
}

// Speculative: the flow in the home bucket is taken for the packet's flow
// when its hash matches (a wrong guess only wastes a prefetch).
void FlowTable::prefetch_links(const KeyedPacket& k) noexcept {
    const std::uint32_t idx = index_[k.hash & mask_].flow;
    if (idx == kNone) return;
    const Flow& f = flows_[idx];
    if (f.hash != k.hash) return;
    if (f.prev != kNone) __builtin_prefetch(&flows_[f.prev].next, 1);
    if (f.next != kNone) __builtin_prefetch(&flows_[f.next].prev, 1);
    if (cfg_.payload_bytes != 0) {
        const SideState& side = f.side[k.from_lo == f.initiator_is_lo ? 0 : 1];
        if (side.slot != kNone && side.filled < pool_.capacity())
            __builtin_prefetch(pool_.data(side.slot) + side.filled, 1);
    }
}

void FlowTable::add(const PacketInfo& pkt, const KeyedPacket& k, std::int64_t ts_ms,
                    std::uint64_t wire_bytes) {
    if (ts_ms > clock_ms_) {
        clock_ms_ = ts_ms;
        expire();
    }
    const bool from_lo = k.from_lo;
    const FlowKey& key = k.key;
    const std::uint32_t hash = k.hash;
    std::uint32_t idx = find(key, hash);
    const bool tcp = pkt.protocol == kProtoTcp;
    const bool new_syn = tcp && (pkt.tcp_flags & (kTcpSyn | kTcpAck)) == kTcpSyn;
    if (idx != kNone) {
        Flow& f = flows_[idx];
        const bool cut = ts_ms - f.first_ms >= cfg_.active_timeout_ms;
        // A fresh SYN on a closed flow is a new connection reusing the ports.
        if (cut || (f.closed && new_syn)) {
            const bool initiator_is_lo = cut ? f.initiator_is_lo : from_lo;
            // A cut record's continuation keeps counting the same connection.
            StratumFlow carried;
            bool carry = false;
            if (cut && f.stratum == kStratumYes) {
                const auto it = stratum_.find(idx);
                if (it != stratum_.end()) {
                    carried = it->second;
                    carried.submits = 0;
                    carry = true;
                }
            }
            emit(idx, false);
            idx = kNone;
            const std::uint32_t again = create(key, hash, initiator_is_lo);
            start_record(flows_[again], ts_ms);
            idx = again;
            if (carry) start_stratum(idx, carried);
        }
    } else {
        idx = create(key, hash, from_lo);
        start_record(flows_[idx], ts_ms);
    }
    Flow& f = flows_[idx];
    f.first_ms = std::min(f.first_ms, ts_ms);
    f.last_ms = std::max(f.last_ms, ts_ms);
    f.touched_ms = clock_ms_;
    ++f.packets;
    f.bytes += wire_bytes;
    f.tcp_flags |= pkt.tcp_flags;
    const int side = from_lo == f.initiator_is_lo ? 0 : 1;
    if (cfg_.payload_bytes != 0) capture(idx, side, pkt);
    if (tcp && pkt.payload_len != 0 && f.stratum != kStratumNo) count_stratum(idx, side, pkt);
    if (tcp && !f.closed) {
        if (pkt.tcp_flags & kTcpFin) f.side[side].fin = true;
        if ((pkt.tcp_flags & kTcpRst) || (f.side[0].fin && f.side[1].fin)) {
            unlink(active_, idx);
            f.closed = true;
            push_back(closing_, idx);
            return;
        }
    }
    List& list = f.closed ? closing_ : active_;
    if (list.tail != idx) {
        unlink(list, idx);
        push_back(list, idx);
    }
}

void FlowTable::flush() {
    // Every live flow is emitted at once: room for their rows and payloads
    // is made in one step, not by the doublings (each a copy of all payload
    // bytes so far into fresh pages) of tens of thousands of appends.
    std::size_t rows = 0, bytes = 0;
    for (const List* list : {&closing_, &active_}) {
        for (std::uint32_t idx = list->head; idx != kNone; idx = flows_[idx].next) {
            ++rows;
            for (const SideState& side : flows_[idx].side)
                if (side.slot != kNone) bytes += side.filled;
        }
    }
    out_.rows.reserve(out_.rows.size() + rows);
    out_.payload.reserve(out_.payload.size() + bytes);
    while (closing_.head != kNone) emit(closing_.head, false);
    while (active_.head != kNone) emit(active_.head, false);
}

}  // namespace nkclass::meter
