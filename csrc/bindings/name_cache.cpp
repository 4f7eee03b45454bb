// Shims for the learned-name cache, the DNS answer parser and the dated
// interval table. Defaults, units (seconds), validation, saving and
// pickling live in nkclass/names/ and nkclass/lists/.
#include <pybind11/stl.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"
#include "nkclass/dated_table.hpp"
#include "nkclass/dns_answers.hpp"
#include "nkclass/name_cache.hpp"

namespace nkclass::bind {

namespace {

NameKey row_key(const ipv6_net_t* rows, std::size_t i, std::uint16_t port) {
    AddressColumn col;
    col.v6 = rows;
    return name_key(col, i, port);
}

// Rows of (address, port, name, two times, origin) checked for equal lengths.
struct Rows {
    const ipv6_net_t* address;
    const std::uint16_t* port;
    const std::int64_t* a;
    const std::int64_t* b;
    const std::uint8_t* origin;
    std::size_t n;
};

Rows rows(const carray<std::uint8_t>& address, const carray<std::uint16_t>& port,
          const std::vector<std::string>& names, const carray<std::int64_t>& a,
          const carray<std::int64_t>& b, const carray<std::uint8_t>& origin) {
    const std::size_t n = names.size();
    const ipv6_net_t* addr = ipv6_rows(address, n, "address");
    require_length(port, n, "port");
    require_length(a, n, "times");
    require_length(b, n, "times");
    require_length(origin, n, "origin");
    for (std::size_t i = 0; i < n; ++i)
        if (origin.data()[i] < kOriginDns || origin.data()[i] > kOriginHost)
            throw py::value_error("origin must be 1 (dns), 2 (sni) or 3 (host)");
    return {addr, port.data(), a.data(), b.data(), origin.data(), n};
}

// Hands checked rows to learn_locked or absorb_locked under the cache's
// lock with the GIL released; returns how many were taken.
using TakeLocked = bool (NameCache::*)(const NameKey&, const char*, std::size_t, std::int64_t,
                                       std::int64_t, std::uint8_t) noexcept;

std::size_t take_rows(NameCache& self, TakeLocked take, const Rows& r,
                      const std::vector<std::string>& names) {
    std::size_t taken = 0;
    py::gil_scoped_release nogil;
    std::lock_guard<std::mutex> lock(self.mutex());
    for (std::size_t i = 0; i < r.n; ++i)
        taken += (self.*take)(row_key(r.address, i, r.port[i]), names[i].data(), names[i].size(),
                              r.a[i], r.b[i], r.origin[i]);
    return taken;
}

}  // namespace

void init_name_cache(py::module_& m) {
    py::class_<NameCache, std::shared_ptr<NameCache>>(m, "NameCache")
        .def(py::init([](std::size_t capacity, std::int64_t grace_ms) {
                 if (capacity == 0 || capacity > NameCache::kMaxCapacity)
                     throw py::value_error("capacity must be 1 .. 2**28");
                 if (grace_ms < 0) throw py::value_error("grace_ms must not be negative");
                 return std::make_shared<NameCache>(capacity, grace_ms);
             }),
             py::arg("capacity"), py::arg("grace_ms"))
        .def_readonly_static("max_capacity", &NameCache::kMaxCapacity)
        .def("__len__", &NameCache::size, py::call_guard<py::gil_scoped_release>())
        .def("clear", &NameCache::clear, py::call_guard<py::gil_scoped_release>())
        .def_property_readonly("capacity", &NameCache::capacity)
        .def_property_readonly("grace_ms", &NameCache::grace_ms)
        .def("stats",
             [](const NameCache& self) {
                 const NameCache::Stats s = self.stats();
                 py::dict out;
                 out["learned"] = s.learned;
                 out["refreshed"] = s.refreshed;
                 out["replaced"] = s.replaced;
                 out["stale"] = s.stale;
                 out["evicted"] = s.evicted;
                 out["expired"] = s.expired;
                 out["refused"] = s.refused;
                 return out;
             })
        .def("entries",
             [](const NameCache& self) {
                 std::vector<NameCache::Entry> rows;
                 {
                     py::gil_scoped_release nogil;
                     rows = self.entries();
                 }
                 const auto n = static_cast<py::ssize_t>(rows.size());
                 carray<std::uint8_t> address({n, py::ssize_t(16)}), origin(n);
                 carray<std::uint16_t> port(n);
                 carray<std::int64_t> first(n), expires(n);
                 py::list names;
                 for (std::size_t i = 0; i < rows.size(); ++i) {
                     put_address_bytes(rows[i].key.address, address.mutable_data() + 16 * i);
                     port.mutable_data()[i] = rows[i].key.port;
                     origin.mutable_data()[i] = rows[i].origin;
                     first.mutable_data()[i] = rows[i].first_seen;
                     expires.mutable_data()[i] = rows[i].expires;
                     names.append(py::str(rows[i].name));
                 }
                 return py::make_tuple(address, port, names, first, expires, origin);
             })
        .def(
            "learn",
            [](NameCache& self, carray<std::uint8_t> address, carray<std::uint16_t> port,
               const std::vector<std::string>& names, carray<std::int64_t> t,
               carray<std::int64_t> ttl_ms, carray<std::uint8_t> origin) {
                return take_rows(self, &NameCache::learn_locked,
                                 rows(address, port, names, t, ttl_ms, origin), names);
            },
            py::arg("address").noconvert(), py::arg("port").noconvert(), py::arg("names"),
            py::arg("t").noconvert(), py::arg("ttl_ms").noconvert(),
            py::arg("origin").noconvert())
        .def(
            "absorb",
            [](NameCache& self, carray<std::uint8_t> address, carray<std::uint16_t> port,
               const std::vector<std::string>& names, carray<std::int64_t> first_seen,
               carray<std::int64_t> expires, carray<std::uint8_t> origin) {
                return take_rows(self, &NameCache::absorb_locked,
                                 rows(address, port, names, first_seen, expires, origin), names);
            },
            py::arg("address").noconvert(), py::arg("port").noconvert(), py::arg("names"),
            py::arg("first_seen").noconvert(), py::arg("expires").noconvert(),
            py::arg("origin").noconvert())
        .def(
            "merge",
            [](NameCache& self, const NameCache& other) {
                py::gil_scoped_release nogil;
                self.merge_from(other);
            },
            py::arg("other"))
        .def(
            "lookup",
            [](NameCache& self, carray<std::uint8_t> address, carray<std::uint16_t> port,
               carray<std::int64_t> t) {
                const std::size_t n = static_cast<std::size_t>(t.size());
                const ipv6_net_t* addr = ipv6_rows(address, n, "address");
                require_length(port, n, "port");
                py::list out;
                std::lock_guard<std::mutex> lock(self.mutex());
                for (std::size_t i = 0; i < n; ++i) {
                    const NameKey key = row_key(addr, i, port.data()[i]);
                    const std::uint32_t h = self.lookup_locked(
                        key.address, key.port, NameCache::hashes_of(key.address, key.port),
                        t.data()[i]);
                    out.append(h != 0 ? py::object(py::str(self.name_locked(h))) : py::none());
                }
                return out;
            },
            py::arg("address").noconvert(), py::arg("port").noconvert(),
            py::arg("t").noconvert());

    m.def(
        "dns_answers",
        [](const py::bytes& data, bool tcp) -> py::object {
            const std::string s = data;
            DnsAnswers a;
            if (!parse_dns_answers(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), tcp,
                                   &a))
                return py::none();
            py::list answers;
            for (std::size_t i = 0; i < a.n; ++i)
                answers.append(py::make_tuple(
                    py::bytes(reinterpret_cast<const char*>(a.answers[i].address.bytes), 16),
                    a.answers[i].ttl));
            return py::make_tuple(py::str(a.qname, a.qname_len), answers);
        },
        py::arg("data"), py::arg("tcp") = false);

    py::class_<DatedIntervals, std::shared_ptr<DatedIntervals>>(m, "DatedIntervals")
        .def(py::init([](carray<std::uint32_t> key, carray<std::int64_t> start,
                         carray<std::int64_t> end, carray<std::uint16_t> verdict,
                         std::size_t n_keys) {
                 const std::size_t n = static_cast<std::size_t>(key.size());
                 require_length(start, n, "start");
                 require_length(end, n, "end");
                 require_length(verdict, n, "verdict");
                 auto table = std::make_shared<DatedIntervals>();
                 BuildStatus status;
                 {
                     py::gil_scoped_release nogil;
                     status = table->build(key.data(), start.data(), end.data(), verdict.data(),
                                           n, n_keys);
                 }
                 raise_if_failed(status);
                 return table;
             }),
             py::arg("key").noconvert(), py::arg("start").noconvert(),
             py::arg("end").noconvert(), py::arg("verdict").noconvert(), py::arg("n_keys"))
        .def_property_readonly("keys", &DatedIntervals::keys)
        .def("__len__", &DatedIntervals::intervals)
        .def(
            "rows",
            [](const DatedIntervals& self) {
                // The merged intervals as (key, start, end, verdict) arrays,
                // key by key in start order: what a compiled ruleset stores.
                const std::size_t n = self.intervals();
                carray<std::uint32_t> key(static_cast<py::ssize_t>(n));
                carray<std::int64_t> start(key.size()), end(key.size());
                carray<std::uint16_t> verdict(key.size());
                const auto& offsets = self.offsets();
                for (std::size_t k = 0; k + 1 < offsets.size(); ++k)
                    for (std::uint32_t i = offsets[k]; i < offsets[k + 1]; ++i)
                        key.mutable_data()[i] = static_cast<std::uint32_t>(k);
                for (std::size_t i = 0; i < n; ++i) {
                    start.mutable_data()[i] = self.starts()[i];
                    end.mutable_data()[i] = self.ends()[i];
                    verdict.mutable_data()[i] = self.verdicts()[i];
                }
                return py::make_tuple(key, start, end, verdict);
            },
            "The merged intervals as (key, start, end, verdict) arrays, by key, then start.")
        .def(
            "verdicts_at",
            [](const DatedIntervals& self, carray<std::uint32_t> labels, carray<std::int64_t> t) {
                const std::size_t n = static_cast<std::size_t>(labels.size());
                require_length(t, n, "t");
                py::list out;
                for (std::size_t i = 0; i < n; ++i) {
                    std::vector<std::uint16_t> found;
                    self.for_each_at(labels.data()[i], t.data()[i],
                                     [&](std::uint16_t v) { found.push_back(v); });
                    out.append(py::cast(found));
                }
                return out;
            },
            py::arg("labels").noconvert(), py::arg("t").noconvert());
}

}  // namespace nkclass::bind
