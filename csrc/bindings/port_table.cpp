// Shim for the port rule table.
#include <memory>
#include <vector>

#include "common.hpp"
#include "nkclass/port_table.hpp"

namespace nkclass::bind {

namespace {

struct PyPortTable {
    std::shared_ptr<PortTable> table;
    py::tuple state;
};

std::shared_ptr<PyPortTable> make_ports(carray<std::uint8_t> protocol,
                                        carray<std::uint16_t> first_port,
                                        carray<std::uint16_t> last_port, bool last_wins) {
    const std::vector<PortRule> rows = port_rules(protocol, first_port, last_port);
    auto out = std::make_shared<PyPortTable>();
    out->table = std::make_shared<PortTable>();
    raise_if_failed(out->table->build(rows.data(), rows.size(),
                                      last_wins ? Duplicates::kLastWins : Duplicates::kError));
    out->state = py::make_tuple(protocol, first_port, last_port, last_wins);
    return out;
}

}  // namespace

std::shared_ptr<const PortTable> native_port_table(const py::handle& obj) {
    return obj.cast<const PyPortTable&>().table;
}

void init_port_table(py::module_& m) {
    py::class_<PyPortTable, std::shared_ptr<PyPortTable>>(m, "PortTable")
        .def(py::init(&make_ports), py::arg("protocol").noconvert(),
             py::arg("first_port").noconvert(), py::arg("last_port").noconvert(),
             py::arg("last_wins") = false)
        .def(
            "rules_for",
            [](const PyPortTable& self, carray<std::uint8_t> protocol,
               carray<std::uint16_t> src_port, carray<std::uint16_t> dst_port) {
                const std::size_t n = column_length(protocol, "protocol");
                require_length(src_port, n, "src_port");
                require_length(dst_port, n, "dst_port");
                carray<std::uint16_t> out(static_cast<py::ssize_t>(n));
                std::uint16_t* dst = out.mutable_data();
                const std::uint8_t* p = protocol.data();
                const std::uint16_t* s = src_port.data();
                const std::uint16_t* d = dst_port.data();
                {
                    py::gil_scoped_release nogil;
                    for (std::size_t i = 0; i < n; ++i) dst[i] = self.table->rule_for(p[i], s[i], d[i]);
                }
                return out;
            },
            py::arg("protocol").noconvert(), py::arg("src_port").noconvert(),
            py::arg("dst_port").noconvert(),
            "Rule id (row + 1, 0 = none) deciding each flow.")
        .def(py::pickle([](const PyPortTable& s) { return s.state; },
                        [](const py::tuple& t) {
                            // Rebuilt through the checked build: a state is
                            // untrusted until it passes the same checks.
                            constexpr const char* cls = "PortTable";
                            if (t.size() != 4 || !py::isinstance<py::bool_>(t[3]))
                                throw py::value_error(
                                    "invalid PortTable state: expected (protocol, first_port, "
                                    "last_port, last_wins)");
                            return make_ports(
                                state_array<std::uint8_t>(t[0], 1, cls, "protocol"),
                                state_array<std::uint16_t>(t[1], 1, cls, "first_port"),
                                state_array<std::uint16_t>(t[2], 1, cls, "last_port"),
                                t[3].cast<bool>());
                        }));
}

}  // namespace nkclass::bind
