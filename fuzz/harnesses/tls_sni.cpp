// Fuzzes the TLS ClientHello server-name reader on its own (the detector
// that walks the most length fields), checking its output contract.
#include <cstdint>

#include "fuzz_input.hpp"
#include "nkclass/detectors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto bytes = fuzz::exact_copy(data, size);
    char name[nkclass::kMaxName + 1];
    bool is_hello = false;
    const std::size_t n = nkclass::tls_client_hello_sni(bytes.get(), size, name, &is_hello);
    fuzz::check(n <= nkclass::kMaxName, "name within kMaxName");
    fuzz::check(n == 0 || is_hello, "a name comes only from a ClientHello");
    for (std::size_t i = 0; i < n; ++i)
        fuzz::check(name[i] >= 0x21 && name[i] <= 0x7e && !(name[i] >= 'A' && name[i] <= 'Z'),
                    "name is lowercase printable ASCII");
    // The same call without the is_hello output gives the same name.
    char again[nkclass::kMaxName + 1];
    fuzz::check(nkclass::tls_client_hello_sni(bytes.get(), size, again, nullptr) == n &&
                    std::memcmp(name, again, n) == 0,
                "tls_client_hello_sni is deterministic");
    return 0;
}
