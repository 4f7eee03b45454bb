// The few primitives the detectors need, from OpenSSL's libcrypto (built
// with NKCLASS_HAVE_OPENSSL; without it every function returns false and
// the detectors that need them recognise less: QUIC server names, Telegram's
// obfuscated transport). Private to csrc/detect.
//
// Thread-safe: each thread keeps its own cipher contexts. No allocation per
// call after a thread's first.
#pragma once

#include <cstddef>
#include <cstdint>

namespace nkclass::crypto {

// True when the library was built with libcrypto.
bool available() noexcept;

// One AES-128 block (ECB), as QUIC header protection uses it.
bool aes128_block(const std::uint8_t key[16], const std::uint8_t in[16],
                  std::uint8_t out[16]) noexcept;

// AES-128-GCM decryption of n bytes. With `tag` the tag is verified (false
// on mismatch); without it the bytes are only deciphered (CTR mode), for a
// message cut short by the capture limit.
bool aes128_gcm_open(const std::uint8_t key[16], const std::uint8_t iv[12],
                     const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* in,
                     std::size_t n, const std::uint8_t* tag, std::uint8_t* out) noexcept;

// AES-256-CTR of n bytes with a 16-byte initial counter block.
bool aes256_ctr(const std::uint8_t key[32], const std::uint8_t iv[16], const std::uint8_t* in,
                std::size_t n, std::uint8_t* out) noexcept;

// HKDF-Extract(salt, ikm) with SHA-256 (RFC 5869).
bool hkdf_extract(const std::uint8_t* salt, std::size_t salt_len, const std::uint8_t* ikm,
                  std::size_t ikm_len, std::uint8_t prk[32]) noexcept;

// TLS 1.3 HKDF-Expand-Label(secret, label, "", out_len) with SHA-256
// (RFC 8446 7.1); out_len <= 32.
bool hkdf_expand_label(const std::uint8_t secret[32], const char* label, std::uint8_t* out,
                       std::size_t out_len) noexcept;

}  // namespace nkclass::crypto
