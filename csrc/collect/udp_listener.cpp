// UdpListener: recvmmsg batches with SO_RXQ_OVFL drop counts (Linux).
#include "nkclass/udp_listener.hpp"

#if defined(__linux__)

#include <arpa/inet.h>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace nkclass {

namespace {

struct Socket {
    int fd = -1;
    std::uint32_t drops = 0;  // latest SO_RXQ_OVFL value
};

std::int64_t now_ms() {
    timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return std::int64_t(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

ipv6_net_t source_of(const sockaddr_storage& sa) {
    ipv6_net_t a{};
    if (sa.ss_family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&sa);
        a = map_ipv4(ntohl(in->sin_addr.s_addr));
    } else if (sa.ss_family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&sa);
        std::memcpy(a.bytes, &in6->sin6_addr, 16);
    }
    return a;
}

}  // namespace

struct UdpListener::Impl {
    std::vector<Socket> sockets;
    ListenerCounters counters;
    // One batch's buffers, reused.
    std::vector<std::uint8_t> buffers = std::vector<std::uint8_t>(kBatch * kMaxDatagram);
    mmsghdr msgs[kBatch];
    iovec iovs[kBatch];
    sockaddr_storage addrs[kBatch];
    alignas(cmsghdr) char controls[kBatch][CMSG_SPACE(sizeof(std::uint32_t))];

    ~Impl() {
        for (Socket& s : sockets)
            if (s.fd >= 0) close(s.fd);
    }

    std::size_t receive(Socket& sock, ExportDecoder& decoder, std::size_t want) {
        const unsigned n_want = unsigned(std::min(want, kBatch));
        for (unsigned i = 0; i < n_want; ++i) {
            iovs[i] = {buffers.data() + i * kMaxDatagram, kMaxDatagram};
            std::memset(&msgs[i], 0, sizeof(mmsghdr));
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &addrs[i];
            msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
            msgs[i].msg_hdr.msg_control = controls[i];
            msgs[i].msg_hdr.msg_controllen = sizeof(controls[i]);
        }
        const int got = recvmmsg(sock.fd, msgs, n_want, MSG_DONTWAIT, nullptr);
        if (got <= 0) return 0;
        ++counters.batches;
        const std::int64_t received = now_ms();
        for (int i = 0; i < got; ++i) {
            msghdr& h = msgs[i].msg_hdr;
            for (cmsghdr* c = CMSG_FIRSTHDR(&h); c != nullptr; c = CMSG_NXTHDR(&h, c)) {
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
                    std::uint32_t drops;
                    std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
                    sock.drops = drops;
                }
            }
            ++counters.datagrams;
            counters.bytes += msgs[i].msg_len;
            if ((h.msg_flags & MSG_TRUNC) != 0) {
                ++counters.truncated;
                continue;
            }
            decoder.decode(buffers.data() + std::size_t(i) * kMaxDatagram, msgs[i].msg_len,
                           source_of(addrs[i]), received);
        }
        return std::size_t(got);
    }
};

UdpListener::UdpListener() : impl_(new Impl) {}
UdpListener::~UdpListener() = default;

std::unique_ptr<UdpListener> UdpListener::open(const std::vector<ListenAddress>& addresses,
                                               int rcvbuf_bytes, std::string* error) {
    std::unique_ptr<UdpListener> l(new UdpListener);
    for (const ListenAddress& a : addresses) {
        const std::string where = a.host + ":" + std::to_string(a.port);
        sockaddr_storage ss{};
        socklen_t len = 0;
        auto* in = reinterpret_cast<sockaddr_in*>(&ss);
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        if (inet_pton(AF_INET, a.host.c_str(), &in->sin_addr) == 1) {
            in->sin_family = AF_INET;
            in->sin_port = htons(a.port);
            len = sizeof(sockaddr_in);
        } else if (inet_pton(AF_INET6, a.host.c_str(), &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons(a.port);
            len = sizeof(sockaddr_in6);
        } else {
            *error = where + ": not an IPv4 or IPv6 address";
            return nullptr;
        }
        Socket s;
        s.fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (s.fd < 0) {
            *error = where + ": " + std::strerror(errno);
            return nullptr;
        }
        l->impl_->sockets.push_back(s);
        const int on = 1;
        setsockopt(s.fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
        if (rcvbuf_bytes > 0) setsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf_bytes, sizeof(int));
        if (bind(s.fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
            *error = where + ": " + std::strerror(errno);
            return nullptr;
        }
    }
    return l;
}

std::size_t UdpListener::poll(ExportDecoder& decoder, int timeout_ms,
                              std::size_t max_datagrams) {
    std::vector<pollfd> fds;
    for (const Socket& s : impl_->sockets) fds.push_back(pollfd{s.fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) return 0;
    std::size_t total = 0;
    // Take from every ready socket in turn until each is empty or the
    // budget is spent, so one busy exporter cannot starve another port.
    bool more = true;
    while (more && total < max_datagrams) {
        more = false;
        for (std::size_t i = 0; i < fds.size() && total < max_datagrams; ++i) {
            if ((fds[i].revents & POLLIN) == 0) continue;
            const std::size_t got = impl_->receive(impl_->sockets[i], decoder,
                                                   max_datagrams - total);
            total += got;
            if (got == kBatch) more = true;
            else fds[i].revents = 0;
        }
    }
    std::uint64_t drops = 0;
    for (const Socket& s : impl_->sockets) drops += s.drops;
    impl_->counters.kernel_drops = drops;
    return total;
}

std::vector<std::uint16_t> UdpListener::ports() const {
    std::vector<std::uint16_t> out;
    for (const Socket& s : impl_->sockets) {
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        getsockname(s.fd, reinterpret_cast<sockaddr*>(&ss), &len);
        out.push_back(ntohs(ss.ss_family == AF_INET6
                                ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                : reinterpret_cast<sockaddr_in*>(&ss)->sin_port));
    }
    return out;
}

std::vector<int> UdpListener::rcvbuf_granted() const {
    std::vector<int> out;
    for (const Socket& s : impl_->sockets) {
        int v = 0;
        socklen_t len = sizeof v;
        getsockopt(s.fd, SOL_SOCKET, SO_RCVBUF, &v, &len);
        out.push_back(v);
    }
    return out;
}

const ListenerCounters& UdpListener::counters() const noexcept { return impl_->counters; }

}  // namespace nkclass

#else  // recvmmsg and SO_RXQ_OVFL are Linux's: elsewhere open() says so.

namespace nkclass {
struct UdpListener::Impl {
    ListenerCounters counters;
};
UdpListener::UdpListener() : impl_(new Impl) {}
UdpListener::~UdpListener() = default;
std::unique_ptr<UdpListener> UdpListener::open(const std::vector<ListenAddress>&, int,
                                               std::string* error) {
    *error = "live collection needs Linux (recvmmsg, SO_RXQ_OVFL)";
    return nullptr;
}
std::size_t UdpListener::poll(ExportDecoder&, int, std::size_t) { return 0; }
std::vector<std::uint16_t> UdpListener::ports() const { return {}; }
std::vector<int> UdpListener::rcvbuf_granted() const { return {}; }
const ListenerCounters& UdpListener::counters() const noexcept { return impl_->counters; }
}  // namespace nkclass

#endif
