// Shims for the payload detectors and the domain suffix matcher:
// DomainTable, PayloadInspector (passed to Classifier as payload=), the
// bulk PayloadInspector.inspect_batch and the test-facing inspect_payload.
// Bulk calls release the GIL; nothing here touches Python objects while it
// is released.
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "nkclass/detectors.hpp"
#include "nkclass/domains.hpp"
#include "nkclass/vocab.hpp"

namespace nkclass::bind {

namespace {

std::shared_ptr<DomainTable> build_domains(const std::vector<std::string>& suffixes,
                                           const carray<std::uint32_t>& services,
                                           const carray<std::uint8_t>& activities) {
    require_length(services, suffixes.size(), "services");
    require_length(activities, suffixes.size(), "activities");
    auto table = std::make_shared<DomainTable>();
    raise_if_failed(table->build(suffixes, services.data(), activities.data()));
    return table;
}

// Names come in as Python str; the table matches bytes, so encode once.
py::tuple lookup_names(const DomainTable& table, const std::vector<std::string>& names) {
    const auto n = static_cast<py::ssize_t>(names.size());
    carray<std::uint32_t> services(n);
    carray<std::uint8_t> activities(n);
    std::uint32_t* s = services.mutable_data();
    std::uint8_t* a = activities.mutable_data();
    {
        py::gil_scoped_release nogil;
        for (std::size_t i = 0; i < names.size(); ++i) {
            const DomainMatch m = table.lookup(names[i].data(), names[i].size());
            s[i] = m.service;
            a[i] = m.activity;
        }
    }
    return py::make_tuple(services, activities);
}

struct Inspector {
    std::shared_ptr<const DomainTable> domains;
    std::shared_ptr<const DetectorInspector> inspector;
};

py::dict detail(const DetectorInspector& insp, std::uint8_t protocol, std::uint16_t sport,
                std::uint16_t dport, const py::bytes& src, const py::bytes& dst) {
    const std::string s = src, d = dst;
    Detection det;
    Candidate found[8];
    const std::size_t k = insp.inspect_detail(
        protocol, sport, dport, reinterpret_cast<const std::uint8_t*>(s.data()), s.size(),
        reinterpret_cast<const std::uint8_t*>(d.data()), d.size(), found, 8, &det);
    py::dict out;
    out["app"] = kAppNames[det.app];
    out["activity"] = kActivityNames[det.activity];
    out["app_code"] = det.app;
    out["activity_code"] = det.activity;
    out["rank"] = det.rank;
    out["activity_rank"] = det.activity_rank;
    out["evidence"] = det.evidence;
    static const char* kKinds[] = {"", "sni", "host", "dns", "socks"};
    out["server_name"] = det.name_len ? py::object(py::str(det.name, det.name_len)) : py::none();
    out["name_source"] = det.name_len ? py::object(py::str(kKinds[det.name_kind])) : py::none();
    // Agents and ALPN protocol ids are opaque octets (RFC 7301): Latin-1
    // gives every byte a character, where UTF-8 decoding would throw.
    const auto latin1 = [](const char* p, std::size_t n) -> py::object {
        if (n == 0) return py::none();
        PyObject* s = PyUnicode_DecodeLatin1(p, static_cast<Py_ssize_t>(n), nullptr);
        if (s == nullptr) throw py::error_already_set();
        return py::reinterpret_steal<py::object>(s);
    };
    out["agent"] = latin1(det.agent, det.agent_len);
    out["coin"] = kCoinNames[det.coin];
    out["alpn"] = latin1(det.alpn, det.alpn_len);
    py::list cands;
    for (std::size_t i = 0; i < k; ++i)
        cands.append(py::make_tuple(found[i].app, found[i].activity, found[i].rank,
                                    found[i].evidence, found[i].service));
    out["candidates"] = cands;
    return out;
}

}  // namespace

std::shared_ptr<const PayloadInspector> native_payload_inspector(const py::handle& obj) {
    return obj.cast<const Inspector&>().inspector;
}

std::shared_ptr<const DomainTable> native_payload_domains(const py::handle& obj) {
    return obj.cast<const Inspector&>().domains;
}

void init_detectors(py::module_& m) {
    py::class_<DomainTable, std::shared_ptr<DomainTable>>(m, "DomainTable")
        .def(py::init(&build_domains), py::arg("suffixes"), py::arg("services").noconvert(),
             py::arg("activities").noconvert())
        .def("lookup", &lookup_names, py::arg("names"))
        .def("__len__", &DomainTable::size);

    py::class_<Inspector>(m, "PayloadInspector")
        .def(py::init([](const std::vector<std::string>& suffixes,
                         const carray<std::uint32_t>& services,
                         const carray<std::uint8_t>& activities) {
                 Inspector self;
                 self.domains = build_domains(suffixes, services, activities);
                 self.inspector = std::make_shared<DetectorInspector>(self.domains);
                 return self;
             }),
             py::arg("suffixes"), py::arg("services").noconvert(),
             py::arg("activities").noconvert())
        .def(
            "inspect",
            [](const Inspector& self, std::uint8_t protocol, std::uint16_t src_port,
               std::uint16_t dst_port, const py::bytes& src, const py::bytes& dst) {
                return detail(*self.inspector, protocol, src_port, dst_port, src, dst);
            },
            py::arg("protocol"), py::arg("src_port"), py::arg("dst_port"), py::arg("src_bytes"),
            py::arg("dst_bytes"))
        .def(
            "inspect_batch",
            [](const Inspector& self, carray<std::uint8_t> protocol,
               carray<std::uint16_t> src_port, carray<std::uint16_t> dst_port,
               std::optional<carray<std::uint8_t>> src_data,
               std::optional<carray<std::int64_t>> src_offsets,
               std::optional<carray<std::uint8_t>> dst_data,
               std::optional<carray<std::int64_t>> dst_offsets) {
                const std::size_t n = column_length(protocol, "protocol");
                require_length(src_port, n, "src_port");
                require_length(dst_port, n, "dst_port");
                const BytesColumn sc = bytes_column(src_data, src_offsets, n, "src_payload");
                const BytesColumn dc = bytes_column(dst_data, dst_offsets, n, "dst_payload");
                const auto len = static_cast<py::ssize_t>(n);
                carray<std::uint8_t> app(len), activity(len);
                carray<std::uint32_t> service(len);
                std::uint8_t* ap = app.mutable_data();
                std::uint8_t* ac = activity.mutable_data();
                std::uint32_t* sv = service.mutable_data();
                FlowColumns cols;
                cols.n = n;
                cols.protocol = protocol.data();
                cols.src_port = src_port.data();
                cols.dst_port = dst_port.data();
                cols.src_payload = sc;
                cols.dst_payload = dc;
                {
                    py::gil_scoped_release nogil;
                    constexpr std::size_t kBlock = 512;
                    PayloadCandidates found[kBlock];
                    for (std::size_t begin = 0; begin < n; begin += kBlock) {
                        const std::size_t count = std::min(kBlock, n - begin);
                        if (sc.data || dc.data)
                            self.inspector->inspect_block(cols, begin, count, found);
                        for (std::size_t k = 0; k < count; ++k) {
                            std::uint8_t a = 0, act = 0, act_rank = 0;
                            std::uint32_t svc = 0;
                            const std::size_t m = (sc.data || dc.data) ? found[k].n : 0;
                            for (std::size_t c = 0; c < m; ++c) {
                                const Candidate& f = found[k].c[c];
                                if (f.app) a = f.app;
                                if (f.activity && f.rank > act_rank) {
                                    act = f.activity;
                                    act_rank = f.rank;
                                }
                                if (f.service) svc = f.service;
                            }
                            ap[begin + k] = a;
                            ac[begin + k] = act;
                            sv[begin + k] = svc;
                        }
                    }
                }
                return py::make_tuple(app, activity, service);
            },
            py::arg("protocol").noconvert(), py::arg("src_port").noconvert(),
            py::arg("dst_port").noconvert(), py::arg("src_payload").noconvert() = py::none(),
            py::arg("src_payload_offsets").noconvert() = py::none(),
            py::arg("dst_payload").noconvert() = py::none(),
            py::arg("dst_payload_offsets").noconvert() = py::none());

    m.def(
        "inspect_payload",
        [](std::uint8_t protocol, std::uint16_t src_port, std::uint16_t dst_port,
           const py::bytes& src, const py::bytes& dst, py::object inspector) {
            static const DetectorInspector bare(nullptr);
            const DetectorInspector* insp = &bare;
            if (!inspector.is_none()) insp = inspector.cast<const Inspector&>().inspector.get();
            return detail(*insp, protocol, src_port, dst_port, src, dst);
        },
        py::arg("protocol"), py::arg("src_port"), py::arg("dst_port"), py::arg("src_bytes"),
        py::arg("dst_bytes"), py::arg("inspector") = py::none());

    m.def(
        "scan_stratum",
        [](const py::bytes& data) -> py::object {
            const std::string s = data;
            StratumMatch r;
            scan_stratum(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), &r);
            if (!r.mining) return py::none();
            py::dict out;
            out["coin"] = kCoinNames[r.coin];
            out["agent"] = r.agent_len ? py::object(py::bytes(r.agent, r.agent_len)) : py::none();
            return out;
        },
        py::arg("data"));

    m.def(
        "tls_sni",
        [](const py::bytes& data) -> py::object {
            const std::string s = data;
            char name[kMaxName + 1];
            const std::size_t k = tls_client_hello_sni(
                reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), name, nullptr);
            if (k == 0) return py::none();
            return py::str(name, k);
        },
        py::arg("data"));

    m.def(
        "quic_client_hello",
        [](const py::bytes& data) -> py::object {
            const std::string s = data;
            QuicHello hello;
            bool ok;
            {
                py::gil_scoped_release nogil;
                ok = quic_client_hello(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(),
                                       &hello);
            }
            if (!ok) return py::none();
            py::dict out;
            out["server_name"] =
                hello.name_len ? py::object(py::str(hello.name, hello.name_len)) : py::none();
            out["alpn"] =
                hello.alpn_len ? py::object(py::str(hello.alpn, hello.alpn_len)) : py::none();
            out["version"] = hello.version;
            return out;
        },
        py::arg("data"));
    m.attr("QUIC_DECRYPTION") = quic_decryption_available();

    py::list coins;
    for (const char* c : kCoinNames) coins.append(c);
    m.attr("COIN_NAMES") = py::tuple(coins);
}

}  // namespace nkclass::bind
