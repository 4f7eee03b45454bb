// Shim for the batch classifier. Column validation and error wording live
// in nkclass/classify/classifier.py; this only checks shapes and runs the pass
// with the GIL released.
#include <pybind11/stl.h>

#include <optional>
#include <vector>

#include "common.hpp"
#include "nkclass/classifier.hpp"
#include "nkclass/dated_table.hpp"
#include "nkclass/dns_tunnel.hpp"
#include "nkclass/flow_shape.hpp"
#include "nkclass/name_cache.hpp"
#include "nkclass/pair_cache.hpp"

namespace nkclass::bind {

std::shared_ptr<const PrefixTable> native_prefix_table(const py::handle& obj);
std::shared_ptr<const PortTable> native_port_table(const py::handle& obj);
std::shared_ptr<const PayloadInspector> native_payload_inspector(const py::handle& obj);
std::shared_ptr<const DomainTable> native_payload_domains(const py::handle& obj);

namespace {

// The port and protocol columns, checked: all a pass keyed on neither
// address reads.
FlowColumns port_columns(std::size_t n, const carray<std::uint16_t>& src_port,
                         const carray<std::uint16_t>& dst_port,
                         const carray<std::uint8_t>& protocol) {
    FlowColumns cols;
    cols.n = n;
    require_length(src_port, n, "src_port");
    require_length(dst_port, n, "dst_port");
    require_length(protocol, n, "protocol");
    cols.src_port = src_port.data();
    cols.dst_port = dst_port.data();
    cols.protocol = protocol.data();
    return cols;
}

// The columns every pass reads, checked once.
FlowColumns flow_columns(std::size_t n, const std::optional<carray<std::uint32_t>>& src_v4,
                         const std::optional<carray<std::uint8_t>>& src_v6,
                         const std::optional<carray<std::uint32_t>>& dst_v4,
                         const std::optional<carray<std::uint8_t>>& dst_v6,
                         const carray<std::uint16_t>& src_port,
                         const carray<std::uint16_t>& dst_port,
                         const carray<std::uint8_t>& protocol) {
    FlowColumns cols = port_columns(n, src_port, dst_port, protocol);
    cols.src_ip = address_column(src_v4, src_v6, n, "src_ip");
    cols.dst_ip = address_column(dst_v4, dst_v6, n, "dst_ip");
    return cols;
}

struct Measurements {
    std::optional<carray<std::int64_t>> ts_start, ts_end;
    std::optional<carray<std::uint64_t>> packets, bytes;
    std::optional<carray<std::uint8_t>> tcp_flags;

    void apply(FlowColumns& cols) const {
        cols.ts_start = optional_column(ts_start, cols.n, "ts_start");
        cols.ts_end = optional_column(ts_end, cols.n, "ts_end");
        cols.packets = optional_column(packets, cols.n, "packets");
        cols.bytes = optional_column(bytes, cols.n, "bytes");
        cols.tcp_flags = optional_column(tcp_flags, cols.n, "tcp_flags");
    }
};

}  // namespace

void init_classifier(py::module_& m) {
    py::class_<Classifier, std::shared_ptr<Classifier>>(m, "Classifier")
        .def(py::init([](py::object paths, py::object services, py::object ports,
                         carray<std::uint8_t> port_codes, carray<std::uint16_t> port_evidence,
                         carray<std::uint8_t> service_codes,
                         carray<std::uint16_t> service_evidence,
                         carray<std::uint8_t> path_server_activity,
                         carray<std::uint16_t> precedence, py::object payload,
                         unsigned shape_min_conditions, std::uint32_t shape_min_flows,
                         py::object dns_tunnel, py::object as_table,
                         std::optional<carray<std::uint8_t>> as_codes,
                         std::optional<carray<std::uint16_t>> as_evidence,
                         std::optional<carray<std::uint32_t>> as_services,
                         std::optional<carray<std::uint16_t>> as_entry_verdict,
                         py::object dated_prefixes, std::shared_ptr<DatedIntervals> dated,
                         std::optional<carray<std::uint8_t>> dated_codes,
                         std::optional<carray<std::uint16_t>> dated_evidence,
                         std::optional<carray<std::uint32_t>> dated_services) {
                 ClassifierSpec spec;
                 spec.paths = native_prefix_table(paths);
                 spec.services = native_prefix_table(services);
                 spec.ports = native_port_table(ports);
                 spec.port_verdicts = candidates(port_codes, port_evidence, nullptr, "port verdicts");
                 spec.service_verdicts =
                     candidates(service_codes, service_evidence, nullptr, "service verdicts");
                 spec.path_server_activity.assign(
                     path_server_activity.data(),
                     path_server_activity.data() + path_server_activity.size());
                 spec.precedence.assign(precedence.data(), precedence.data() + precedence.size());
                 if (!payload.is_none()) {
                     spec.payload = native_payload_inspector(payload);
                     spec.domains = native_payload_domains(payload);
                 }
                 if (shape_min_conditions > kShapeConditions)
                     throw py::value_error("shape_min_conditions must be 0..9");
                 spec.shape_min_conditions = static_cast<std::uint8_t>(shape_min_conditions);
                 spec.shape_min_flows = shape_min_flows;
                 spec.dns_tunnel = dns_tunnel_thresholds(dns_tunnel);
                 if (as_codes.has_value() != as_evidence.has_value() ||
                     as_codes.has_value() != as_services.has_value())
                     throw py::value_error("as_codes, as_evidence and as_services go together");
                 if (as_codes) {
                     spec.as_verdicts =
                         candidates(*as_codes, *as_evidence, &*as_services, "AS verdicts");
                     if (spec.as_verdicts.empty())
                         throw py::value_error("AS verdicts need their entry 0");
                     if (!as_entry_verdict)
                         throw py::value_error("AS verdicts need as_entry_verdict");
                     spec.as_entry_verdict.assign(
                         as_entry_verdict->data(),
                         as_entry_verdict->data() + as_entry_verdict->size());
                 }
                 if (!as_table.is_none()) spec.as_table = native_prefix_table(as_table);
                 if (dated_prefixes.is_none() != (dated == nullptr) ||
                     (dated != nullptr) != dated_codes.has_value() ||
                     dated_codes.has_value() != dated_evidence.has_value() ||
                     dated_codes.has_value() != dated_services.has_value())
                     throw py::value_error(
                         "dated_prefixes, dated, dated_codes, dated_evidence and dated_services "
                         "go together");
                 if (dated != nullptr) {
                     spec.dated_prefixes = native_prefix_table(dated_prefixes);
                     spec.dated = dated;
                     spec.dated_verdicts = candidates(*dated_codes, *dated_evidence,
                                                      &*dated_services, "dated verdicts");
                 }
                 raise_if_failed(Classifier::validate(spec));
                 return std::make_shared<Classifier>(std::move(spec));
             }),
             py::arg("paths"), py::arg("services"), py::arg("ports"),
             py::arg("port_codes").noconvert(), py::arg("port_evidence").noconvert(),
             py::arg("service_codes").noconvert(), py::arg("service_evidence").noconvert(),
             py::arg("path_server_activity").noconvert(), py::arg("precedence").noconvert(),
             py::kw_only(), py::arg("payload") = py::none(),
             py::arg("shape_min_conditions") = 7, py::arg("shape_min_flows") = 1,
             py::arg("dns_tunnel") = py::none(), py::arg("as_table") = py::none(),
             py::arg("as_codes").noconvert() = py::none(),
             py::arg("as_evidence").noconvert() = py::none(),
             py::arg("as_services").noconvert() = py::none(),
             py::arg("as_entry_verdict").noconvert() = py::none(),
             py::arg("dated_prefixes") = py::none(), py::arg("dated") = py::none(),
             py::arg("dated_codes").noconvert() = py::none(),
             py::arg("dated_evidence").noconvert() = py::none(),
             py::arg("dated_services").noconvert() = py::none())
        .def(
            "classify",
            [](const Classifier& self, std::size_t n,
               std::optional<carray<std::uint32_t>> src_v4,
               std::optional<carray<std::uint8_t>> src_v6,
               std::optional<carray<std::uint32_t>> dst_v4,
               std::optional<carray<std::uint8_t>> dst_v6, carray<std::uint16_t> src_port,
               carray<std::uint16_t> dst_port, carray<std::uint8_t> protocol,
               std::optional<carray<std::uint8_t>> src_payload,
               std::optional<carray<std::int64_t>> src_payload_offsets,
               std::optional<carray<std::uint8_t>> dst_payload,
               std::optional<carray<std::int64_t>> dst_payload_offsets,
               std::optional<carray<std::int64_t>> ts_start,
               std::optional<carray<std::int64_t>> ts_end,
               std::optional<carray<std::uint64_t>> packets,
               std::optional<carray<std::uint64_t>> bytes,
               std::optional<carray<std::uint8_t>> tcp_flags,
               std::shared_ptr<PairCache> cache,
               std::optional<carray<std::uint32_t>> src_as,
               std::optional<carray<std::uint32_t>> dst_as, std::shared_ptr<NameCache> names,
               bool name_columns) {
                FlowColumns cols =
                    flow_columns(n, src_v4, src_v6, dst_v4, dst_v6, src_port, dst_port, protocol);
                cols.src_payload = bytes_column(src_payload, src_payload_offsets, n, "src_payload");
                cols.dst_payload = bytes_column(dst_payload, dst_payload_offsets, n, "dst_payload");
                Measurements{ts_start, ts_end, packets, bytes, tcp_flags}.apply(cols);
                cols.src_as = optional_column(src_as, n, "src_as");
                cols.dst_as = optional_column(dst_as, n, "dst_as");

                const auto len = static_cast<py::ssize_t>(n);
                carray<std::uint16_t> path(len), evidence(len);
                carray<std::uint8_t> side(len), app(len), activity(len), confidence(len);
                carray<std::uint32_t> service(len);
                LabelColumns out{path.mutable_data(),     side.mutable_data(),
                                 service.mutable_data(),  app.mutable_data(),
                                 activity.mutable_data(), evidence.mutable_data(),
                                 confidence.mutable_data()};
                const bool with_as = !self.spec().as_verdicts.empty();
                carray<std::uint32_t> peer_as_out(with_as ? len : 0);
                if (with_as) out.peer_as = peer_as_out.mutable_data();
                const py::ssize_t name_len = name_columns ? len : 0;
                carray<std::uint32_t> sni(name_len), host(name_len), learned(name_len);
                NameDictionary dictionary;
                NameColumns name_out;
                if (name_columns) {
                    std::fill_n(sni.mutable_data(), n, 0u);
                    std::fill_n(host.mutable_data(), n, 0u);
                    std::fill_n(learned.mutable_data(), n, 0u);
                    name_out = {sni.mutable_data(), host.mutable_data(), learned.mutable_data(),
                                &dictionary};
                }
                {
                    py::gil_scoped_release nogil;
                    self.classify(cols, out, cache.get(), names.get(),
                                  name_columns ? &name_out : nullptr);
                }
                if (dictionary.failed()) throw std::bad_alloc();
                py::object names_out = py::none();
                if (name_columns) {
                    py::list dict;
                    for (const std::string& s : dictionary.names()) dict.append(py::str(s));
                    names_out = py::make_tuple(sni, host, learned, dict);
                }
                return py::make_tuple(path, side, service, app, activity, evidence, confidence,
                                      peer_as_out, names_out);
            },
            py::arg("n"), py::arg("src_v4").noconvert(), py::arg("src_v6").noconvert(),
            py::arg("dst_v4").noconvert(), py::arg("dst_v6").noconvert(),
            py::arg("src_port").noconvert(), py::arg("dst_port").noconvert(),
            py::arg("protocol").noconvert(), py::arg("src_payload").noconvert() = py::none(),
            py::arg("src_payload_offsets").noconvert() = py::none(),
            py::arg("dst_payload").noconvert() = py::none(),
            py::arg("dst_payload_offsets").noconvert() = py::none(), py::kw_only(),
            py::arg("ts_start").noconvert() = py::none(),
            py::arg("ts_end").noconvert() = py::none(),
            py::arg("packets").noconvert() = py::none(),
            py::arg("bytes").noconvert() = py::none(),
            py::arg("tcp_flags").noconvert() = py::none(), py::arg("cache") = py::none(),
            py::arg("src_as").noconvert() = py::none(),
            py::arg("dst_as").noconvert() = py::none(), py::arg("names") = py::none(),
            py::arg("name_columns") = false);

    m.def(
        "flow_shape_conditions",
        [](std::size_t n, std::optional<carray<std::uint32_t>> src_v4,
           std::optional<carray<std::uint8_t>> src_v6,
           std::optional<carray<std::uint32_t>> dst_v4,
           std::optional<carray<std::uint8_t>> dst_v6, carray<std::uint16_t> src_port,
           carray<std::uint16_t> dst_port, carray<std::uint8_t> protocol,
           carray<std::int64_t> ts_start, carray<std::int64_t> ts_end,
           carray<std::uint64_t> packets, carray<std::uint64_t> bytes,
           carray<std::uint8_t> tcp_flags, std::uint32_t min_flows) {
            FlowColumns cols =
                flow_columns(n, src_v4, src_v6, dst_v4, dst_v6, src_port, dst_port, protocol);
            Measurements{ts_start, ts_end, packets, bytes, tcp_flags}.apply(cols);
            carray<std::uint16_t> out(static_cast<py::ssize_t>(n));
            {
                py::gil_scoped_release nogil;
                flow_shape_conditions(cols, min_flows, out.mutable_data());
            }
            return out;
        },
        py::arg("n"), py::arg("src_v4").noconvert(), py::arg("src_v6").noconvert(),
        py::arg("dst_v4").noconvert(), py::arg("dst_v6").noconvert(),
        py::arg("src_port").noconvert(), py::arg("dst_port").noconvert(),
        py::arg("protocol").noconvert(), py::arg("ts_start").noconvert(),
        py::arg("ts_end").noconvert(), py::arg("packets").noconvert(),
        py::arg("bytes").noconvert(), py::arg("tcp_flags").noconvert(),
        py::arg("min_flows") = 1);

    m.def(
        "dns_tunnel_conditions",
        [](std::size_t n, carray<std::uint16_t> src_port, carray<std::uint16_t> dst_port,
           carray<std::uint8_t> protocol, std::optional<carray<std::uint8_t>> src_payload,
           std::optional<carray<std::int64_t>> src_payload_offsets,
           std::optional<carray<std::uint8_t>> dst_payload,
           std::optional<carray<std::int64_t>> dst_payload_offsets,
           std::optional<carray<std::uint64_t>> packets, py::object thresholds) {
            // Addresses play no part: the zone is the key.
            FlowColumns cols = port_columns(n, src_port, dst_port, protocol);
            cols.src_payload = bytes_column(src_payload, src_payload_offsets, n, "src_payload");
            cols.dst_payload = bytes_column(dst_payload, dst_payload_offsets, n, "dst_payload");
            cols.packets = optional_column(packets, n, "packets");
            const DnsTunnelThresholds t = dns_tunnel_thresholds(thresholds);
            carray<std::uint8_t> out(static_cast<py::ssize_t>(n));
            {
                py::gil_scoped_release nogil;
                dns_tunnel_conditions(cols, t, out.mutable_data());
            }
            return out;
        },
        py::arg("n"), py::arg("src_port").noconvert(), py::arg("dst_port").noconvert(),
        py::arg("protocol").noconvert(), py::arg("src_payload").noconvert() = py::none(),
        py::arg("src_payload_offsets").noconvert() = py::none(),
        py::arg("dst_payload").noconvert() = py::none(),
        py::arg("dst_payload_offsets").noconvert() = py::none(),
        py::arg("packets").noconvert() = py::none(),
        py::arg("thresholds") = py::none());
}

}  // namespace nkclass::bind
