/* guest/image/store.c - the image store in the user's cache: where images
 * live, their metadata file, the API version check, and the build-in-a-temp-
 * directory-then-rename protocol that keeps a failed build from leaving a
 * half-written image under its final name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "guest/image/image.h"

static int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	if (strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(tmp, mode) && errno != EEXIST ? -errno : 0;
}

int image_cache_dir(char *out, size_t len)
{
	const char *k = getenv("KVMBOX_CACHE"), *x = getenv("XDG_CACHE_HOME");
	const char *h = getenv("HOME");
	int n;
	if (k && *k)
		n = snprintf(out, len, "%s", k);
	else if (x && *x == '/')
		n = snprintf(out, len, "%s/kvmbox", x);
	else if (h && *h == '/')
		n = snprintf(out, len, "%s/.cache/kvmbox", h);
	else
		return -ENOENT;
	if (n < 0 || (size_t)n >= len)
		return -ENAMETOOLONG;
	return mkdir_p(out, 0700);
}

int image_images_dir(char *out, size_t len)
{
	char cache[4096];
	int r = image_cache_dir(cache, sizeof(cache));
	if (r)
		return r;
	if ((size_t)snprintf(out, len, "%s/images", cache) >= len)
		return -ENAMETOOLONG;
	return mkdir_p(out, 0700);
}

int image_meta_write(int dir_fd, const struct image_meta *m)
{
	struct json_object *o = json_object_new_object();
	if (!o)
		return -ENOMEM;
	json_object_object_add(o, "name", json_object_new_string(m->name));
	json_object_object_add(o, "source", json_object_new_string(m->source));
	json_object_object_add(o, "digest", json_object_new_string(m->digest));
	json_object_object_add(o, "created", json_object_new_string(m->created));
	json_object_object_add(o, "built", json_object_new_string(m->built));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)m->size));
	json_object_object_add(o, "api_version", json_object_new_int(m->api_version));
	json_object_object_add(o, "stamp", json_object_new_string(m->stamp));
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);
	int r = 0;
	int fd = openat(dir_fd, IMAGE_META_FILE ".tmp",
			O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		r = -errno;
	if (!r)
		r = write_full(fd, s, strlen(s));
	if (!r)
		r = write_full(fd, "\n", 1);
	if (!r && fsync(fd))
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (!r && renameat(dir_fd, IMAGE_META_FILE ".tmp", dir_fd, IMAGE_META_FILE))
		r = -errno;
	json_object_put(o);
	return r;
}

/* Read a small file beneath dir_fd (no symlink at the last component). */
static int read_small_at(int dir_fd, const char *name, char *buf, size_t len)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, len - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	return (int)n;
}

static void meta_str(struct json_object *o, const char *key, char *dst, size_t len)
{
	struct json_object *v;
	dst[0] = '\0';
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		snprintf(dst, len, "%s", json_object_get_string(v));
}

int image_meta_read(int dir_fd, struct image_meta *m)
{
	static char buf[16384];	/* single-threaded CLI use only */
	memset(m, 0, sizeof(*m));
	int n = read_small_at(dir_fd, IMAGE_META_FILE, buf, sizeof(buf));
	if (n < 0)
		return n;
	struct json_object *o = json_tokener_parse(buf), *v;
	if (!o || !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return -EINVAL;
	}
	meta_str(o, "name", m->name, sizeof(m->name));
	meta_str(o, "source", m->source, sizeof(m->source));
	meta_str(o, "digest", m->digest, sizeof(m->digest));
	meta_str(o, "created", m->created, sizeof(m->created));
	meta_str(o, "built", m->built, sizeof(m->built));
	meta_str(o, "stamp", m->stamp, sizeof(m->stamp));
	if (json_object_object_get_ex(o, "size", &v))
		m->size = (uint64_t)json_object_get_int64(v);
	if (json_object_object_get_ex(o, "api_version", &v))
		m->api_version = json_object_get_int(v);
	json_object_put(o);
	return 0;
}

/* The API version in rootfs/.kvmbox/api-version beneath image dir fd. */
static int read_api_version(int dir_fd, int *version)
{
	char buf[32];
	int fd = openat(dir_fd, "rootfs", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	int n = read_small_at(fd, IMAGE_API_FILE, buf, sizeof(buf));
	close(fd);
	if (n < 0)
		return n;
	char *end;
	long v = strtol(buf, &end, 10);
	if (end == buf || (*end && *end != '\n') || v < 0 || v > 1000000)
		return -EINVAL;
	*version = (int)v;
	return 0;
}

int image_check_api(const char *image_dir)
{
	int fd = open(image_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		log_err("image %s not found: run `kvmbox setup` (default image) or "
			"`kvmbox pull REF`", image_dir);
		return -ENOENT;
	}
	int v = -1;
	int r = read_api_version(fd, &v);
	close(fd);
	if (r) {
		log_err("image %s has no readable API version (%s): rebuild it with "
			"`kvmbox setup --refresh` or `kvmbox pull REF` again",
			image_dir, IMAGE_API_FILE);
		return r == -ENOENT ? -ENOENT : -EPROTO;
	}
	if (v != IMAGE_API_VERSION) {
		log_err("image %s has API version %d but this kvmbox needs %d: rebuild it "
			"with `kvmbox setup --refresh` or `kvmbox pull REF` again",
			image_dir, v, IMAGE_API_VERSION);
		return -EPROTO;
	}
	return 0;
}

int image_resolve(const char *arg, char *out, size_t len)
{
	char images[4096], dir[4400], name[IMAGE_NAME_MAX];
	int r = image_images_dir(images, sizeof(images));
	if (r)
		return r;
	if (!arg || !*arg)
		arg = "default";
	struct image_ref ref;
	struct stat st;
	snprintf(dir, sizeof(dir), "%s/%s", images, arg);
	if (!image_name_valid(arg) || stat(dir, &st)) {
		if (image_ref_parse(arg, &ref) ||
		    image_ref_default_name(&ref, name, sizeof(name))) {
			log_err("image '%s' is neither a local image nor a valid reference", arg);
			return -EINVAL;
		}
		snprintf(dir, sizeof(dir), "%s/%s", images, name);
		if (stat(dir, &st)) {
			log_err("image '%s' not found: run `kvmbox %s`", arg,
				!strcmp(arg, "default") ? "setup" : "pull REF");
			return -ENOENT;
		}
	}
	r = image_check_api(dir);
	if (r)
		return r;
	if ((size_t)snprintf(out, len, "%s/rootfs", dir) >= len)
		return -ENAMETOOLONG;
	return 0;
}

static int tree_size(int dfd, uint64_t *bytes, int depth)
{
	if (depth > 512)
		return -ELOOP;
	int fd2 = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);	/* own offset */
	DIR *d = fd2 < 0 ? NULL : fdopendir(fd2);
	if (!d) {
		if (fd2 >= 0)
			close(fd2);
		return -errno;
	}
	int r = 0;
	struct dirent *de;
	while (!r && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISREG(st.st_mode) || S_ISLNK(st.st_mode))
			*bytes += (uint64_t)st.st_size;
		if (!S_ISDIR(st.st_mode))
			continue;
		int cfd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (cfd < 0)
			continue;
		r = tree_size(cfd, bytes, depth + 1);
		close(cfd);
	}
	closedir(d);
	return r;
}

int image_tree_size(int dir_fd, uint64_t *bytes)
{
	*bytes = 0;
	return tree_size(dir_fd, bytes, 0);
}

/* The pid embedded in a leftover ".tmp-NAME-PID-XXXXXX" or ".rm-NAME-PID"
 * directory, or 0 when the name is not one of ours. */
static long leftover_pid(const char *name)
{
	bool tmp = !strncmp(name, ".tmp-", 5);
	if (!tmp && strncmp(name, ".rm-", 4))
		return 0;
	char buf[IMAGE_NAME_MAX + 64];
	if (strlen(name) >= sizeof(buf))
		return 0;
	strcpy(buf, name);
	char *dash = strrchr(buf, '-');
	if (tmp && dash) {	/* drop the mkdtemp suffix */
		*dash = '\0';
		dash = strrchr(buf, '-');
	}
	if (!dash)
		return 0;
	char *end;
	long pid = strtol(dash + 1, &end, 10);
	return *end || pid <= 0 ? 0 : pid;
}

/* Remove temporary directories left by kvmbox processes that died (killed
 * during a pull or setup); those of live processes are left alone. */
static void sweep_leftovers(const char *images)
{
	int dfd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	char *dead[64];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < ARRAY_SIZE(dead)) {
		long pid = leftover_pid(de->d_name);
		if (pid && kill((pid_t)pid, 0) && errno == ESRCH)
			dead[n++] = strdup(de->d_name);
	}
	for (size_t i = 0; i < n; i++) {
		if (dead[i]) {
			log_info("removing %s/%s left by an interrupted run", images, dead[i]);
			image_remove_tree_at(dfd, dead[i]);
		}
		free(dead[i]);
	}
	closedir(d);
}

int image_build_begin(struct image_build *b, const char *name)
{
	memset(b, 0, sizeof(*b));
	b->tmp_fd = b->rootfs_fd = -1;
	if (!image_name_valid(name)) {
		log_err("invalid image name '%s' (letters, digits, '.', '_', '-')", name);
		return -EINVAL;
	}
	int r = image_images_dir(b->images, sizeof(b->images));
	if (r) {
		log_err("image cache directory: %s", strerror(-r));
		return r;
	}
	sweep_leftovers(b->images);
	strcpy(b->name, name);
	snprintf(b->tmp, sizeof(b->tmp), "%s/.tmp-%s-%d-XXXXXX", b->images, name, (int)getpid());
	if (!mkdtemp(b->tmp)) {
		r = -errno;
		log_err("creating %s: %s", b->tmp, strerror(-r));
		b->tmp[0] = '\0';
		return r;
	}
	b->tmp_fd = open(b->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b->tmp_fd < 0 || mkdirat(b->tmp_fd, "rootfs", 0755) ||
	    (b->rootfs_fd = openat(b->tmp_fd, "rootfs",
				   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		r = -errno;
		log_err("creating %s/rootfs: %s", b->tmp, strerror(-r));
		image_build_abort(b);
		return r;
	}
	return 0;
}

static void now_iso8601(char *out, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int write_api_file(int rootfs_fd)
{
	if (mkdirat(rootfs_fd, ".kvmbox", 0755) && errno != EEXIST)
		return -errno;
	int dfd = openat(rootfs_fd, ".kvmbox", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d\n", IMAGE_API_VERSION);
	int fd = openat(dfd, "api-version", O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
			0644);
	int r = fd < 0 ? -errno : write_full(fd, buf, (size_t)n);
	if (fd >= 0)
		close(fd);
	close(dfd);
	return r;
}

int image_build_commit(struct image_build *b, struct image_meta *m)
{
	int r = write_api_file(b->rootfs_fd);
	if (!r)
		r = image_tree_size(b->rootfs_fd, &m->size);
	if (!r) {
		snprintf(m->name, sizeof(m->name), "%s", b->name);
		m->api_version = IMAGE_API_VERSION;
		if (!m->built[0])
			now_iso8601(m->built, sizeof(m->built));
		r = image_meta_write(b->tmp_fd, m);
	}
	if (r) {
		log_err("finishing image %s: %s", b->name, strerror(-r));
		return r;
	}
	syncfs(b->tmp_fd);
	char final[4400];
	snprintf(final, sizeof(final), "%s/%s", b->images, b->name);
	/* Swap atomically with an older image of the same name, then delete it
	 * (now under the temporary name). */
	if (renameat2(AT_FDCWD, b->tmp, AT_FDCWD, final, RENAME_EXCHANGE) == 0) {
		image_build_abort(b);
		return 0;
	}
	if (errno != ENOENT || rename(b->tmp, final)) {
		r = -errno;
		log_err("renaming %s to %s: %s", b->tmp, final, strerror(-r));
		return r;
	}
	close(b->rootfs_fd);
	close(b->tmp_fd);
	b->rootfs_fd = b->tmp_fd = -1;
	b->tmp[0] = '\0';
	return 0;
}

void image_build_abort(struct image_build *b)
{
	if (b->rootfs_fd >= 0)
		close(b->rootfs_fd);
	if (b->tmp_fd >= 0)
		close(b->tmp_fd);
	b->rootfs_fd = b->tmp_fd = -1;
	if (!b->tmp[0])
		return;
	int dfd = open(b->images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	const char *base = strrchr(b->tmp, '/');
	if (dfd >= 0 && base) {
		int r = image_remove_tree_at(dfd, base + 1);
		if (r)
			log_warn("could not remove %s: %s", b->tmp, strerror(-r));
	}
	if (dfd >= 0)
		close(dfd);
	b->tmp[0] = '\0';
}

int image_remove(const char *name)
{
	char images[4096];
	if (!image_name_valid(name))
		return -EINVAL;
	int r = image_images_dir(images, sizeof(images));
	if (r)
		return r;
	int dfd = open(images, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW)) {
		r = -errno;
	} else {
		/* Move it aside first so a half-removed image never shows. */
		char aside[IMAGE_NAME_MAX + 32];
		snprintf(aside, sizeof(aside), ".rm-%s-%d", name, (int)getpid());
		r = renameat(dfd, name, dfd, aside) ? -errno : image_remove_tree_at(dfd, aside);
	}
	close(dfd);
	return r;
}
