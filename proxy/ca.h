/* proxy/ca.h - the per-launch certificate authority and leaf-certificate cache.
 *
 * Each kvmbox launch makes a fresh CA: an EC P-256 key that exists only in
 * this process's memory and a self-signed certificate (valid from one day
 * before now, for CA_DAYS) that the guest installs as trusted.  When the
 * guest opens TLS to a name, a leaf certificate for exactly that name (SAN
 * DNS, or SAN IP for an address) is minted, signed by the CA and cached;
 * its notBefore is backdated one day so a guest clock that lags a little
 * still accepts it, and it expires after LEAF_DAYS.  All leaves share one
 * per-launch EC key.  A suspended sandbox keeps its CA (ca_save), so the
 * processes of the guest it resumes still trust the proxy (ca_load).
 */
#ifndef KVMBOX_PROXY_CA_H
#define KVMBOX_PROXY_CA_H

#include <stddef.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#define CA_DAYS 30
#define LEAF_DAYS 7
#define CA_CACHE_MAX 512	/* leaves kept; the oldest is dropped beyond */

struct ca;

/* A new CA, or NULL (OpenSSL failure, logged). */
struct ca *ca_new(void);
void ca_free(struct ca *ca);
/* The CA certificate as PEM into path (mode 0644): 0 or -errno. */
int ca_write_pem(const struct ca *ca, const char *path);
/* Keep the CA for a later process (a suspended sandbox's resume, whose
 * guest trusts this CA): its key and certificate as PEM into path, mode
 * 0600, written whole (a temporary file renamed).  0 or -errno. */
int ca_save(const struct ca *ca, const char *path);
/* The CA ca_save kept in path, with a fresh leaf key; NULL when the file
 * cannot be read or is not a CA certificate with its own EC key. */
struct ca *ca_load(const char *path);
/* The CA certificate (borrowed). */
X509 *ca_cert(const struct ca *ca);
/* Put the leaf for name (hostname or IP literal) on ssl, minting it if not
 * cached: 0 or -EINVAL (bad name) / -ENOMEM. */
int ca_use_leaf(struct ca *ca, SSL *ssl, const char *name);
/* The leaf for name (borrowed, cached), for tests. */
X509 *ca_leaf(struct ca *ca, const char *name);

#endif
