// Fuzzes the mining JSON-RPC scanner (the detectors' JSON parser) on its
// own, checking its output contract.
#include <cstdint>

#include "fuzz_input.hpp"
#include "nkclass/detectors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = fuzz::exact_copy(data, size);
    nkclass::StratumMatch m;
    nkclass::scan_stratum(bytes.get(), size, &m);
    fuzz::check(m.coin < nkclass::kCoinCount, "coin code in range");
    fuzz::check(m.agent_len <= nkclass::kMaxAgent && m.agent[m.agent_len] == '\0',
                "agent NUL-terminated within kMaxAgent");
    fuzz::check(m.mining || (m.agent_len == 0 && m.coin == nkclass::kCoinUnknown),
                "no agent or coin without a match");
    return 0;
}
