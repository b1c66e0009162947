/* guest/image/image.h - guest root filesystem images: the OCI layer unpacker,
 * the registry puller, the image store in the user's cache and the Debian
 * image builder behind `kvmbox setup`.
 *
 * An image is a directory IMAGES/NAME/ holding
 *   rootfs/                    the tree shared read-only into the guest
 *   rootfs/.kvmbox/api-version the image API version (decimal, one line)
 *   kvmbox-image.json          metadata: source, digest, created, size...
 * Images are always built in IMAGES/.tmp-NAME-PID-XXXXXX and renamed into place
 * at the end, so an interrupted or failed build never leaves a half-written
 * image under its final name.
 *
 * Every function returns 0 or a negative errno, and logs one line naming the
 * layer, blob or file at fault before it fails.
 */
#ifndef KVMBOX_GUEST_IMAGE_H
#define KVMBOX_GUEST_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The image API version this kvmbox builds and accepts. */
#define IMAGE_API_VERSION 1
#define IMAGE_API_FILE ".kvmbox/api-version"
#define IMAGE_META_FILE "kvmbox-image.json"
#define IMAGE_NAME_MAX 128

/* ---- libraries opened on first use (dl_curl.c, dl_archive.c) ----------- */

/* A library `kvmbox pull` opens when it first needs it, and its Debian
 * package (kvmbox doctor reports them). */
struct image_dl_lib {
	const char *soname, *pkg;
};
extern const struct image_dl_lib image_curl_lib, image_archive_lib;

/* ---- layer unpacking (unpack.c) ---------------------------------------- */

/* Statistics of one unpacked layer. */
struct unpack_stats {
	uint64_t entries;	/* tar entries read */
	uint64_t bytes;		/* regular-file bytes written */
	uint64_t whiteouts;	/* .wh.NAME and opaque markers applied */
	uint64_t skipped;	/* device nodes and other neutralised entries */
};

/* Apply one layer (a tar stream, plain, gzip or zstd, read from layer_fd) to
 * the tree under root_fd.  Every path is resolved with openat2(RESOLVE_IN_ROOT)
 * from root_fd, so nothing (absolute symlinks, "..", symlinked parents,
 * hardlink targets) can reach outside it.  Entries with absolute or ".."
 * paths are refused (-EPERM), device nodes are skipped, OCI whiteouts are
 * applied.  label names the layer in every error message. */
int image_unpack_layer(int root_fd, int layer_fd, const char *label,
		       struct unpack_stats *st);

/* Normalise a tar entry name into a relative path in out (strip "./" and
 * duplicate slashes, trailing "/"): 0, -EPERM for absolute or ".." names,
 * -ENAMETOOLONG, or -EINVAL for an empty name other than "." (out = ""). */
int image_sanitize_path(const char *name, char *out, size_t outlen);

/* Remove path (a file or a whole tree) beneath dir_fd without following
 * symlinks: 0 (also when it did not exist) or -errno. */
int image_remove_tree_at(int dir_fd, const char *name);

/* ---- OCI / Docker documents (oci.c) ------------------------------------ */

enum oci_kind { OCI_KIND_INDEX, OCI_KIND_MANIFEST };

enum oci_compression { OCI_COMP_NONE, OCI_COMP_GZIP, OCI_COMP_ZSTD };

/* A content descriptor: a blob by its digest. */
struct oci_desc {
	char digest[72];	/* "sha256:" + 64 lowercase hex */
	int64_t size;
	char media_type[128];
	enum oci_compression comp;	/* layers only */
};

#define OCI_MAX_LAYERS 256

/* A parsed image manifest (OCI or Docker schema 2). */
struct oci_manifest {
	struct oci_desc config;
	struct oci_desc layers[OCI_MAX_LAYERS];
	size_t nlayers;
};

/* What we keep from an image config blob. */
struct oci_config {
	char os[32];
	char arch[32];
	char created[64];
};

/* Check "sha256:<64 lowercase hex>": true when well formed. */
bool oci_digest_valid(const char *digest);

/* Which kind of document a manifest response holds, from the Content-Type
 * (may be NULL) and the body's mediaType / manifests / layers fields. */
int oci_classify(const char *content_type, const char *body, size_t len,
		 enum oci_kind *kind);

/* From an index / manifest list, pick the manifest for os/arch (e.g.
 * "linux", "amd64"): 0 with *out filled, -ENOENT when none matches. */
int oci_index_pick(const char *body, size_t len, const char *os,
		   const char *arch, struct oci_desc *out);

/* Parse an image manifest: 0 or -EINVAL / -E2BIG / -ENOTSUP (foreign or
 * unknown layer media type, with one line logged). */
int oci_manifest_parse(const char *body, size_t len, struct oci_manifest *m);

/* Parse the fields of an image config blob we keep. */
int oci_config_parse(const char *body, size_t len, struct oci_config *c);

/* ---- image references (ref.c) ------------------------------------------ */

/* A parsed image reference: [REGISTRY/]REPO[:TAG][@DIGEST]. */
struct image_ref {
	char registry[256];	/* host[:port]; Docker Hub is registry-1.docker.io */
	char repo[256];		/* e.g. library/debian */
	char tag[128];		/* "latest" when neither tag nor digest given */
	char digest[72];	/* "" unless pinned by digest */
};

/* true when name is a valid image name: [A-Za-z0-9._-], shorter than
 * IMAGE_NAME_MAX, not starting with '.' or '-' (the store's folder
 * names, and what image_ref_default_name makes of a reference). */
bool image_name_valid(const char *name);

/* Parse s into ref: 0, or -EINVAL for what `docker pull` would refuse. */
int image_ref_parse(const char *s, struct image_ref *ref);
/* Whether the registry host is loopback (localhost, 127.x, [::1]). */
bool image_ref_is_loopback(const struct image_ref *ref);
/* Default local image name for a reference: last repository component, plus
 * "-TAG" unless the tag is "latest" (characters outside [A-Za-z0-9._-]
 * become '-'). */
int image_ref_default_name(const struct image_ref *ref, char *out, size_t len);

/* Parse one WWW-Authenticate header value.  *scheme gets "Bearer"/"Basic";
 * realm, service and scope are copied when present (else ""). */
int image_parse_www_authenticate(const char *value, char *scheme, size_t slen,
				 char *realm, size_t rlen, char *service,
				 size_t svlen, char *scope, size_t sclen);

/* ---- the image store (store.c) ----------------------------------------- */

/* Cache root: $KVMBOX_CACHE, else $XDG_CACHE_HOME/kvmbox, else
 * $HOME/.cache/kvmbox.  Created (0700) on demand. */
int image_cache_dir(char *out, size_t len);
/* IMAGES directory: <cache>/images. */
int image_images_dir(char *out, size_t len);

/* Metadata written into IMAGES/NAME/kvmbox-image.json. */
struct image_meta {
	char name[IMAGE_NAME_MAX];
	char source[700];	/* the reference or "mmdebstrap ..." */
	char digest[72];	/* manifest digest, or "" for built images */
	char created[64];	/* from the image config, ISO 8601 */
	char built[64];		/* when this machine built / pulled it */
	uint64_t size;		/* bytes in rootfs */
	int api_version;
	char stamp[72];		/* builder inputs key (setup), else "" */
};

int image_meta_write(int dir_fd, const struct image_meta *m);
int image_meta_read(int dir_fd, struct image_meta *m);

/* Refuse an image directory whose rootfs API version is not ours, with a
 * message naming the command that fixes it: 0, -ENOENT (no such image or
 * no version file), -EPROTO (other version). */
int image_check_api(const char *image_dir);

/* For the launch path (`--image NAME|REF`): find the image by local name,
 * else by the default name of a reference, check its API version, and put
 * the path of its rootfs in out.  NULL or "" means "default".  0, or
 * -ENOENT / -EPROTO / -EINVAL after one line naming the command that fixes
 * it (`kvmbox setup`, `kvmbox pull REF`). */
int image_resolve(const char *name_or_ref, char *out, size_t len);

/* Bytes used by a tree (regular files' sizes plus symlinks), not
 * following symlinks. */
int image_tree_size(int dir_fd, uint64_t *bytes);

/* A half-built image: IMAGES/.tmp-NAME-PID-XXXXXX with rootfs/ inside. */
struct image_build {
	char images[4096];
	char name[IMAGE_NAME_MAX];
	char tmp[4200];		/* path of the temporary directory */
	int tmp_fd;		/* O_DIRECTORY fd of tmp */
	int rootfs_fd;		/* O_DIRECTORY fd of tmp/rootfs */
};

int image_build_begin(struct image_build *b, const char *name);
/* Write the API version file and metadata (size computed here), fsync and
 * rename into IMAGES/NAME, replacing an older image of that name. */
int image_build_commit(struct image_build *b, struct image_meta *m);
/* Remove the temporary directory (after a failure); safe to call twice. */
void image_build_abort(struct image_build *b);

/* Remove IMAGES/NAME. */
int image_remove(const char *name);

/* ---- the registry puller (pull.c) -------------------------------------- */

struct pull_opts {
	const char *ref;	/* the reference to pull */
	const char *name;	/* local name, or NULL for the default */
	bool insecure;		/* allow http:// for a non-loopback registry */
	bool progress_tty;	/* draw progress bars (stderr is a TTY) */
};

int image_pull(const struct pull_opts *o);

/* ---- the Debian image builder (setup.c) -------------------------------- */

struct setup_opts {
	const char *name;	/* image name ("default") */
	const char *suite;	/* "bookworm" */
	const char *mirror;	/* NULL: from the host's apt sources */
	bool refresh;		/* rebuild even when the stamps match */
};

int image_setup(const struct setup_opts *o);

/* The first Debian mirror URL in the host's apt sources (one-line and
 * deb822 formats), else http://deb.debian.org/debian. */
int image_host_mirror(const char *sources_dir_root, char *out, size_t len);

#endif
