// libcrypto wrappers (see crypto.hpp). Contexts are created once per thread
// with their cipher and re-keyed per call, which avoids OpenSSL 3's cipher
// fetch on every initialisation; HMAC likewise keeps one re-keyed MAC
// context per thread (OpenSSL 3's one-shot HMAC() fetches the digest and
// builds a context each call, which was most of a QUIC Initial's cost).
#include "crypto.hpp"

#include <cstring>

#ifdef NKCLASS_HAVE_OPENSSL
#include <openssl/evp.h>
#include <openssl/hmac.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#include <openssl/params.h>
#define NKCLASS_EVP_MAC 1
#endif
#endif

namespace nkclass::crypto {

#ifdef NKCLASS_HAVE_OPENSSL

namespace {

struct Ctx {
    EVP_CIPHER_CTX* ctx = nullptr;
    bool ready = false;
    ~Ctx() { EVP_CIPHER_CTX_free(ctx); }
};

// The thread's context for `cipher`, initialised for decryption (GCM) or
// encryption (ECB, CTR: the same operation both ways).
EVP_CIPHER_CTX* context(Ctx& c, const EVP_CIPHER* cipher, bool decrypt) noexcept {
    if (!c.ready) {
        c.ctx = EVP_CIPHER_CTX_new();
        if (c.ctx == nullptr) return nullptr;
        const int ok = decrypt ? EVP_DecryptInit_ex(c.ctx, cipher, nullptr, nullptr, nullptr)
                               : EVP_EncryptInit_ex(c.ctx, cipher, nullptr, nullptr, nullptr);
        if (ok != 1) return nullptr;
        c.ready = true;
    }
    return c.ctx;
}

// HMAC-SHA256 of `msg` under `key` into out[32].
#ifdef NKCLASS_EVP_MAC
struct MacCtx {
    EVP_MAC_CTX* ctx = nullptr;
    bool ready = false;
    ~MacCtx() { EVP_MAC_CTX_free(ctx); }
};

bool hmac_sha256(const std::uint8_t* key, std::size_t key_len, const std::uint8_t* msg,
                 std::size_t msg_len, std::uint8_t out[32]) noexcept {
    static EVP_MAC* const mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);  // shared, immutable
    thread_local MacCtx c;
    if (mac == nullptr) return false;
    if (!c.ready) {
        c.ctx = EVP_MAC_CTX_new(mac);
        if (c.ctx == nullptr) return false;
        char digest[] = "SHA256";
        const OSSL_PARAM params[] = {
            OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
            OSSL_PARAM_construct_end()};
        if (EVP_MAC_CTX_set_params(c.ctx, params) != 1) return false;
        c.ready = true;
    }
    std::size_t len = 0;
    return EVP_MAC_init(c.ctx, key, key_len, nullptr) == 1 &&
           EVP_MAC_update(c.ctx, msg, msg_len) == 1 &&
           EVP_MAC_final(c.ctx, out, &len, 32) == 1 && len == 32;
}
#else
bool hmac_sha256(const std::uint8_t* key, std::size_t key_len, const std::uint8_t* msg,
                 std::size_t msg_len, std::uint8_t out[32]) noexcept {
    unsigned int len = 0;
    return HMAC(EVP_sha256(), key, static_cast<int>(key_len), msg, msg_len, out, &len) !=
               nullptr &&
           len == 32;
}
#endif

}  // namespace

bool available() noexcept { return true; }

bool aes128_block(const std::uint8_t key[16], const std::uint8_t in[16],
                  std::uint8_t out[16]) noexcept {
    thread_local Ctx c;
    EVP_CIPHER_CTX* ctx = context(c, EVP_aes_128_ecb(), false);
    if (ctx == nullptr || EVP_EncryptInit_ex(ctx, nullptr, nullptr, key, nullptr) != 1) return false;
    EVP_CIPHER_CTX_set_padding(ctx, 0);
    int len = 0;
    return EVP_EncryptUpdate(ctx, out, &len, in, 16) == 1 && len == 16;
}

bool aes128_gcm_open(const std::uint8_t key[16], const std::uint8_t iv[12],
                     const std::uint8_t* aad, std::size_t aad_len, const std::uint8_t* in,
                     std::size_t n, const std::uint8_t* tag, std::uint8_t* out) noexcept {
    thread_local Ctx c;
    EVP_CIPHER_CTX* ctx = context(c, EVP_aes_128_gcm(), true);
    if (ctx == nullptr || n > (1u << 20) || aad_len > (1u << 16)) return false;
    if (EVP_DecryptInit_ex(ctx, nullptr, nullptr, key, iv) != 1) return false;
    int len = 0;
    if (aad_len != 0 && EVP_DecryptUpdate(ctx, nullptr, &len, aad, static_cast<int>(aad_len)) != 1)
        return false;
    if (n != 0 && EVP_DecryptUpdate(ctx, out, &len, in, static_cast<int>(n)) != 1) return false;
    if (tag == nullptr) return true;
    if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16,
                            const_cast<std::uint8_t*>(tag)) != 1)
        return false;
    std::uint8_t last[16];
    return EVP_DecryptFinal_ex(ctx, last, &len) == 1;
}

bool aes256_ctr(const std::uint8_t key[32], const std::uint8_t iv[16], const std::uint8_t* in,
                std::size_t n, std::uint8_t* out) noexcept {
    thread_local Ctx c;
    EVP_CIPHER_CTX* ctx = context(c, EVP_aes_256_ctr(), false);
    if (ctx == nullptr || n > (1u << 20)) return false;
    if (EVP_EncryptInit_ex(ctx, nullptr, nullptr, key, iv) != 1) return false;
    int len = 0;
    return EVP_EncryptUpdate(ctx, out, &len, in, static_cast<int>(n)) == 1 &&
           static_cast<std::size_t>(len) == n;
}

bool hkdf_extract(const std::uint8_t* salt, std::size_t salt_len, const std::uint8_t* ikm,
                  std::size_t ikm_len, std::uint8_t prk[32]) noexcept {
    return hmac_sha256(salt, salt_len, ikm, ikm_len, prk);
}

bool hkdf_expand_label(const std::uint8_t secret[32], const char* label, std::uint8_t* out,
                       std::size_t out_len) noexcept {
    // One HMAC block suffices for out_len <= 32: T(1) = HMAC(secret, info | 0x01),
    // info = length(2) | len("tls13 " + label)(1) | "tls13 " + label | 0 (empty context).
    const std::size_t label_len = std::strlen(label);
    if (out_len == 0 || out_len > 32 || label_len > 64) return false;
    std::uint8_t info[2 + 1 + 6 + 64 + 1 + 1];
    std::size_t k = 0;
    info[k++] = 0;
    info[k++] = static_cast<std::uint8_t>(out_len);
    info[k++] = static_cast<std::uint8_t>(6 + label_len);
    std::memcpy(info + k, "tls13 ", 6);
    k += 6;
    std::memcpy(info + k, label, label_len);
    k += label_len;
    info[k++] = 0;
    info[k++] = 1;
    std::uint8_t block[32];
    if (!hmac_sha256(secret, 32, info, k, block)) return false;
    std::memcpy(out, block, out_len);
    return true;
}

#else  // without libcrypto

bool available() noexcept { return false; }
bool aes128_block(const std::uint8_t*, const std::uint8_t*, std::uint8_t*) noexcept { return false; }
bool aes128_gcm_open(const std::uint8_t*, const std::uint8_t*, const std::uint8_t*, std::size_t,
                     const std::uint8_t*, std::size_t, const std::uint8_t*, std::uint8_t*) noexcept {
    return false;
}
bool aes256_ctr(const std::uint8_t*, const std::uint8_t*, const std::uint8_t*, std::size_t,
                std::uint8_t*) noexcept {
    return false;
}
bool hkdf_extract(const std::uint8_t*, std::size_t, const std::uint8_t*, std::size_t,
                  std::uint8_t*) noexcept {
    return false;
}
bool hkdf_expand_label(const std::uint8_t*, const char*, std::uint8_t*, std::size_t) noexcept {
    return false;
}

#endif

}  // namespace nkclass::crypto
