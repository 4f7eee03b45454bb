#include "common.hpp"

#include <limits>
#include <optional>
#include <type_traits>

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

const ipv6_net_t* ipv6_rows(const carray<std::uint8_t>& a, std::size_t n, const char* what) {
    const ipv6_net_t* rows = ipv6_rows(a, what);
    if (static_cast<std::size_t>(a.shape(0)) != n)
        throw py::value_error(std::string(what) + ": length " + std::to_string(a.shape(0)) +
                              " differs from the batch length " + std::to_string(n));
    return rows;
}

std::size_t column_length(const py::array& a, const char* what) {
    if (a.ndim() != 1)
        throw py::value_error(std::string(what) + ": expected a 1-D array, got " +
                              std::to_string(a.ndim()) + " dimensions");
    return static_cast<std::size_t>(a.shape(0));
}

void require_length(const py::array& a, std::size_t n, const char* what) {
    if (column_length(a, what) != n)
        throw py::value_error(std::string(what) + ": length " + std::to_string(a.shape(0)) +
                              " differs from the batch length " + std::to_string(n));
}

BytesColumn bytes_column(const std::optional<carray<std::uint8_t>>& data,
                         const std::optional<carray<std::int64_t>>& offsets, std::size_t n,
                         const char* what) {
    BytesColumn col;
    if (!data && !offsets) return col;
    if (!data || !offsets)
        throw py::value_error(std::string(what) + ": data and offsets go together");
    require_length(*offsets, n + 1, what);
    const std::int64_t* off = offsets->data();
    const std::int64_t size = static_cast<std::int64_t>(data->size());
    // The pass trusts the offsets, so check them once here.
    if (off[0] < 0 || off[n] > size)
        throw py::value_error(std::string(what) + ": offsets point outside the data");
    for (std::size_t i = 0; i < n; ++i)
        if (off[i + 1] < off[i])
            throw py::value_error(std::string(what) + ": offsets decrease at row " +
                                  std::to_string(i));
    col.data = data->data();
    col.offsets = off;
    return col;
}

AddressColumn address_column(const std::optional<carray<std::uint32_t>>& v4,
                             const std::optional<carray<std::uint8_t>>& v6, std::size_t n,
                             const char* what) {
    AddressColumn col;
    if (v4.has_value() == v6.has_value())
        throw py::value_error(std::string(what) + ": give exactly one of the IPv4 or IPv6 forms");
    if (v4) {
        require_length(*v4, n, what);
        col.v4 = v4->data();
    } else {
        col.v6 = ipv6_rows(*v6, n, what);
    }
    return col;
}

py::dict dns_tunnel_dict(const DnsTunnelThresholds& t) {
    py::dict d;
    d["min_conditions"] = t.min_conditions;
    d["min_queries"] = t.min_queries;
    d["name_chars"] = t.name_chars;
    d["label_bytes"] = t.label_bytes;
    d["entropy_bits"] = t.entropy_bits;
    d["names"] = t.names;
    d["queries"] = t.queries;
    return d;
}

namespace {

template <typename T>
T threshold(const py::dict& d, const char* key) {
    if (!d.contains(key)) throw py::value_error(std::string("dns_tunnel: missing ") + key);
    const py::object v = d[key];
    if constexpr (std::is_integral_v<T>) {
        // Exactly an int (not a bool), within T, never wrapped.
        if (!PyLong_CheckExact(v.ptr()))
            throw py::type_error(std::string("dns_tunnel ") + key + " must be an int");
        const auto x = v.cast<long long>();
        if (x < 0 || static_cast<unsigned long long>(x) > std::numeric_limits<T>::max())
            throw py::value_error(std::string("dns_tunnel ") + key + " is out of range");
        return static_cast<T>(x);
    } else {
        if (!PyFloat_CheckExact(v.ptr()) && !PyLong_CheckExact(v.ptr()))
            throw py::type_error(std::string("dns_tunnel ") + key + " must be a number");
        return v.cast<T>();
    }
}

}  // namespace

DnsTunnelThresholds dns_tunnel_thresholds(const py::object& obj) {
    DnsTunnelThresholds t;
    if (obj.is_none()) return t;
    const auto d = obj.cast<py::dict>();
    t.min_conditions = threshold<std::uint8_t>(d, "min_conditions");
    t.min_queries = threshold<std::uint64_t>(d, "min_queries");
    t.name_chars = threshold<std::uint32_t>(d, "name_chars");
    t.label_bytes = threshold<std::uint8_t>(d, "label_bytes");
    t.entropy_bits = threshold<double>(d, "entropy_bits");
    t.names = threshold<std::uint32_t>(d, "names");
    t.queries = threshold<std::uint64_t>(d, "queries");
    if (const char* why = validate_dns_tunnel(t)) throw py::value_error(why);
    return t;
}

std::vector<Ipv4Prefix> ipv4_prefixes(const carray<std::uint32_t>& network,
                                      const carray<std::uint8_t>& length,
                                      const carray<std::uint32_t>& label) {
    const std::size_t n = column_length(network, "v4_network");
    require_length(length, n, "v4_length");
    require_length(label, n, "v4_label");
    std::vector<Ipv4Prefix> rows(n);
    for (std::size_t i = 0; i < n; ++i)
        rows[i] = {network.data()[i], length.data()[i], label.data()[i]};
    return rows;
}

std::vector<Ipv6Prefix> ipv6_prefixes(const carray<std::uint8_t>& network,
                                      const carray<std::uint8_t>& length,
                                      const carray<std::uint32_t>& label) {
    const ipv6_net_t* nets = ipv6_rows(network, "v6_network");
    const std::size_t n = static_cast<std::size_t>(network.shape(0));
    require_length(length, n, "v6_length");
    require_length(label, n, "v6_label");
    std::vector<Ipv6Prefix> rows(n);
    for (std::size_t i = 0; i < n; ++i) rows[i] = {nets[i], length.data()[i], label.data()[i]};
    return rows;
}

std::vector<PortRule> port_rules(const carray<std::uint8_t>& protocol,
                                 const carray<std::uint16_t>& first_port,
                                 const carray<std::uint16_t>& last_port) {
    const std::size_t n = column_length(protocol, "protocol");
    require_length(first_port, n, "first_port");
    require_length(last_port, n, "last_port");
    std::vector<PortRule> rows(n);
    for (std::size_t i = 0; i < n; ++i)
        rows[i] = {protocol.data()[i], first_port.data()[i], last_port.data()[i]};
    return rows;
}

std::vector<Candidate> candidates(const carray<std::uint8_t>& codes,
                                  const carray<std::uint16_t>& evidence,
                                  const carray<std::uint32_t>* services, const char* what) {
    if (codes.ndim() != 2 || codes.shape(1) != 3)
        throw py::value_error(std::string(what) + ": expected an (n, 3) uint8 array");
    const std::size_t n = static_cast<std::size_t>(codes.shape(0));
    require_length(evidence, n, what);
    if (services) require_length(*services, n, what);
    std::vector<Candidate> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        out[i].app = codes.data()[3 * i];
        out[i].activity = codes.data()[3 * i + 1];
        out[i].rank = codes.data()[3 * i + 2];
        out[i].evidence = evidence.data()[i];
        if (services) out[i].service = services->data()[i];
    }
    return out;
}

}  // namespace nkclass::bind
