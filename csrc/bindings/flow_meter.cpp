// Shim for the pcap/pcapng flow meter. Defaults, validation wording and the
// Arrow batches live in nkclass/flows/pcap.py; this file moves bytes in and
// columns out with the GIL released.
#include <cmath>
#include <string>

#include "flow_sources.hpp"
#include "nkclass/stratum_scan.hpp"

namespace nkclass::bind {

namespace {

FlowMeterConfig meter_config(std::uint32_t payload_bytes, std::int64_t idle_timeout_ms,
                             std::int64_t active_timeout_ms, std::size_t max_flows,
                             std::size_t max_memory_bytes, bool decapsulate) {
    FlowMeterConfig cfg;
    cfg.decapsulate = decapsulate;
    cfg.payload_bytes = payload_bytes;
    cfg.idle_timeout_ms = idle_timeout_ms;
    cfg.active_timeout_ms = active_timeout_ms;
    cfg.max_flows = max_flows;
    cfg.max_memory_bytes = max_memory_bytes;
    if (const char* why = validate(cfg)) throw py::value_error(why);
    return cfg;
}

py::dict drain(FlowMeter& self, std::size_t max_flows) {
    const std::size_t k = std::min(max_flows, self.ready());
    const auto n = static_cast<py::ssize_t>(k);
    RecordArrays record(n);
    carray<std::uint8_t> tunnel(n), stratum_algo(n);
    carray<std::uint64_t> stratum_submits(n);
    carray<double> stratum_difficulty(n);
    carray<std::uint8_t> src_payload(static_cast<py::ssize_t>(self.payload_size(k, true)));
    carray<std::uint8_t> dst_payload(static_cast<py::ssize_t>(self.payload_size(k, false)));
    carray<std::int64_t> src_offsets(n + 1), dst_offsets(n + 1);
    FlowColumnsOut out{record.out(), src_payload.mutable_data(), src_offsets.mutable_data(),
                       dst_payload.mutable_data(), dst_offsets.mutable_data()};
    out.tunnel = tunnel.mutable_data();
    out.stratum_submits = stratum_submits.mutable_data();
    out.stratum_difficulty = stratum_difficulty.mutable_data();
    out.stratum_algo = stratum_algo.mutable_data();
    {
        py::gil_scoped_release nogil;
        self.drain(k, out);
    }
    py::dict cols;
    record.put(cols);
    cols["tunnel"] = tunnel;
    cols["stratum_submits"] = stratum_submits;
    cols["stratum_difficulty"] = stratum_difficulty;
    cols["stratum_algo"] = stratum_algo;
    cols["src_payload"] = py::make_tuple(src_payload, src_offsets);
    cols["dst_payload"] = py::make_tuple(dst_payload, dst_offsets);
    return cols;
}

py::dict counters(const FlowMeter& self) {
    const MeterCounters& c = self.counters();
    py::dict out;
    out["packets"] = c.packets;
    out["bytes"] = c.bytes;
    out["non_ip"] = c.non_ip;
    out["malformed"] = c.malformed;
    out["ip_fragments"] = c.ip_fragments;
    out["flows_emitted"] = c.flows_emitted;
    out["flows_evicted"] = c.flows_evicted;
    out["memory_evictions"] = c.memory_evictions;
    out["wire_len_fixed"] = c.wire_len_fixed;
    out["peak_memory_bytes"] = c.peak_memory_bytes;
    out["truncated"] = c.truncated;
    return out;
}

// The meter's stratum scanner over (side, bytes) pieces of one byte stream
// each side, for tests against a reference parser.
py::tuple stratum_counts(const py::list& pieces) {
    StratumFlow flow;
    for (const py::handle item : pieces) {
        const auto piece = item.cast<py::tuple>();
        const int side = piece[0].cast<int>();
        if (side != 0 && side != 1) throw py::value_error("side must be 0 or 1");
        const std::string data = piece[1].cast<std::string>();
        if (piece.size() > 2 && piece[2].cast<bool>()) stratum_gap(flow, side);
        stratum_scan(flow, side, reinterpret_cast<const std::uint8_t*>(data.data()),
                     data.size());
    }
    return py::make_tuple(flow.submits, flow.difficulty > 0 ? flow.difficulty : std::nan(""),
                          kStratumAlgoNames[static_cast<int>(flow.algo)]);
}

}  // namespace

void init_flow_meter(py::module_& m) {
    py::list tunnels;
    for (const char* t : kTunnelNames) tunnels.append(t);
    m.attr("TUNNEL_NAMES") = py::tuple(tunnels);
    py::list algos;
    for (const char* a : kStratumAlgoNames) algos.append(a);
    m.attr("STRATUM_ALGO_NAMES") = py::tuple(algos);
    m.def("stratum_counts", &stratum_counts, py::arg("pieces"),
          "Share submissions, latest difficulty (NaN: none) and algorithm family the "
          "meter's stratum scanner finds in [(side, bytes[, gap_before]), ...].");
    py::class_<FlowMeter>(m, "FlowMeter")
        .def(py::init([](std::uint32_t payload_bytes, std::int64_t idle_timeout_ms,
                         std::int64_t active_timeout_ms, std::size_t max_flows,
                         std::size_t max_memory_bytes, bool decapsulate) {
                 return new FlowMeter(meter_config(payload_bytes, idle_timeout_ms,
                                                   active_timeout_ms, max_flows,
                                                   max_memory_bytes, decapsulate));
             }),
             py::arg("payload_bytes") = 512, py::arg("idle_timeout_ms") = 120000,
             py::arg("active_timeout_ms") = 1800000, py::arg("max_flows") = 1000000,
             py::arg("max_memory_bytes") = FlowMeterConfig{}.max_memory_bytes,
             py::arg("decapsulate") = true)
        .def("feed", &feed_bytes<FlowMeter>, py::arg("buffer"),
             "Consume the next bytes of the capture file (any chunk size).")
        .def("ready", &FlowMeter::ready, "Emitted flows waiting to be drained.")
        .def("drain", &drain, py::arg("max_flows"),
             "Move up to max_flows emitted flows into a dict of numpy columns.")
        .def("finish", &finish_status<FlowMeter>,
             "End the input, emit all flows; returns {'status', 'offset', 'reason'}.")
        .def("counters", &counters, "Running totals as a dict of ints.");
    m.def("meter_peak_flow_bytes", &peak_flow_bytes, py::arg("payload_bytes"),
          "The most table memory one flow can take at this payload_bytes.");
}

}  // namespace nkclass::bind
