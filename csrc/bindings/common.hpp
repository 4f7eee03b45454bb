// Helpers shared by the pybind11 shims: strict array types (never cast),
// the one error translator, and GIL-free array allocation.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "nkclass/classifier.hpp"
#include "nkclass/types.hpp"

namespace nkclass::bind {

namespace py = pybind11;

// C-contiguous arrays of exactly this dtype. Shims take them with
// py::arg().noconvert(), so pybind11 refuses other dtypes instead of
// force-casting (an int64 port of 70000 must never become 4464). The
// Python facade validates and names the column before calling.
template <typename T>
using carray = py::array_t<T, py::array::c_style>;

// Thrown by shims when a build fails; surfaces in Python as
// nkclass._core.BuildError(index, reason), a ValueError subclass.
struct BuildFailure {
    std::size_t index;
    std::string reason;
};

inline void raise_if_failed(const BuildStatus& s) {
    if (!s.ok) throw BuildFailure{s.index, s.reason};
}

void register_errors(py::module_& m);

// Checks that an (n, 16) uint8 array holds IPv6 addresses and returns them.
const ipv6_net_t* ipv6_rows(const carray<std::uint8_t>& a, const char* what);
// The same, also checking that there are `n` rows.
const ipv6_net_t* ipv6_rows(const carray<std::uint8_t>& a, std::size_t n, const char* what);

// Checks that `a` is one-dimensional (a 2-D array of n rows would pass a
// length check on shape(0) with fewer than n elements) and returns its length.
std::size_t column_length(const py::array& a, const char* what);
// Checks that `a` is one-dimensional with `n` elements.
void require_length(const py::array& a, std::size_t n, const char* what);

// An array in a pickled state: exactly a C-contiguous T array of `ndim`
// dimensions, never converted (a state is data to check, not to coerce).
template <typename T>
carray<T> state_array(const py::handle& obj, int ndim, const char* cls, const char* what) {
    if (!py::isinstance<carray<T>>(obj) || obj.cast<py::array>().ndim() != ndim)
        throw py::value_error(std::string("invalid ") + cls + " state: " + what + " must be a " +
                              std::to_string(ndim) + "-D " +
                              py::str(py::dtype::of<T>()).cast<std::string>() + " array");
    return obj.cast<carray<T>>();
}

// A (data, offsets) pair as a BytesColumn of n rows: both or neither given;
// offsets hold n + 1 non-decreasing entries inside data (checked once here,
// because the native pass trusts them).
BytesColumn bytes_column(const std::optional<carray<std::uint8_t>>& data,
                         const std::optional<carray<std::int64_t>>& offsets, std::size_t n,
                         const char* what);

// One address column given as either an (n,) uint32 IPv4 array or an
// (n, 16) uint8 IPv6 array (exactly one of the two).
AddressColumn address_column(const std::optional<carray<std::uint32_t>>& v4,
                             const std::optional<carray<std::uint8_t>>& v6, std::size_t n,
                             const char* what);

// The DNS tunnelling thresholds as a dict keyed by field name
// (min_conditions, min_queries, name_chars, label_bytes, entropy_bits,
// names, queries), and back: None gives the defaults, a dict must hold
// every key, and the values are range-checked (validate_dns_tunnel).
py::dict dns_tunnel_dict(const DnsTunnelThresholds& t);
DnsTunnelThresholds dns_tunnel_thresholds(const py::object& d);

// Prefix rows of one family from their (network, length, label) columns,
// checked for equal lengths (IPv6 networks as (n, 16) uint8 rows).
std::vector<Ipv4Prefix> ipv4_prefixes(const carray<std::uint32_t>& network,
                                      const carray<std::uint8_t>& length,
                                      const carray<std::uint32_t>& label);
std::vector<Ipv6Prefix> ipv6_prefixes(const carray<std::uint8_t>& network,
                                      const carray<std::uint8_t>& length,
                                      const carray<std::uint32_t>& label);

// Port rules from their (protocol, first_port, last_port) columns, checked
// for equal lengths.
std::vector<PortRule> port_rules(const carray<std::uint8_t>& protocol,
                                 const carray<std::uint16_t>& first_port,
                                 const carray<std::uint16_t>& last_port);

// Verdicts as an (n, 3) uint8 array [app, activity, rank], n uint16
// evidence bits and, when given, n uint32 service codes (else service 0).
std::vector<Candidate> candidates(const carray<std::uint8_t>& codes,
                                  const carray<std::uint16_t>& evidence,
                                  const carray<std::uint32_t>* services, const char* what);

// An optional column's data (nullptr when absent), its length checked.
template <typename T>
const T* optional_column(const std::optional<carray<T>>& a, std::size_t n, const char* what) {
    if (!a) return nullptr;
    require_length(*a, n, what);
    return a->data();
}

}  // namespace nkclass::bind
