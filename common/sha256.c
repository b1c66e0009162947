/* common/sha256.c - see sha256.h. */
#include "common/sha256.h"

#include <errno.h>
#include <stdio.h>

#include <openssl/evp.h>

int sha256_hex(const void *p, size_t len, char out[SHA256_HEX_LEN + 1])
{
	unsigned char sum[32];
	unsigned n = 0;
	out[0] = '\0';
	if (EVP_Digest(p, len, sum, &n, EVP_sha256(), NULL) != 1 || n != sizeof(sum))
		return -EIO;
	for (unsigned i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", sum[i]);
	return 0;
}
