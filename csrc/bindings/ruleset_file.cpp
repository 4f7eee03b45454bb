// Shim for compiled ruleset files: the image as a dict of arrays in and
// out, the file bytes, and the classifier the C++ loader builds (the same
// one the C interface runs). Wording of errors lives in
// nkclass/rules/compiled.py.
#include <pybind11/stl.h>

#include <cstring>
#include <string>
#include <vector>

#include "common.hpp"
#include "nkclass/ruleset_file.hpp"
#include "nkclass/vocab.hpp"

namespace nkclass::bind {

py::object wrap_prefix_table(std::shared_ptr<const PrefixTable> table, py::tuple state);

namespace {

template <typename T>
carray<T> item(const py::dict& d, const char* key) {
    if (!d.contains(key)) throw py::key_error(key);
    return d[key].cast<carray<T>>();
}

template <typename T>
std::vector<T> vector_of(const carray<T>& a) {
    return std::vector<T>(a.data(), a.data() + a.size());
}

// The prefix rows of one family from a PrefixTable state tuple.
std::vector<Ipv4Prefix> ipv4_rows(const py::tuple& state) {
    return ipv4_prefixes(state[0].cast<carray<std::uint32_t>>(),
                         state[1].cast<carray<std::uint8_t>>(),
                         state[2].cast<carray<std::uint32_t>>());
}

std::vector<Ipv6Prefix> ipv6_rows_of(const py::tuple& state) {
    return ipv6_prefixes(state[3].cast<carray<std::uint8_t>>(),
                         state[4].cast<carray<std::uint8_t>>(),
                         state[5].cast<carray<std::uint32_t>>());
}

template <typename T>
carray<T> array_of(const std::vector<T>& v) {
    carray<T> out(static_cast<py::ssize_t>(v.size()));
    if (!v.empty()) std::memcpy(out.mutable_data(), v.data(), v.size() * sizeof(T));
    return out;
}

// The PrefixTable state tuple of a family pair (last_wins, first_stride 0).
py::tuple prefix_state(const std::vector<Ipv4Prefix>& v4, const std::vector<Ipv6Prefix>& v6,
                       bool last_wins) {
    carray<std::uint32_t> net4(static_cast<py::ssize_t>(v4.size())), lab4(net4.size());
    carray<std::uint8_t> len4(net4.size());
    for (std::size_t i = 0; i < v4.size(); ++i) {
        net4.mutable_data()[i] = v4[i].network;
        len4.mutable_data()[i] = v4[i].length;
        lab4.mutable_data()[i] = v4[i].label;
    }
    carray<std::uint8_t> net6({static_cast<py::ssize_t>(v6.size()), py::ssize_t(16)});
    carray<std::uint8_t> len6(static_cast<py::ssize_t>(v6.size()));
    carray<std::uint32_t> lab6(static_cast<py::ssize_t>(v6.size()));
    for (std::size_t i = 0; i < v6.size(); ++i) {
        std::memcpy(net6.mutable_data() + 16 * i, v6[i].network.bytes, 16);
        len6.mutable_data()[i] = v6[i].length;
        lab6.mutable_data()[i] = v6[i].label;
    }
    return py::make_tuple(net4, len4, lab4, net6, len6, lab6, last_wins, 0u);
}

py::tuple verdict_arrays(const std::vector<Candidate>& v) {
    carray<std::uint8_t> codes({static_cast<py::ssize_t>(v.size()), py::ssize_t(3)});
    carray<std::uint16_t> evidence(static_cast<py::ssize_t>(v.size()));
    carray<std::uint32_t> services(static_cast<py::ssize_t>(v.size()));
    for (std::size_t i = 0; i < v.size(); ++i) {
        codes.mutable_data()[3 * i] = v[i].app;
        codes.mutable_data()[3 * i + 1] = v[i].activity;
        codes.mutable_data()[3 * i + 2] = v[i].rank;
        evidence.mutable_data()[i] = v[i].evidence;
        services.mutable_data()[i] = v[i].service;
    }
    return py::make_tuple(codes, evidence, services);
}

RulesetImage image_from(const py::dict& d) {
    RulesetImage im;
    im.meta = d["meta"].cast<std::vector<std::string>>();
    im.apps.assign(std::begin(kAppNames), std::end(kAppNames));
    im.activities.assign(std::begin(kActivityNames), std::end(kActivityNames));
    im.path_names = d["path_names"].cast<std::vector<std::string>>();
    im.service_names = d["service_names"].cast<std::vector<std::string>>();
    const auto paths = d["paths"].cast<py::tuple>();
    const auto services = d["services"].cast<py::tuple>();
    im.path_v4 = ipv4_rows(paths);
    im.path_v6 = ipv6_rows_of(paths);
    im.service_v4 = ipv4_rows(services);
    im.service_v6 = ipv6_rows_of(services);
    const auto ports = d["ports"].cast<py::tuple>();
    im.port_rules = port_rules(ports[0].cast<carray<std::uint8_t>>(),
                               ports[1].cast<carray<std::uint16_t>>(),
                               ports[2].cast<carray<std::uint16_t>>());
    im.port_verdicts = candidates(item<std::uint8_t>(d, "port_codes"),
                                  item<std::uint16_t>(d, "port_evidence"), nullptr,
                                  "port verdicts");
    im.service_verdicts = candidates(item<std::uint8_t>(d, "service_codes"),
                                     item<std::uint16_t>(d, "service_evidence"), nullptr,
                                     "service verdicts");
    im.path_server_activity = vector_of(item<std::uint8_t>(d, "server_activity"));
    im.precedence = vector_of(item<std::uint16_t>(d, "precedence"));
    im.domain_suffixes = d["domain_suffixes"].cast<std::vector<std::string>>();
    im.domain_services = vector_of(item<std::uint32_t>(d, "domain_services"));
    im.domain_activities = vector_of(item<std::uint8_t>(d, "domain_activities"));
    if (im.domain_services.size() != im.domain_suffixes.size() ||
        im.domain_activities.size() != im.domain_suffixes.size())
        throw py::value_error("domain suffixes, services and activities differ in length");
    im.shape_min_conditions = d["shape_min_conditions"].cast<std::uint8_t>();
    im.shape_min_flows = d["shape_min_flows"].cast<std::uint32_t>();
    im.dns_tunnel = dns_tunnel_thresholds(d["dns_tunnel"]);
    im.as_stage = d["as_stage"].cast<bool>();
    if (im.as_stage) {
        if (!d["as_rows"].is_none()) {
            const auto rows = d["as_rows"].cast<py::tuple>();
            im.as_v4 = ipv4_rows(rows);
            im.as_v6 = ipv6_rows_of(rows);
        }
        im.as_numbers = vector_of(item<std::uint32_t>(d, "as_numbers"));
        im.as_orgs = vector_of(item<std::uint32_t>(d, "as_orgs"));
        im.as_entry_verdict = vector_of(item<std::uint16_t>(d, "as_entry_verdict"));
        if (im.as_orgs.size() != im.as_numbers.size() ||
            im.as_entry_verdict.size() != im.as_numbers.size())
            throw py::value_error("AS numbers, organisations and verdicts differ in length");
        im.as_org_names = d["as_org_names"].cast<std::vector<std::string>>();
        const auto as_services = item<std::uint32_t>(d, "as_services");
        im.as_verdicts = candidates(item<std::uint8_t>(d, "as_codes"),
                                    item<std::uint16_t>(d, "as_evidence"), &as_services,
                                    "AS verdicts");
    }
    im.dated = d.contains("dated") && d["dated"].cast<bool>();
    if (im.dated) {
        const auto rows = d["dated_rows"].cast<py::tuple>();
        im.dated_v4 = ipv4_rows(rows);
        im.dated_v6 = ipv6_rows_of(rows);
        const auto dated_services = item<std::uint32_t>(d, "dated_services");
        im.dated_verdicts = candidates(item<std::uint8_t>(d, "dated_codes"),
                                       item<std::uint16_t>(d, "dated_evidence"),
                                       &dated_services, "dated verdicts");
        const auto intervals = d["dated_intervals"].cast<py::tuple>();
        const auto key = intervals[0].cast<carray<std::uint32_t>>();
        const auto start = intervals[1].cast<carray<std::int64_t>>();
        const auto end = intervals[2].cast<carray<std::int64_t>>();
        const auto verdict = intervals[3].cast<carray<std::uint16_t>>();
        const std::size_t n = static_cast<std::size_t>(key.size());
        require_length(start, n, "dated start");
        require_length(end, n, "dated end");
        require_length(verdict, n, "dated verdict");
        im.dated_rows.resize(n);
        for (std::size_t i = 0; i < n; ++i)
            im.dated_rows[i] = {key.data()[i], verdict.data()[i], start.data()[i], end.data()[i]};
    }
    return im;
}

py::dict image_dict(const CompiledRuleset& loaded) {
    const RulesetImage& im = loaded.image();
    py::dict d;
    d["meta"] = im.meta;
    d["path_names"] = im.path_names;
    d["service_names"] = im.service_names;
    d["paths"] = prefix_state(im.path_v4, im.path_v6, true);
    d["services"] = prefix_state(im.service_v4, im.service_v6, true);
    carray<std::uint8_t> protocol(static_cast<py::ssize_t>(im.port_rules.size()));
    carray<std::uint16_t> first(protocol.size()), last(protocol.size());
    for (std::size_t i = 0; i < im.port_rules.size(); ++i) {
        protocol.mutable_data()[i] = im.port_rules[i].protocol;
        first.mutable_data()[i] = im.port_rules[i].first_port;
        last.mutable_data()[i] = im.port_rules[i].last_port;
    }
    d["ports"] = py::make_tuple(protocol, first, last);
    const py::tuple port_verdicts = verdict_arrays(im.port_verdicts);
    d["port_codes"] = port_verdicts[0];
    d["port_evidence"] = port_verdicts[1];
    const py::tuple service_verdicts = verdict_arrays(im.service_verdicts);
    d["service_codes"] = service_verdicts[0];
    d["service_evidence"] = service_verdicts[1];
    d["server_activity"] = array_of(im.path_server_activity);
    d["precedence"] = array_of(im.precedence);
    d["domain_suffixes"] = im.domain_suffixes;
    d["domain_services"] = array_of(im.domain_services);
    d["domain_activities"] = array_of(im.domain_activities);
    d["shape_min_conditions"] = im.shape_min_conditions;
    d["shape_min_flows"] = im.shape_min_flows;
    d["dns_tunnel"] = dns_tunnel_dict(im.dns_tunnel);
    d["as_stage"] = im.as_stage;
    d["as_rows"] = py::none();
    d["as_table"] = py::none();
    if (im.as_stage) {
        if (loaded.as_table()) {
            const py::tuple rows = prefix_state(im.as_v4, im.as_v6, false);
            d["as_rows"] = rows;
            d["as_table"] = wrap_prefix_table(loaded.as_table(), rows);
        }
        d["as_numbers"] = array_of(im.as_numbers);
        d["as_orgs"] = array_of(im.as_orgs);
        d["as_entry_verdict"] = array_of(im.as_entry_verdict);
        d["as_org_names"] = im.as_org_names;
        const py::tuple as_verdicts = verdict_arrays(im.as_verdicts);
        d["as_codes"] = as_verdicts[0];
        d["as_evidence"] = as_verdicts[1];
        d["as_services"] = as_verdicts[2];
    }
    d["dated"] = im.dated;
    if (im.dated) {
        d["dated_rows"] = prefix_state(im.dated_v4, im.dated_v6, true);
        const py::tuple dated_verdicts = verdict_arrays(im.dated_verdicts);
        d["dated_codes"] = dated_verdicts[0];
        d["dated_evidence"] = dated_verdicts[1];
        d["dated_services"] = dated_verdicts[2];
        const std::size_t n = im.dated_rows.size();
        carray<std::uint32_t> key(static_cast<py::ssize_t>(n));
        carray<std::int64_t> start(key.size()), end(key.size());
        carray<std::uint16_t> verdict(key.size());
        for (std::size_t i = 0; i < n; ++i) {
            key.mutable_data()[i] = im.dated_rows[i].key;
            start.mutable_data()[i] = im.dated_rows[i].start;
            end.mutable_data()[i] = im.dated_rows[i].end;
            verdict.mutable_data()[i] = im.dated_rows[i].verdict;
        }
        d["dated_intervals"] = py::make_tuple(key, start, end, verdict);
    }
    return d;
}

const char* error_name(RulesetError e) {
    switch (e) {
        case RulesetError::kNone: return "ok";
        case RulesetError::kTruncated: return "truncated";
        case RulesetError::kForeign: return "foreign";
        case RulesetError::kVersion: return "version";
        case RulesetError::kCorrupt: return "corrupt";
        case RulesetError::kNoMemory: return "no_memory";
    }
    return "corrupt";
}

}  // namespace

void init_ruleset_file(py::module_& m) {
    m.attr("RULESET_FORMAT_VERSION") = kRulesetFormatVersion;
    m.def(
        "encode_ruleset",
        [](const py::dict& image) {
            const RulesetImage im = image_from(image);
            std::vector<std::uint8_t> bytes;
            {
                py::gil_scoped_release nogil;
                bytes = encode_ruleset(im);
            }
            return py::bytes(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        },
        py::arg("image"),
        "The compiled-ruleset file bytes of an image (a dict of arrays; see "
        "nkclass/rules/compiled.py).");
    m.def(
        "load_ruleset",
        [](const py::buffer& data) -> py::tuple {
            const py::buffer_info info = data.request();
            if (info.ndim != 1 || info.itemsize != 1)
                throw py::value_error("expected a bytes-like object");
            std::shared_ptr<const CompiledRuleset> loaded;
            RulesetStatus status;
            {
                py::gil_scoped_release nogil;
                status = CompiledRuleset::load(static_cast<const std::uint8_t*>(info.ptr),
                                               static_cast<std::size_t>(info.size), &loaded);
            }
            if (!status.ok())
                return py::make_tuple(py::none(), error_name(status.error), status.offset,
                                      status.message);
            py::dict d = image_dict(*loaded);
            d["classifier"] = py::cast(std::const_pointer_cast<Classifier>(loaded->classifier_ptr()));
            return py::make_tuple(d, "ok", 0, "");
        },
        py::arg("data"),
        "(image dict with the built 'classifier', 'ok', 0, '') or (None, error kind, byte "
        "offset, message).");
}

}  // namespace nkclass::bind
