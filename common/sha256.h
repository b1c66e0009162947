/* common/sha256.h - the SHA-256 of some bytes as 64 lowercase hex digits
 * (OpenSSL's EVP): the one spelling kvmbox uses for content keys (templates,
 * image setup recipes) and identities (a snapshot's kernel). */
#ifndef KVMBOX_COMMON_SHA256_H
#define KVMBOX_COMMON_SHA256_H

#include <stddef.h>

#define SHA256_HEX_LEN 64

/* The digest of @len bytes at @p into out (SHA256_HEX_LEN + 1 bytes,
 * NUL-terminated): 0, or -EIO with out "" when OpenSSL fails. */
int sha256_hex(const void *p, size_t len, char out[SHA256_HEX_LEN + 1]);

#endif
