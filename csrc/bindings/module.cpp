// nkclass._core: the private pybind11 module. Each class has its own shim
// file; this one only wires them together.
#include "common.hpp"
#include "nkclass/classifier.hpp"
#include "nkclass/vocab.hpp"

namespace nkclass::bind {
void init_prefix_table(py::module_& m);
void init_port_table(py::module_& m);
void init_pair_cache(py::module_& m);
void init_classifier(py::module_& m);
void init_flow_meter(py::module_& m);
void init_detectors(py::module_& m);
void init_aggregate(py::module_& m);
void init_export_decoder(py::module_& m);
void init_name_cache(py::module_& m);
void init_ruleset_file(py::module_& m);
}  // namespace nkclass::bind

PYBIND11_MODULE(_core, m) {
    m.doc() = "nkclass native engine (private; use the nkclass package)";
    nkclass::bind::register_errors(m);
    nkclass::bind::init_prefix_table(m);
    nkclass::bind::init_port_table(m);
    nkclass::bind::init_detectors(m);
    nkclass::bind::init_pair_cache(m);
    nkclass::bind::init_name_cache(m);
    nkclass::bind::init_classifier(m);
    nkclass::bind::init_flow_meter(m);
    nkclass::bind::init_aggregate(m);
    nkclass::bind::init_export_decoder(m);
    nkclass::bind::init_ruleset_file(m);

    namespace py = pybind11;
    py::list apps, activities;
    for (const char* name : nkclass::kAppNames) apps.append(name);
    for (const char* name : nkclass::kActivityNames) activities.append(name);
    m.attr("APP_NAMES") = py::tuple(apps);
    m.attr("ACTIVITY_NAMES") = py::tuple(activities);
    py::dict evidence;
    evidence["payload"] = int(nkclass::kEvPayload);
    evidence["sni"] = int(nkclass::kEvSni);
    evidence["host"] = int(nkclass::kEvHost);
    evidence["dns"] = int(nkclass::kEvDns);
    evidence["ip_list"] = int(nkclass::kEvIpList);
    evidence["port"] = int(nkclass::kEvPort);
    evidence["flow_shape"] = int(nkclass::kEvFlowShape);
    evidence["pair_cache"] = int(nkclass::kEvPairCache);
    evidence["asn"] = int(nkclass::kEvAsn);
    evidence["watched"] = int(nkclass::kEvWatched);
    evidence["dns_learned"] = int(nkclass::kEvDnsLearned);
    evidence["dns_score"] = int(nkclass::kEvDnsScore);
    m.attr("EVIDENCE_BITS") = evidence;
    py::dict ranks;
    ranks["weak"] = int(nkclass::kRankWeak);
    ranks["asn"] = int(nkclass::kRankAsn);
    ranks["named"] = int(nkclass::kRankNamed);
    ranks["payload"] = int(nkclass::kRankPayload);
    m.attr("RANKS") = ranks;
}
