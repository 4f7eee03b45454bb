// Shim for the mining pair cache. Defaults, units (seconds) and pickling
// live in nkclass/classify/stages/pair_cache.py.
#include <stdexcept>

#include "common.hpp"
#include "nkclass/pair_cache.hpp"

namespace nkclass::bind {

void init_pair_cache(py::module_& m) {
    py::class_<PairCache, std::shared_ptr<PairCache>>(m, "PairCache")
        .def(py::init([](std::size_t capacity, std::int64_t ttl_ms) {
                 if (capacity == 0 || capacity > kMaxPairCacheCapacity)
                     throw py::value_error("capacity must be between 1 and 2**30");
                 if (ttl_ms < 0) throw py::value_error("ttl_ms must not be negative");
                 return std::make_shared<PairCache>(capacity, ttl_ms);
             }),
             py::arg("capacity"), py::arg("ttl_ms"))
        .def("__len__", &PairCache::size, py::call_guard<py::gil_scoped_release>())
        .def("clear", &PairCache::clear, py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("capacity", &PairCache::capacity)
        .def_property_readonly("ttl_ms", &PairCache::ttl_ms)
        .def_property_readonly("evictions", &PairCache::evictions)
        .def_property_readonly_static(
            "max_capacity", [](const py::object&) { return kMaxPairCacheCapacity; })
        .def("entries",
             [](const PairCache& self) {
                 std::vector<PairCache::Entry> rows;
                 {
                     py::gil_scoped_release nogil;
                     rows = self.entries();
                 }
                 const auto n = static_cast<py::ssize_t>(rows.size());
                 carray<std::uint8_t> client({n, py::ssize_t(16)}), server({n, py::ssize_t(16)});
                 carray<std::int64_t> at(n);
                 for (std::size_t i = 0; i < rows.size(); ++i) {
                     put_address_bytes(rows[i].key.client, client.mutable_data() + 16 * i);
                     put_address_bytes(rows[i].key.server, server.mutable_data() + 16 * i);
                     at.mutable_data()[i] = rows[i].confirmed_at;
                 }
                 return py::make_tuple(client, server, at);
             })
        .def(
            "confirm",
            [](PairCache& self, carray<std::uint8_t> client, carray<std::uint8_t> server,
               carray<std::int64_t> at) {
                const std::size_t n = column_length(at, "at");
                const ipv6_net_t* c = ipv6_rows(client, n, "client");
                const ipv6_net_t* s = ipv6_rows(server, n, "server");
                AddressColumn cc, sc;
                cc.v6 = c;
                sc.v6 = s;
                py::gil_scoped_release nogil;
                for (std::size_t i = 0; i < n; ++i)
                    self.confirm(pair_key(cc, sc, i), at.data()[i]);
            },
            py::arg("client").noconvert(), py::arg("server").noconvert(),
            py::arg("at").noconvert());
}

}  // namespace nkclass::bind
