// Shim for nkclass.PrefixTable: array checks, GIL release, pickling.
#include <memory>
#include <vector>

#include "common.hpp"
#include "nkclass/prefix_table.hpp"

namespace nkclass::bind {

namespace {

// The build inputs are kept so the table pickles as its rows (a built table
// is rebuilt on load; builds are fast and the rows are the portable form).
struct PyPrefixTable {
    std::shared_ptr<PrefixTable> table;
    py::tuple state;
};

std::shared_ptr<PyPrefixTable> make_table(carray<std::uint32_t> v4_network,
                                          carray<std::uint8_t> v4_length,
                                          carray<std::uint32_t> v4_label,
                                          carray<std::uint8_t> v6_network,
                                          carray<std::uint8_t> v6_length,
                                          carray<std::uint32_t> v6_label, bool last_wins,
                                          unsigned first_stride) {
    const std::vector<Ipv4Prefix> rows4 = ipv4_prefixes(v4_network, v4_length, v4_label);
    const std::vector<Ipv6Prefix> rows6 = ipv6_prefixes(v6_network, v6_length, v6_label);
    auto out = std::make_shared<PyPrefixTable>();
    out->table = std::make_shared<PrefixTable>();
    BuildStatus status;
    {
        py::gil_scoped_release nogil;
        status = out->table->build(rows4.data(), rows4.size(), rows6.data(), rows6.size(),
                                   last_wins ? Duplicates::kLastWins : Duplicates::kError,
                                   first_stride);
    }
    raise_if_failed(status);
    out->state = py::make_tuple(v4_network, v4_length, v4_label, v6_network, v6_length,
                                v6_label, last_wins, first_stride);
    return out;
}

}  // namespace

std::shared_ptr<const PrefixTable> native_prefix_table(const py::handle& obj) {
    return obj.cast<const PyPrefixTable&>().table;
}

py::object wrap_prefix_table(std::shared_ptr<const PrefixTable> table, py::tuple state) {
    auto out = std::make_shared<PyPrefixTable>();
    out->table = std::const_pointer_cast<PrefixTable>(std::move(table));
    out->state = std::move(state);
    return py::cast(out);
}

void init_prefix_table(py::module_& m) {
    py::class_<PyPrefixTable, std::shared_ptr<PyPrefixTable>>(m, "PrefixTable")
        .def(py::init(&make_table), py::arg("v4_network").noconvert(),
             py::arg("v4_length").noconvert(), py::arg("v4_label").noconvert(),
             py::arg("v6_network").noconvert(), py::arg("v6_length").noconvert(),
             py::arg("v6_label").noconvert(), py::arg("last_wins") = false,
             py::arg("first_stride") = 0u)
        .def(
            "lookup_v4",
            [](const PyPrefixTable& self, carray<std::uint32_t> addrs) {
                const std::size_t n = static_cast<std::size_t>(addrs.size());
                carray<std::uint32_t> out(static_cast<py::ssize_t>(n));
                const std::uint32_t* in = addrs.data();
                std::uint32_t* dst = out.mutable_data();
                {
                    py::gil_scoped_release nogil;
                    self.table->lookup_v4(in, n, dst);
                }
                return out;
            },
            py::arg("addresses").noconvert())
        .def(
            "lookup_v6",
            [](const PyPrefixTable& self, carray<std::uint8_t> addrs) {
                const ipv6_net_t* in = ipv6_rows(addrs, "addresses");
                const std::size_t n = static_cast<std::size_t>(addrs.shape(0));
                carray<std::uint32_t> out(static_cast<py::ssize_t>(n));
                std::uint32_t* dst = out.mutable_data();
                {
                    py::gil_scoped_release nogil;
                    self.table->lookup_v6(in, n, dst);
                }
                return out;
            },
            py::arg("addresses").noconvert())
        .def_property_readonly("first_stride",
                               [](const PyPrefixTable& s) { return s.table->ipv4().first_stride(); })
        .def_property_readonly("memory_bytes",
                               [](const PyPrefixTable& s) {
                                   return s.table->ipv4().memory_bytes() +
                                          s.table->ipv6().memory_bytes();
                               })
        .def_property_readonly("ipv6_intervals",
                               [](const PyPrefixTable& s) { return s.table->ipv6().interval_count(); })
        .def(py::pickle([](const PyPrefixTable& s) { return s.state; },
                        [](const py::tuple& t) {
                            // Rebuilt through the checked build (lengths,
                            // host bits, labels, duplicates, stride): a state
                            // is untrusted until it passes the same checks.
                            constexpr const char* cls = "PrefixTable";
                            int overflow = 0;
                            const long long stride =
                                t.size() == 8 && py::isinstance<py::int_>(t[7])
                                    ? PyLong_AsLongLongAndOverflow(t[7].ptr(), &overflow)
                                    : -1;
                            if (t.size() != 8 || !py::isinstance<py::bool_>(t[6]) ||
                                overflow != 0 || stride < 0 || stride > 24)
                                throw py::value_error(
                                    "invalid PrefixTable state: expected (v4_network, v4_length, "
                                    "v4_label, v6_network, v6_length, v6_label, last_wins, "
                                    "first_stride)");
                            return make_table(
                                state_array<std::uint32_t>(t[0], 1, cls, "v4_network"),
                                state_array<std::uint8_t>(t[1], 1, cls, "v4_length"),
                                state_array<std::uint32_t>(t[2], 1, cls, "v4_label"),
                                state_array<std::uint8_t>(t[3], 2, cls, "v6_network"),
                                state_array<std::uint8_t>(t[4], 1, cls, "v6_length"),
                                state_array<std::uint32_t>(t[5], 1, cls, "v6_label"),
                                t[6].cast<bool>(), static_cast<unsigned>(stride));
                        }));
}

}  // namespace nkclass::bind
