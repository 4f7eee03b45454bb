// Shim for the aggregation pass. nkclass/report/aggregate.py maps label
// names to codes, validates the columns and turns the results into a
// Report; this file checks shapes and runs the pass with the GIL released.
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "common.hpp"
#include "nkclass/aggregate.hpp"

namespace nkclass::bind {

namespace {

Bucket parse_bucket(const std::string& name) {
    if (name == "hour") return Bucket::kHour;
    if (name == "day") return Bucket::kDay;
    if (name == "week") return Bucket::kWeek;
    if (name == "month") return Bucket::kMonth;
    throw py::value_error("bucket must be hour, day, week or month, got '" + name + "'");
}

// A (rows, width) uint64 array filled by fill(row, out_row).
template <typename Fill>
carray<std::uint64_t> table(std::size_t rows, std::size_t width, Fill fill) {
    carray<std::uint64_t> out({static_cast<py::ssize_t>(rows), static_cast<py::ssize_t>(width)});
    std::uint64_t* p = out.mutable_data();
    for (std::size_t r = 0; r < rows; ++r) fill(r, p + r * width);
    return out;
}

// Checks that `a` is an (n, width) array.
void require_rows(const py::array& a, std::size_t n, std::size_t width, const char* what) {
    if (a.ndim() != 2 || static_cast<std::size_t>(a.shape(0)) != n ||
        static_cast<std::size_t>(a.shape(1)) != width)
        throw py::value_error(std::string(what) + ": expected a (" + std::to_string(n) + ", " +
                              std::to_string(width) + ") array");
}

template <typename T>
carray<T> array_of(std::vector<T>&& values, std::size_t rows, std::size_t width) {
    carray<T> out(width == 1 ? std::vector<py::ssize_t>{static_cast<py::ssize_t>(rows)}
                             : std::vector<py::ssize_t>{static_cast<py::ssize_t>(rows),
                                                        static_cast<py::ssize_t>(width)});
    std::copy(values.begin(), values.end(), out.mutable_data());
    return out;
}

}  // namespace

void init_aggregate(py::module_& m) {
    m.def(
        "merge_groups",
        [](const carray<std::int64_t>& bucket, const carray<std::uint16_t>& path,
           const carray<std::uint8_t>& activity, const carray<std::uint32_t>& extra,
           const carray<std::uint64_t>& sums, const carray<std::uint64_t>& sizes,
           const carray<std::int64_t>& offsets, const py::bytes& buffer) {
            GroupRows rows;
            rows.n = column_length(bucket, "bucket");
            require_length(path, rows.n, "path");
            require_length(activity, rows.n, "activity");
            require_length(extra, rows.n, "extra");
            require_rows(sums, rows.n, 3, "sums");
            require_rows(sizes, rows.n, 4, "sizes");
            require_rows(offsets, rows.n, 5, "offsets");
            rows.bucket = bucket.data();
            rows.path = path.data();
            rows.activity = activity.data();
            rows.extra = extra.data();
            rows.sums = sums.data();
            rows.sizes = sizes.data();
            rows.offsets = offsets.data();
            rows.buffer = PyBytes_AS_STRING(buffer.ptr());
            rows.buffer_size = static_cast<std::size_t>(PyBytes_GET_SIZE(buffer.ptr()));
            MergedGroups merged;
            BuildStatus status;
            {
                py::gil_scoped_release nogil;
                status = merge_groups(rows, &merged);
            }
            raise_if_failed(status);
            const std::size_t groups = merged.first_row.size();
            return py::make_tuple(array_of(std::move(merged.first_row), groups, 1),
                                  array_of(std::move(merged.sums), groups, 3),
                                  array_of(std::move(merged.sizes), groups, 4),
                                  array_of(std::move(merged.offsets), groups, 5),
                                  py::bytes(merged.buffer));
        },
        py::arg("bucket").noconvert(), py::arg("path").noconvert(),
        py::arg("activity").noconvert(), py::arg("extra").noconvert(),
        py::arg("sums").noconvert(), py::arg("sizes").noconvert(),
        py::arg("offsets").noconvert(), py::arg("buffer"));
    py::class_<Aggregator>(m, "Aggregator")
        .def(py::init([](const std::string& bucket) {
                 return std::make_unique<Aggregator>(parse_bucket(bucket));
             }),
             py::arg("bucket"))
        .def(
            "add",
            [](Aggregator& self, const carray<std::int64_t>& ts_start,
               const carray<std::uint16_t>& path, const carray<std::uint8_t>& activity,
               const carray<std::uint8_t>& side, std::optional<carray<std::uint32_t>> src_v4,
               std::optional<carray<std::uint8_t>> src_v6,
               std::optional<carray<std::uint32_t>> dst_v4,
               std::optional<carray<std::uint8_t>> dst_v6,
               std::optional<carray<std::uint32_t>> extra,
               std::optional<carray<std::uint64_t>> bytes,
               std::optional<carray<std::uint64_t>> packets,
               std::optional<carray<std::uint32_t>> src_as,
               std::optional<carray<std::uint32_t>> dst_as) {
                AggregateBatch b;
                b.n = column_length(ts_start, "ts_start");
                b.ts_start = ts_start.data();
                require_length(path, b.n, "path");
                require_length(activity, b.n, "activity");
                require_length(side, b.n, "side");
                b.path = path.data();
                b.activity = activity.data();
                b.side = side.data();
                b.src_ip = address_column(src_v4, src_v6, b.n, "src_ip");
                b.dst_ip = address_column(dst_v4, dst_v6, b.n, "dst_ip");
                b.extra = optional_column(extra, b.n, "extra");
                b.bytes = optional_column(bytes, b.n, "bytes");
                b.packets = optional_column(packets, b.n, "packets");
                b.src_as = optional_column(src_as, b.n, "src_as");
                b.dst_as = optional_column(dst_as, b.n, "dst_as");
                for (std::size_t i = 0; i < b.n; ++i)
                    if (b.ts_start[i] < 0)
                        throw py::value_error("ts_start: a time before 1970 at row " +
                                              std::to_string(i));
                BuildStatus status;
                {
                    py::gil_scoped_release nogil;
                    status = self.add(b);
                }
                raise_if_failed(status);
            },
            py::arg("ts_start").noconvert(), py::arg("path").noconvert(),
            py::arg("activity").noconvert(), py::arg("side").noconvert(),
            py::arg("src_v4").noconvert() = py::none(), py::arg("src_v6").noconvert() = py::none(),
            py::arg("dst_v4").noconvert() = py::none(), py::arg("dst_v6").noconvert() = py::none(),
            py::arg("extra").noconvert() = py::none(), py::arg("bytes").noconvert() = py::none(),
            py::arg("packets").noconvert() = py::none(),
            py::arg("src_as").noconvert() = py::none(),
            py::arg("dst_as").noconvert() = py::none())
        .def("groups",
             [](const Aggregator& self) {
                 const std::size_t n = self.group_count();
                 const auto len = static_cast<py::ssize_t>(n);
                 carray<std::int64_t> bucket(len);
                 carray<std::uint16_t> path(len);
                 carray<std::uint8_t> activity(len);
                 carray<std::uint32_t> extra(len);
                 carray<std::uint8_t> has_sets(len);
                 for (std::size_t g = 0; g < n; ++g) {
                     has_sets.mutable_data()[g] = self.has_sets(g) ? 1 : 0;
                     const GroupKey& k = self.group_key(g);
                     bucket.mutable_data()[g] = k.bucket;
                     path.mutable_data()[g] = k.path();
                     activity.mutable_data()[g] = k.activity();
                     extra.mutable_data()[g] = k.extra();
                 }
                 auto sums = table(n, 3, [&](std::size_t g, std::uint64_t* row) {
                     std::copy(self.group_sums(g), self.group_sums(g) + 3, row);
                 });
                 return py::make_tuple(bucket, path, activity, extra, sums, has_sets);
             })
        .def("all_sets",
             [](const Aggregator& self) {
                 // Every group's four sets back to back: group g's set k is
                 // buffer[offsets[g, k] : offsets[g, k + 1]] (empty: no set)
                 // of sizes[g, k] elements.
                 const std::size_t n = self.group_count();
                 carray<std::int64_t> offsets(
                     {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(5)});
                 carray<std::uint64_t> sizes(
                     {static_cast<py::ssize_t>(n), static_cast<py::ssize_t>(4)});
                 std::string buffer;
                 std::int64_t* o = offsets.mutable_data();
                 std::uint64_t* z = sizes.mutable_data();
                 for (std::size_t g = 0; g < n; ++g) {
                     o[5 * g] = static_cast<std::int64_t>(buffer.size());
                     for (int k = 0; k < 4; ++k) {
                         if (self.has_sets(g)) buffer += self.serialized_set(g, k);
                         o[5 * g + k + 1] = static_cast<std::int64_t>(buffer.size());
                         z[4 * g + k] = self.set_size(g, k);
                     }
                 }
                 return py::make_tuple(py::bytes(buffer), offsets, sizes);
             })
        .def(
            "sets",
            [](const Aggregator& self, std::size_t g) {
                if (g >= self.group_count()) throw py::index_error("group index out of range");
                return py::make_tuple(py::bytes(self.serialized_set(g, 0)),
                                      py::bytes(self.serialized_set(g, 1)),
                                      py::bytes(self.serialized_set(g, 2)),
                                      py::bytes(self.serialized_set(g, 3)));
            },
            py::arg("group"))
        .def("profiles",
             [](const Aggregator& self) {
                 const std::size_t n = self.profile_count();
                 carray<std::uint16_t> path(static_cast<py::ssize_t>(n));
                 carray<std::uint8_t> activity(static_cast<py::ssize_t>(n));
                 for (std::size_t p = 0; p < n; ++p) {
                     path.mutable_data()[p] = self.profile_key(p).path;
                     activity.mutable_data()[p] = self.profile_key(p).activity;
                 }
                 auto counters = table(n, Profile::kCounters, [&](std::size_t p, std::uint64_t* row) {
                     std::copy(self.profile(p).v, self.profile(p).v + Profile::kCounters, row);
                 });
                 return py::make_tuple(path, activity, counters);
             })
        .def("upstreams",
             [](const Aggregator& self) {
                 const std::size_t n = self.upstream_count();
                 const auto len = static_cast<py::ssize_t>(n);
                 carray<std::int64_t> bucket(len);
                 carray<std::uint16_t> path(len);
                 carray<std::uint32_t> asn(len);
                 for (std::size_t u = 0; u < n; ++u) {
                     bucket.mutable_data()[u] = self.upstream_key(u).bucket;
                     path.mutable_data()[u] = self.upstream_key(u).path;
                     asn.mutable_data()[u] = self.upstream_key(u).asn;
                 }
                 auto sums = table(n, 2, [&](std::size_t u, std::uint64_t* row) {
                     row[0] = self.upstream(u).flows;
                     row[1] = self.upstream(u).bytes;
                 });
                 return py::make_tuple(bucket, path, asn, sums);
             })
        .def_property_readonly("first_ms", &Aggregator::first_ms)
        .def_property_readonly("last_ms", &Aggregator::last_ms)
        .def("__len__", &Aggregator::group_count);
}

}  // namespace nkclass::bind
