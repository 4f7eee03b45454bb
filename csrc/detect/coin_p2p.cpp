// Coin node protocols: Monero Levin, Bitcoin P2P, Ethereum discv4.
#include "detect_internal.hpp"

namespace nkclass::det {

namespace {

constexpr std::uint8_t kLevin[8] = {0x01, 0x21, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01};
constexpr std::uint32_t kBitcoinMagic[] = {0xF9BEB4D9u, 0x0B110907u, 0x0A03CF40u, 0xFABFB5DAu,
                                          0xF9BEB4FEu};

// A Bitcoin command: 12 bytes, 1..12 lowercase ASCII letters then NULs.
bool bitcoin_command(const std::uint8_t* c) noexcept {
    std::size_t k = 0;
    while (k < 12 && c[k] >= 'a' && c[k] <= 'z') ++k;
    if (k == 0) return false;
    for (std::size_t j = k; j < 12; ++j)
        if (c[j] != 0) return false;
    return true;
}

}  // namespace

bool detect_coin_p2p_tcp(Bytes b, Detection* out) noexcept {
    if (b.n < 8) return false;
    if (b[0] == 0x01) {
        if (std::memcmp(b.p, kLevin, 8) != 0) return false;
        hit(out, kAppMoneroP2p, kActCryptoP2p);
        out->coin = kCoinXmr;
        return true;
    }
    if (b.n < 16) return false;
    const std::uint32_t magic = be32(b.p);
    for (std::uint32_t m : kBitcoinMagic) {
        if (magic == m && bitcoin_command(b.p + 4)) {
            hit(out, kAppBitcoinP2p, kActCryptoP2p);
            out->coin = kCoinBtc;
            return true;
        }
    }
    return false;
}

// discv4 packet: hash(32) signature(65) type(1) RLP list. nDPI's rule: port
// 30303 on either side, 98 < length < 1280, type 1..6; we also require the
// RLP list marker (0xc0..0xff) after the type byte.
bool detect_discv4(Bytes b, std::uint16_t sport, std::uint16_t dport, Detection* out) noexcept {
    if (sport != 30303 && dport != 30303) return false;
    if (b.n <= 99 || b.n >= 1280) return false;
    if (b[97] < 1 || b[97] > 6 || b[98] < 0xc0) return false;
    hit(out, kAppEthereumP2p, kActCryptoP2p);
    out->coin = kCoinEth;
    return true;
}

}  // namespace nkclass::det
