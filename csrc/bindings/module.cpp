// nkclass._core: the private pybind11 module. Each class has its own shim
// file; this one only wires them together.
#include "common.hpp"

namespace nkclass::bind {
void init_prefix_table(py::module_& m);
void init_port_table(py::module_& m);
void init_classifier(py::module_& m);
}  // namespace nkclass::bind

PYBIND11_MODULE(_core, m) {
    m.doc() = "nkclass native engine (private; use the nkclass package)";
    nkclass::bind::register_errors(m);
    nkclass::bind::init_prefix_table(m);
    nkclass::bind::init_port_table(m);
    nkclass::bind::init_classifier(m);
}
