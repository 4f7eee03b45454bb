// Fuzzes the mining JSON-RPC scanner (the detectors' JSON parser) on its
// own, checking its output contract; and the meter's streaming share
// counter (nkclass/stratum_scan.hpp) on the same bytes as one side's
// stream, whole and cut into pieces at every 1 + data[0] % 13 bytes: the
// counts must not depend on the cuts.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "fuzz_input.hpp"
#include "nkclass/detectors.hpp"
#include "nkclass/stratum_scan.hpp"

namespace {

void check_share_counts(const std::uint8_t* p, std::size_t size) {
    nkclass::StratumFlow whole, cut;
    const int side = size != 0 ? p[0] & 1 : 0;
    nkclass::stratum_scan(whole, side, p, size);
    const std::size_t step = size != 0 ? 1 + p[0] % 13 : 1;
    for (std::size_t at = 0; at < size; at += step) {
        const std::size_t k = std::min(step, size - at);
        const auto piece = fuzz::exact_copy(p + at, k);
        nkclass::stratum_scan(cut, side, piece.get(), k);
    }
    fuzz::check(whole.submits == cut.submits && whole.difficulty == cut.difficulty &&
                    whole.algo == cut.algo,
                "cutting the stream does not change the share counts");
    fuzz::check(whole.submits <= std::size_t(std::count(p, p + size, '\n')),
                "at most one share per line");
    fuzz::check(whole.difficulty == 0 || (std::isfinite(whole.difficulty) && whole.difficulty > 0),
                "a difficulty is positive and finite");
    fuzz::check(static_cast<int>(whole.algo) <= 2, "algo code in range");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = fuzz::exact_copy(data, size);
    nkclass::StratumMatch m;
    nkclass::scan_stratum(bytes.get(), size, &m);
    fuzz::check(m.coin < nkclass::kCoinCount, "coin code in range");
    fuzz::check(m.agent_len <= nkclass::kMaxAgent && m.agent[m.agent_len] == '\0',
                "agent NUL-terminated within kMaxAgent");
    fuzz::check(m.mining || (m.agent_len == 0 && m.coin == nkclass::kCoinUnknown),
                "no agent or coin without a match");
    check_share_counts(bytes.get(), size);
    return 0;
}
