// Helpers the shims of the two flow sources (the pcap meter, the flow
// export decoder and its capture reader) share: input bytes in, the record
// columns and the end-of-input status out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "common.hpp"
#include "nkclass/flow_columns.hpp"
#include "nkclass/flow_meter.hpp"

namespace nkclass::bind {

// A contiguous bytes-like object's data and size in bytes; `what` names the
// method in the error.
std::pair<const std::uint8_t*, std::size_t> contiguous(const py::buffer& b, const char* what);

// Feeds `chunk` to a source's feed() with the GIL released.
template <typename Source>
void feed_bytes(Source& self, const py::buffer& chunk) {
    const auto [data, n] = contiguous(chunk, "feed");
    py::gil_scoped_release nogil;
    self.feed(data, n);
}

// Runs a source's finish() with the GIL released; returns
// {'status', 'offset', 'reason'}.
template <typename Source>
py::dict finish_status(Source& self) {
    MeterStatus st;
    {
        py::gil_scoped_release nogil;
        st = self.finish();
    }
    static const char* const kKinds[] = {"ok", "truncated", "corrupt"};
    py::dict out;
    out["status"] = kKinds[static_cast<int>(st.kind)];
    out["offset"] = st.offset;
    out["reason"] = st.reason;
    return out;
}

// The record columns of one drain, allocated for n rows.
struct RecordArrays {
    explicit RecordArrays(py::ssize_t n);
    // Pointers into the arrays, for the native drain.
    FlowRecordColumnsOut out();
    // Adds the arrays to `cols` under their column names.
    void put(py::dict& cols) const;

    carray<std::int64_t> ts_start, ts_end;
    carray<std::uint8_t> src_ip, dst_ip;
    carray<std::uint16_t> src_port, dst_port;
    carray<std::uint8_t> protocol, tcp_flags;
    carray<std::uint64_t> packets, bytes;
};

}  // namespace nkclass::bind
