#include "flow_sources.hpp"

#include <string>

namespace nkclass::bind {

std::pair<const std::uint8_t*, std::size_t> contiguous(const py::buffer& b, const char* what) {
    const py::buffer_info info = b.request();
    if (info.ndim > 1 || (info.ndim == 1 && info.strides[0] != info.itemsize))
        throw py::value_error(std::string(what) + ": expected a contiguous bytes-like object");
    return {static_cast<const std::uint8_t*>(info.ptr),
            static_cast<std::size_t>(info.size * info.itemsize)};
}

RecordArrays::RecordArrays(py::ssize_t n)
    : ts_start(n), ts_end(n), src_ip({n, py::ssize_t(16)}), dst_ip({n, py::ssize_t(16)}),
      src_port(n), dst_port(n), protocol(n), tcp_flags(n), packets(n), bytes(n) {}

FlowRecordColumnsOut RecordArrays::out() {
    return {ts_start.mutable_data(), ts_end.mutable_data(), src_ip.mutable_data(),
            dst_ip.mutable_data(),   src_port.mutable_data(), dst_port.mutable_data(),
            protocol.mutable_data(), packets.mutable_data(),  bytes.mutable_data(),
            tcp_flags.mutable_data()};
}

void RecordArrays::put(py::dict& cols) const {
    cols["ts_start"] = ts_start;
    cols["ts_end"] = ts_end;
    cols["src_ip"] = src_ip;
    cols["dst_ip"] = dst_ip;
    cols["src_port"] = src_port;
    cols["dst_port"] = dst_port;
    cols["protocol"] = protocol;
    cols["packets"] = packets;
    cols["bytes"] = bytes;
    cols["tcp_flags"] = tcp_flags;
}

}  // namespace nkclass::bind
