#include "common.hpp"

namespace nkclass::bind {

void register_errors(py::module_& m) {
    static py::exception<BuildFailure> build_error(m, "BuildError", PyExc_ValueError);
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const BuildFailure& e) {
            py::tuple args = py::make_tuple(e.index, e.reason);
            PyErr_SetObject(build_error.ptr(), args.ptr());
        }
    });
}

const ipv6_net_t* ipv6_rows(const carray<std::uint8_t>& a, const char* what) {
    if (a.ndim() != 2 || a.shape(1) != 16)
        throw py::value_error(std::string(what) + ": expected an (n, 16) uint8 array");
    return reinterpret_cast<const ipv6_net_t*>(a.data());
}

void require_length(const py::array& a, std::size_t n, const char* what) {
    if (static_cast<std::size_t>(a.shape(0)) != n)
        throw py::value_error(std::string(what) + ": length " + std::to_string(a.shape(0)) +
                              " differs from the batch length " + std::to_string(n));
}

}  // namespace nkclass::bind
