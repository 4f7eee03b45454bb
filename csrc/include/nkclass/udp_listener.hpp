// UDP sockets for a live flow export collector (Linux): datagrams are
// received in batches with recvmmsg and decoded straight into an
// ExportDecoder, with the kernel's count of datagrams it dropped for want
// of buffer space (SO_RXQ_OVFL) read from every batch.
//
// Contract
// - open() binds one socket per (host, port) (IPv4 or IPv6 literal; port 0
//   picks a free port, see ports()), non-blocking, with SO_RCVBUF asked for
//   rcvbuf_bytes (the kernel may grant less: see rcvbuf_granted()).
// - poll() waits at most timeout_ms for a socket to be readable, then
//   receives up to max_datagrams in batches of kBatch per recvmmsg call and
//   decodes each with its source address and the batch's receive time.
//   Datagrams longer than kMaxDatagram are cut by the kernel; they are
//   counted in `truncated` and not decoded.
// - kernel_drops is the sum over sockets of the latest SO_RXQ_OVFL count
//   (datagrams the kernel dropped since the socket was opened).
// - Thread-safety: none; one thread polls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nkclass/export_decoder.hpp"

namespace nkclass {

struct ListenerCounters {
    std::uint64_t datagrams = 0;     // datagrams received
    std::uint64_t bytes = 0;         // their payload bytes
    std::uint64_t batches = 0;       // recvmmsg calls that returned datagrams
    std::uint64_t truncated = 0;     // datagrams longer than kMaxDatagram, not decoded
    std::uint64_t kernel_drops = 0;  // SO_RXQ_OVFL, summed over sockets
};

struct ListenAddress {
    std::string host;
    std::uint16_t port;
};

class UdpListener {
public:
    static constexpr std::size_t kBatch = 64;
    static constexpr std::size_t kMaxDatagram = 65535;

    // Binds every address, or returns nullptr with `*error` saying which
    // address failed and why.
    static std::unique_ptr<UdpListener> open(const std::vector<ListenAddress>& addresses,
                                             int rcvbuf_bytes, std::string* error);
    ~UdpListener();
    UdpListener(const UdpListener&) = delete;
    UdpListener& operator=(const UdpListener&) = delete;

    // Datagrams received (and decoded) by this call.
    std::size_t poll(ExportDecoder& decoder, int timeout_ms, std::size_t max_datagrams);

    std::vector<std::uint16_t> ports() const;
    std::vector<int> rcvbuf_granted() const;
    const ListenerCounters& counters() const noexcept;

private:
    UdpListener();
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace nkclass
