// BitTorrent peer handshake and DHT (KRPC over bencode). Tracker
// announces over HTTP are in http.cpp.
#include "detect_internal.hpp"

namespace nkclass::det {

bool detect_bittorrent(Bytes b, Detection* out) noexcept {
    if (b.n < 12) return false;
    if (b[0] == 0x13) {
        if (!b.starts("\x13" "BitTorrent protocol", 20)) return false;
        hit(out, kAppBittorrent, kActP2pFilesharing);
        return true;
    }
    if (b[0] != 'd') return false;
    // KRPC dictionaries have sorted keys: queries start with the "a"
    // argument dict, responses with "r"; both begin with the 20-byte node id.
    if (b.starts("d1:ad2:id20:", 12) || b.starts("d1:rd2:id20:", 12)) {
        hit(out, kAppBittorrent, kActP2pFilesharing);
        return true;
    }
    // Responses from BEP 42 nodes put the requester's "ip" first.
    if (b.starts("d2:ip", 5)) {
        const std::size_t lim = b.n < 48 ? b.n : 48;
        for (std::size_t i = 5; i + 11 <= lim; ++i)
            if (std::memcmp(b.p + i, "1:rd2:id20:", 11) == 0) {
                hit(out, kAppBittorrent, kActP2pFilesharing);
                return true;
            }
    }
    return false;
}

}  // namespace nkclass::det
