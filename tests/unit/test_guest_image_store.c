/* tests/unit/test_guest_image_store.c - the image store: cache directory
 * selection (KVMBOX_CACHE, XDG_CACHE_HOME, HOME), build-then-rename (a
 * failed build leaves nothing under the final name; a rebuild replaces the
 * old image), metadata round trip, the API version check, and the host
 * apt mirror lookup used by `kvmbox setup`. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "guest/image/image.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/kvmbox-store-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	int fd = open("/tmp", O_RDONLY | O_DIRECTORY);
	image_remove_tree_at(fd, tmpdir + 5);
	close(fd);
	unsetenv("KVMBOX_CACHE");
	return 0;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_cache_dir_env(void **state)
{
	(void)state;
	char out[4096], want[256];
	unsetenv("KVMBOX_CACHE");
	snprintf(want, sizeof(want), "%s/xdg", tmpdir);
	setenv("XDG_CACHE_HOME", want, 1);
	assert_int_equal(image_cache_dir(out, sizeof(out)), 0);
	strcat(want, "/kvmbox");
	assert_string_equal(out, want);
	unsetenv("XDG_CACHE_HOME");
	setenv("HOME", tmpdir, 1);
	assert_int_equal(image_cache_dir(out, sizeof(out)), 0);
	snprintf(want, sizeof(want), "%s/.cache/kvmbox", tmpdir);
	assert_string_equal(out, want);
	snprintf(want, sizeof(want), "%s/explicit", tmpdir);
	setenv("KVMBOX_CACHE", want, 1);
	assert_int_equal(image_cache_dir(out, sizeof(out)), 0);
	assert_string_equal(out, want);
	struct stat st;
	assert_int_equal(stat(want, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
}

static void test_build_abort_and_commit(void **state)
{
	(void)state;
	char cache[256], final[512], api[600];
	snprintf(cache, sizeof(cache), "%s/c", tmpdir);
	setenv("KVMBOX_CACHE", cache, 1);
	snprintf(final, sizeof(final), "%s/images/img", cache);
	/* leftovers of dead processes are swept, a live one's are kept */
	char left[600], live[600];
	snprintf(left, sizeof(left), "%s/images/.tmp-img-2147483646-abcdef", cache);
	snprintf(live, sizeof(live), "%s/images/.tmp-img-%d-abcdef", cache, (int)getpid());
	assert_int_equal(image_cache_dir(api, sizeof(api)), 0);
	mkdir(api, 0700);
	snprintf(api, sizeof(api), "%s/images", cache);
	mkdir(api, 0700);
	assert_int_equal(mkdir(left, 0700), 0);
	assert_int_equal(mkdir(live, 0700), 0);
	struct image_build b;
	assert_int_equal(image_build_begin(&b, "img"), 0);
	assert_int_not_equal(access(left, F_OK), 0);
	assert_int_equal(access(live, F_OK), 0);
	rmdir(live);
	int fd = openat(b.rootfs_fd, "half-written", O_WRONLY | O_CREAT, 0644);
	assert_true(fd >= 0);
	close(fd);
	image_build_abort(&b);
	assert_int_not_equal(access(final, F_OK), 0);
	assert_int_equal(image_build_begin(&b, "../evil"), -EINVAL);

	for (int round = 0; round < 2; round++) {	/* the second replaces the first */
		assert_int_equal(image_build_begin(&b, "img"), 0);
		fd = openat(b.rootfs_fd, round ? "second" : "first", O_WRONLY | O_CREAT, 0644);
		assert_int_equal(write(fd, "12345", 5), 5);
		close(fd);
		struct image_meta m = { 0 };
		strcpy(m.source, "unit/test:v1");
		strcpy(m.created, "2026-01-01T00:00:00Z");
		assert_int_equal(image_build_commit(&b, &m), 0);
		assert_int_equal(m.size, 5 + 2);	/* file + "1\n" */
	}
	char path[700];
	snprintf(path, sizeof(path), "%s/rootfs/second", final);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/rootfs/first", final);
	assert_int_not_equal(access(path, F_OK), 0);
	/* nothing else left in the images directory */
	char images[400];
	snprintf(images, sizeof(images), "%s/images", cache);
	int dfd = open(images, O_RDONLY | O_DIRECTORY);
	struct image_meta m;
	int ifd = openat(dfd, "img", O_RDONLY | O_DIRECTORY);
	assert_int_equal(image_meta_read(ifd, &m), 0);
	assert_string_equal(m.name, "img");
	assert_string_equal(m.source, "unit/test:v1");
	assert_int_equal(m.api_version, IMAGE_API_VERSION);
	close(ifd);
	close(dfd);

	assert_int_equal(image_check_api(final), 0);
	char rootfs[700], want[700];
	snprintf(want, sizeof(want), "%s/rootfs", final);
	assert_int_equal(image_resolve("img", rootfs, sizeof(rootfs)), 0);
	assert_string_equal(rootfs, want);
	/* a reference resolves through its default name (REPO's last part) */
	assert_int_equal(image_resolve("example.org/some/img", rootfs, sizeof(rootfs)), 0);
	assert_string_equal(rootfs, want);
	assert_int_equal(image_resolve("example.org/some/img:v2", rootfs, sizeof(rootfs)), -ENOENT);
	assert_int_equal(image_resolve(NULL, rootfs, sizeof(rootfs)), -ENOENT);	/* no default */
	assert_int_equal(image_resolve("Bad//Ref", rootfs, sizeof(rootfs)), -EINVAL);
	snprintf(api, sizeof(api), "%s/rootfs/" IMAGE_API_FILE, final);
	write_text(api, "2\n");
	assert_int_equal(image_check_api(final), -EPROTO);
	assert_int_equal(image_resolve("img", rootfs, sizeof(rootfs)), -EPROTO);
	write_text(api, "garbage");
	assert_int_equal(image_check_api(final), -EPROTO);
	unlink(api);
	assert_int_equal(image_check_api(final), -ENOENT);
	snprintf(path, sizeof(path), "%s/nope", images);
	assert_int_equal(image_check_api(path), -ENOENT);

	assert_int_equal(image_remove("img"), 0);
	assert_int_not_equal(access(final, F_OK), 0);
	assert_int_equal(image_remove("img"), -ENOENT);
	assert_int_equal(image_remove(".."), -EINVAL);
}

static void test_host_mirror(void **state)
{
	(void)state;
	char root[128], p[256], out[512];
	snprintf(root, sizeof(root), "%s/r", tmpdir);
	snprintf(p, sizeof(p), "%s/etc/apt/sources.list.d", root);
	char cmd[400];
	snprintf(cmd, sizeof(cmd), "mkdir -p %s", p);
	assert_int_equal(system(cmd), 0);
	/* nothing configured: Debian's default */
	assert_int_equal(image_host_mirror(root, out, sizeof(out)), 0);
	assert_string_equal(out, "http://deb.debian.org/debian");
	/* deb822, security first, a disabled file ignored */
	snprintf(p, sizeof(p), "%s/etc/apt/sources.list.d/zz.list.disabled", root);
	write_text(p, "deb http://disabled.example/debian bookworm main\n");
	snprintf(p, sizeof(p), "%s/etc/apt/sources.list.d/debian.sources", root);
	write_text(p, "Types: deb\nURIs: http://mirror.example/debian-security\nSuites: x\n\n"
		      "Types: deb-src\nURIs: http://src.example/debian\n\n"
		      "Types: deb\n# comment\nURIs: https://mirror.example/debian\n"
		      "Suites: bookworm\nComponents: main\n");
	assert_int_equal(image_host_mirror(root, out, sizeof(out)), 0);
	assert_string_equal(out, "https://mirror.example/debian");
	/* one-line format wins when present, options skipped */
	snprintf(p, sizeof(p), "%s/etc/apt/sources.list", root);
	write_text(p, "# deb http://commented.example/debian bookworm main\n"
		      "deb-src http://src.example/debian bookworm main\n"
		      "deb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main\n");
	assert_int_equal(image_host_mirror(root, out, sizeof(out)), 0);
	assert_string_equal(out, "http://list.example/debian");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cache_dir_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_build_abort_and_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_host_mirror, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
