// Shims for the flow export decoder and the capture reader of export
// traffic. Defaults, validation wording and the Arrow batches live in
// nkclass/flows/export.py; this file moves bytes in and columns out with
// the GIL released.
#include <cstring>
#include <string>

#include <pybind11/stl.h>

#include "flow_sources.hpp"
#include "nkclass/export_capture.hpp"
#include "nkclass/export_decoder.hpp"
#include "nkclass/udp_listener.hpp"

namespace nkclass::bind {

namespace {

ExportDecoderConfig decoder_config(std::int64_t template_timeout_ms, std::size_t max_templates,
                                   std::uint32_t payload_bytes) {
    ExportDecoderConfig cfg;
    cfg.template_timeout_ms = template_timeout_ms;
    cfg.max_templates = max_templates;
    cfg.payload_bytes = payload_bytes;
    if (const char* why = validate(cfg)) throw py::value_error(why);
    return cfg;
}

ipv6_net_t exporter_address(const py::bytes& exporter) {
    const std::string s = exporter;
    if (s.size() != 16) throw py::value_error("exporter must be 16 bytes (IPv6 or IPv4-mapped)");
    ipv6_net_t a;
    std::memcpy(a.bytes, s.data(), 16);
    return a;
}

void decode_one(ExportDecoder& self, const py::buffer& datagram, const py::bytes& exporter,
                std::int64_t received_ms) {
    const auto [data, n] = contiguous(datagram, "decode");
    const ipv6_net_t from = exporter_address(exporter);
    py::gil_scoped_release nogil;
    self.decode(data, n, from, received_ms);
}

// Many datagrams in one call: `data` holds them back to back, `offsets`
// their k + 1 boundaries, `exporters` k rows of 16 bytes, `received_ms` k
// times.
void decode_many(ExportDecoder& self, const py::buffer& data,
                 const carray<std::int64_t>& offsets, const carray<std::uint8_t>& exporters,
                 const carray<std::int64_t>& received_ms) {
    const auto [bytes, n] = contiguous(data, "decode_many");
    const std::size_t k = received_ms.size();
    require_length(received_ms, k, "received_ms");
    require_length(offsets, k + 1, "offsets");
    const ipv6_net_t* from = ipv6_rows(exporters, k, "exporters");
    const std::int64_t* off = offsets.data();
    for (std::size_t i = 0; i < k; ++i)
        if (off[i] < 0 || off[i] > off[i + 1] || std::size_t(off[i + 1]) > n)
            throw py::value_error("offsets must be non-decreasing and inside data");
    const std::int64_t* ts = received_ms.data();
    py::gil_scoped_release nogil;
    for (std::size_t i = 0; i < k; ++i)
        self.decode(bytes + off[i], std::size_t(off[i + 1] - off[i]), from[i], ts[i]);
}

}  // namespace

py::dict drain_records(ExportDecoder& self, std::size_t max_records) {
    const std::size_t k = std::min(max_records, self.ready());
    const auto n = static_cast<py::ssize_t>(k);
    RecordArrays record(n);
    carray<std::uint8_t> exporter({n, py::ssize_t(16)});
    carray<std::uint32_t> src_as(n), dst_as(n), sampling_rate(n);
    carray<std::uint8_t> payload(static_cast<py::ssize_t>(self.payload_size(k)));
    carray<std::int64_t> offsets(n + 1);
    const ExportColumnsOut out{record.out(),
                               src_as.mutable_data(),
                               dst_as.mutable_data(),
                               sampling_rate.mutable_data(),
                               exporter.mutable_data(),
                               payload.mutable_data(),
                               offsets.mutable_data()};
    {
        py::gil_scoped_release nogil;
        self.drain(k, out);
    }
    py::dict cols;
    record.put(cols);
    cols["src_as"] = src_as;
    cols["dst_as"] = dst_as;
    cols["sampling_rate"] = sampling_rate;
    cols["exporter"] = exporter;
    cols["src_payload"] = py::make_tuple(payload, offsets);
    return cols;
}

py::dict decoder_counters(const ExportDecoder& self) {
    const ExportCounters& c = self.counters();
    py::dict out;
    out["datagrams"] = c.datagrams;
    out["records"] = c.records;
    out["netflow_v5"] = c.netflow_v5;
    out["netflow_v9"] = c.netflow_v9;
    out["ipfix"] = c.ipfix;
    out["sflow"] = c.sflow;
    out["unknown_version"] = c.unknown_version;
    out["decode_errors"] = c.decode_errors;
    out["templates"] = c.templates;
    out["templates_withdrawn"] = c.templates_withdrawn;
    out["templates_expired"] = c.templates_expired;
    out["templates_dropped"] = c.templates_dropped;
    out["bad_templates"] = c.bad_templates;
    out["template_misses"] = c.template_misses;
    out["options_records"] = c.options_records;
    out["sampling_zero"] = c.sampling_zero;
    out["sflow_flow_samples"] = c.sflow_flow_samples;
    out["sflow_counter_samples"] = c.sflow_counter_samples;
    out["sflow_non_ip"] = c.sflow_non_ip;
    out["templates_held"] = self.templates_held();
    return out;
}

void init_export_decoder(py::module_& m) {
    const ExportDecoderConfig defaults;
    py::class_<ExportDecoder>(m, "ExportDecoder")
        .def(py::init([](std::int64_t template_timeout_ms, std::size_t max_templates,
                         std::uint32_t payload_bytes) {
                 return new ExportDecoder(
                     decoder_config(template_timeout_ms, max_templates, payload_bytes));
             }),
             py::arg("template_timeout_ms") = defaults.template_timeout_ms,
             py::arg("max_templates") = defaults.max_templates,
             py::arg("payload_bytes") = defaults.payload_bytes)
        .def("decode", &decode_one, py::arg("datagram"), py::arg("exporter"),
             py::arg("received_ms"), "Decode one datagram from a 16-byte exporter address.")
        .def("decode_many", &decode_many, py::arg("data"), py::arg("offsets").noconvert(),
             py::arg("exporters").noconvert(), py::arg("received_ms").noconvert(),
             "Decode datagrams laid back to back (offsets: k + 1 boundaries).")
        .def("ready", &ExportDecoder::ready)
        .def("drain", &drain_records, py::arg("max_records"),
             "Move up to max_records decoded records into a dict of numpy columns.")
        .def("counters", &decoder_counters, "Running totals as a dict of ints.");

    py::class_<ExportCapture>(m, "ExportCapture")
        .def(py::init([](std::int64_t template_timeout_ms, std::size_t max_templates,
                         std::uint32_t payload_bytes) {
                 return new ExportCapture(
                     decoder_config(template_timeout_ms, max_templates, payload_bytes));
             }),
             py::arg("template_timeout_ms") = defaults.template_timeout_ms,
             py::arg("max_templates") = defaults.max_templates,
             py::arg("payload_bytes") = defaults.payload_bytes)
        .def("feed", &feed_bytes<ExportCapture>, py::arg("buffer"),
             "Consume the next bytes of the capture file.")
        .def("finish", &finish_status<ExportCapture>,
             "End the input; returns {'status', 'offset', 'reason'}.")
        .def("ready", [](ExportCapture& self) { return self.decoder().ready(); },
             "Decoded records waiting to be drained.")
        .def("drain", [](ExportCapture& self, std::size_t max_records) {
                 return drain_records(self.decoder(), max_records);
             }, py::arg("max_records"))
        .def("counters", [](const ExportCapture& self) {
                 py::dict out = decoder_counters(const_cast<ExportCapture&>(self).decoder());
                 const ExportCaptureCounters& c = self.counters();
                 out["packets"] = c.packets;
                 out["udp"] = c.udp;
                 out["not_udp"] = c.not_udp;
                 out["fragments"] = c.fragments;
                 return out;
             }, "Running totals as a dict of ints.");

    py::class_<UdpListener>(m, "UdpListener")
        .def(py::init([](const std::vector<std::pair<std::string, std::uint16_t>>& addresses,
                         int rcvbuf_bytes) {
                 std::vector<ListenAddress> list;
                 for (const auto& [host, port] : addresses) list.push_back({host, port});
                 std::string error;
                 std::unique_ptr<UdpListener> l = UdpListener::open(list, rcvbuf_bytes, &error);
                 if (!l) throw py::value_error(error);
                 return l;
             }),
             py::arg("addresses"), py::arg("rcvbuf_bytes"))
        .def("poll", [](UdpListener& self, ExportDecoder& decoder, int timeout_ms,
                        std::size_t max_datagrams) {
                 py::gil_scoped_release nogil;
                 return self.poll(decoder, timeout_ms, max_datagrams);
             }, py::arg("decoder"), py::arg("timeout_ms"), py::arg("max_datagrams"),
             "Wait up to timeout_ms, receive and decode up to max_datagrams.")
        .def("ports", &UdpListener::ports)
        .def("rcvbuf_granted", &UdpListener::rcvbuf_granted)
        .def("counters", [](const UdpListener& self) {
                 const ListenerCounters& c = self.counters();
                 py::dict out;
                 out["datagrams"] = c.datagrams;
                 out["bytes"] = c.bytes;
                 out["batches"] = c.batches;
                 out["truncated"] = c.truncated;
                 out["kernel_drops"] = c.kernel_drops;
                 return out;
             });
}

}  // namespace nkclass::bind
