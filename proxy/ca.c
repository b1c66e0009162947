/* proxy/ca.c - per-launch CA and leaf minting with OpenSSL (see ca.h).
 *
 * The cache is a small array searched linearly: a sandbox talks to a few
 * dozen names, and minting (one ECDSA signature) is the cost it avoids.
 */
#include "proxy/ca.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "common/log.h"
#include "net/policy.h"

struct leaf {
	char *name;
	X509 *cert;
};

struct ca {
	EVP_PKEY *key;		/* CA key: memory only */
	X509 *cert;
	EVP_PKEY *leaf_key;	/* shared by every leaf */
	struct leaf cache[CA_CACHE_MAX];
	unsigned n;
	unsigned next_evict;	/* round-robin slot once the cache is full */
};

static EVP_PKEY *new_p256(void)
{
	return EVP_EC_gen("P-256");
}

static int set_serial(X509 *x)
{
	unsigned char rnd[16];
	if (RAND_bytes(rnd, sizeof(rnd)) != 1)
		return -1;
	rnd[0] &= 0x7f;	/* positive */
	BIGNUM *bn = BN_bin2bn(rnd, sizeof(rnd), NULL);
	int ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) != NULL;
	BN_free(bn);
	return ok ? 0 : -1;
}

static int add_ext(X509 *cert, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
	X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (!ext)
		return -1;
	int ok = X509_add_ext(cert, ext, -1);
	X509_EXTENSION_free(ext);
	return ok ? 0 : -1;
}

/* Validity: from one day ago for days days. */
static int set_validity(X509 *x, int days)
{
	return X509_gmtime_adj(X509_getm_notBefore(x), -86400L) &&
			       X509_gmtime_adj(X509_getm_notAfter(x), 86400L * days)
		       ? 0
		       : -1;
}

static X509 *make_ca_cert(EVP_PKEY *key)
{
	X509 *x = X509_new();
	if (!x)
		return NULL;
	unsigned char rnd[4];
	char cn[64];
	RAND_bytes(rnd, sizeof(rnd));
	snprintf(cn, sizeof(cn), "kvmbox per-launch CA %02x%02x%02x%02x", rnd[0], rnd[1], rnd[2], rnd[3]);
	X509_NAME *n = X509_get_subject_name(x);
	if (!X509_set_version(x, 2) || set_serial(x) || set_validity(x, CA_DAYS) ||
	    !X509_NAME_add_entry_by_txt(n, "O", MBSTRING_ASC, (const unsigned char *)"kvmbox", -1, -1, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, n) || !X509_set_pubkey(x, key) ||
	    add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") ||
	    add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign") ||
	    add_ext(x, x, NID_subject_key_identifier, "hash") ||
	    !X509_sign(x, key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

struct ca *ca_new(void)
{
	struct ca *ca = calloc(1, sizeof(*ca));
	if (!ca)
		return NULL;
	ca->key = new_p256();
	ca->leaf_key = new_p256();
	if (ca->key && ca->leaf_key)
		ca->cert = make_ca_cert(ca->key);
	if (!ca->cert) {
		log_err("proxy: cannot create the per-launch CA (OpenSSL error %lu)", ERR_get_error());
		ca_free(ca);
		return NULL;
	}
	return ca;
}

void ca_free(struct ca *ca)
{
	if (!ca)
		return;
	for (unsigned i = 0; i < ca->n; i++) {
		free(ca->cache[i].name);
		X509_free(ca->cache[i].cert);
	}
	X509_free(ca->cert);
	EVP_PKEY_free(ca->key);
	EVP_PKEY_free(ca->leaf_key);
	free(ca);
}

X509 *ca_cert(const struct ca *ca)
{
	return ca->cert;
}

int ca_write_pem(const struct ca *ca, const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		return -errno;
	}
	int ok = PEM_write_X509(f, ca->cert);
	if (fclose(f) || !ok)
		return -EIO;
	return 0;
}

int ca_save(const struct ca *ca, const char *path)
{
	char tmp[4200];
	if (snprintf(tmp, sizeof(tmp), "%s.XXXXXX", path) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	int fd = mkostemp(tmp, O_CLOEXEC);	/* 0600 */
	if (fd < 0)
		return -errno;
	FILE *f = fdopen(fd, "w");
	if (!f) {
		int e = -errno;
		close(fd);
		unlink(tmp);
		return e;
	}
	int ok = PEM_write_PrivateKey(f, ca->key, NULL, NULL, 0, NULL, NULL) &&
		 PEM_write_X509(f, ca->cert);
	ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
	if (fclose(f) || !ok || rename(tmp, path) < 0) {
		unlink(tmp);
		return -EIO;
	}
	return 0;
}

/* The CA certificate fit to be ours again: a CA of kvmbox's shape (basic
 * constraints CA:TRUE) whose public key is key's. */
static bool ca_cert_fits(X509 *cert, EVP_PKEY *key)
{
	return X509_check_ca(cert) == 1 && X509_check_private_key(cert, key) == 1 &&
	       EVP_PKEY_is_a(key, "EC");
}

struct ca *ca_load(const char *path)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return NULL;
	struct ca *ca = calloc(1, sizeof(*ca));
	if (ca) {
		ca->key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		ca->cert = ca->key ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		ca->leaf_key = new_p256();
	}
	fclose(f);
	if (ca && (!ca->cert || !ca->leaf_key || !ca_cert_fits(ca->cert, ca->key))) {
		ca_free(ca);
		ca = NULL;
	}
	return ca;
}

static X509 *mint(struct ca *ca, const char *name)
{
	unsigned char ip[16];
	bool is_ip = inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
	char san[300];
	snprintf(san, sizeof(san), "%s:%s", is_ip ? "IP" : "DNS", name);
	X509 *x = X509_new();
	if (!x)
		return NULL;
	X509_NAME *n = X509_get_subject_name(x);
	/* CN is limited to 64 characters; the SAN carries the real name. */
	char cn[65];
	snprintf(cn, sizeof(cn), "%.64s", name);
	if (!X509_set_version(x, 2) || set_serial(x) || set_validity(x, LEAF_DAYS) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_set_issuer_name(x, X509_get_subject_name(ca->cert)) ||
	    !X509_set_pubkey(x, ca->leaf_key) ||
	    add_ext(x, ca->cert, NID_basic_constraints, "critical,CA:FALSE") ||
	    add_ext(x, ca->cert, NID_key_usage, "critical,digitalSignature") ||
	    add_ext(x, ca->cert, NID_ext_key_usage, "serverAuth") ||
	    add_ext(x, ca->cert, NID_subject_alt_name, san) ||
	    add_ext(x, ca->cert, NID_authority_key_identifier, "keyid:always") ||
	    !X509_sign(x, ca->key, EVP_sha256())) {
		X509_free(x);
		return NULL;
	}
	return x;
}

X509 *ca_leaf(struct ca *ca, const char *name)
{
	size_t len = strlen(name);
	if (!host_valid(name, len))
		return NULL;
	for (unsigned i = 0; i < ca->n; i++)
		if (!strcasecmp(ca->cache[i].name, name))
			return ca->cache[i].cert;
	X509 *x = mint(ca, name);
	char *copy = x ? strdup(name) : NULL;
	if (!copy) {
		X509_free(x);
		return NULL;
	}
	for (char *p = copy; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	unsigned slot = ca->n < CA_CACHE_MAX ? ca->n++ : ca->next_evict++ % CA_CACHE_MAX;
	if (slot < ca->n && ca->cache[slot].cert && ca->n == CA_CACHE_MAX) {
		free(ca->cache[slot].name);
		X509_free(ca->cache[slot].cert);
	}
	ca->cache[slot] = (struct leaf){ copy, x };
	return x;
}

int ca_use_leaf(struct ca *ca, SSL *ssl, const char *name)
{
	X509 *x = ca_leaf(ca, name);
	if (!x)
		return -EINVAL;
	if (SSL_use_certificate(ssl, x) != 1 || SSL_use_PrivateKey(ssl, ca->leaf_key) != 1 ||
	    SSL_add1_chain_cert(ssl, ca->cert) != 1)
		return -ENOMEM;
	return 0;
}
