/* tests/unit/test_vmm_share.c - the file-sharing flags of `kvmbox run` /
 * `kvmbox shell` (vmm/cli/machine_fs.c): HOSTDIR[:GUESTPATH][:ro] syntax,
 * defaults (same path as on the host, canonical; read-write; cache auto),
 * every refusal with its one-line reason, and the kvmbox.fs value, decoded
 * back by the guest init's own parser (guest/init/mounts.c), so encoder and
 * decoder are proven to agree. */
#include <errno.h>
#include <limits.h>
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

#include "guest/init/mounts.h"
#include "vmm/cli/machine_fs.h"
#include "vmm/cli/run.h"

/* A scratch tree: DIR/a, DIR/b (a symlink to a), DIR/file. */
static char dir[PATH_MAX], real_a[PATH_MAX];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/kvmbox-share-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	char p[PATH_MAX + 16];
	snprintf(p, sizeof(p), "%s/a", dir);
	if (mkdir(p, 0755) < 0 || !realpath(p, real_a))
		return -1;
	snprintf(p, sizeof(p), "%s/b", dir);
	if (symlink("a", p) < 0)
		return -1;
	snprintf(p, sizeof(p), "%s/file", dir);
	FILE *f = fopen(p, "w");
	if (!f)
		return -1;
	fclose(f);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static const char *path(const char *fmt, const char *x)
{
	static char buf[4][PATH_MAX + 64];
	static int k;
	k = (k + 1) % 4;
	char rel[64];
	snprintf(rel, sizeof(rel), fmt, x);
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, rel);
	return buf[k];
}

static void test_spec_forms(void **state)
{
	(void)state;
	struct share_spec sp;
	char err[200];
	/* HOSTDIR alone: guest path = canonical host path (symlink resolved). */
	assert_int_equal(share_parse_spec(path("b", ""), false, &sp, err, sizeof(err)), 0);
	assert_string_equal(sp.host, real_a);
	assert_string_equal(sp.guest, real_a);
	assert_false(sp.read_only || sp.nine_p);
	/* :ro only. */
	assert_int_equal(share_parse_spec(path("a:ro", ""), true, &sp, err, sizeof(err)), 0);
	assert_string_equal(sp.guest, real_a);
	assert_true(sp.read_only && sp.nine_p);
	/* GUESTPATH, GUESTPATH:ro, GUESTPATH:rw, with slashes to clean up. */
	assert_int_equal(share_parse_spec(path("a:/work//proj/", ""), false, &sp, err,
					  sizeof(err)), 0);
	assert_string_equal(sp.guest, "/work/proj");
	assert_false(sp.read_only);
	assert_int_equal(share_parse_spec(path("a:/x y:ro", ""), false, &sp, err, sizeof(err)), 0);
	assert_string_equal(sp.guest, "/x y");
	assert_true(sp.read_only);
	assert_int_equal(share_parse_spec(path("a:/x:rw", ""), false, &sp, err, sizeof(err)), 0);
	assert_false(sp.read_only);
	/* A ':' inside GUESTPATH is kept; only a final :ro/:rw is the mode. */
	assert_int_equal(share_parse_spec(path("a:/x:y", ""), false, &sp, err, sizeof(err)), 0);
	assert_string_equal(sp.guest, "/x:y");
	assert_false(sp.hide);
	/* :hide, alone, with a mode on either side, with GUESTPATH */
	assert_int_equal(share_parse_spec(path("a:hide", ""), false, &sp, err, sizeof(err)), 0);
	assert_string_equal(sp.guest, real_a);
	assert_true(sp.hide && !sp.read_only);
	assert_int_equal(share_parse_spec(path("a:ro:hide", ""), false, &sp, err, sizeof(err)), 0);
	assert_true(sp.hide && sp.read_only);
	assert_string_equal(sp.guest, real_a);
	assert_int_equal(share_parse_spec(path("a:/g:hide:ro", ""), false, &sp, err, sizeof(err)), 0);
	assert_true(sp.hide && sp.read_only);
	assert_string_equal(sp.guest, "/g");
	assert_int_equal(share_parse_spec(path("a:/hidden", ""), false, &sp, err, sizeof(err)), 0);
	assert_false(sp.hide);	/* a GUESTPATH that merely ends in "hide" */
	assert_string_equal(sp.guest, "/hidden");
}

/* Each refusal: -EINVAL and a one-line reason containing want. */
static void refused(const char *arg, const char *want)
{
	struct share_spec sp;
	char err[200] = "";
	assert_int_equal(share_parse_spec(arg, false, &sp, err, sizeof(err)), -EINVAL);
	if (!strstr(err, want))
		fail_msg("'%s': reason '%s' lacks '%s'", arg, err, want);
	assert_null(strchr(err, '\n'));
}

static void test_spec_refusals(void **state)
{
	(void)state;
	refused(path("none", ""), "No such file or directory");
	refused(path("file", ""), "not a directory");
	refused("", "HOSTDIR");
	refused(":/x", "HOSTDIR");
	refused(path("a:", ""), "must be absolute");
	refused(path("a:rel", ""), "must be absolute");
	refused(path("a:/", ""), "not /");
	refused(path("a:/x/../etc", ""), "components");
	refused(path("a:/x/./y", ""), "components");
	refused("/:ro", "not /");	/* / shared at its own path */
	char longp[SHARE_GUEST_PATH_MAX + 64];
	memset(longp, 'x', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = 0;
	longp[0] = '/';
	char arg[PATH_MAX * 2];
	snprintf(arg, sizeof(arg), "%s:%s", path("a", ""), longp);
	refused(arg, "longer than");
}

static int parse(int argc, char **argv, struct run_opts *o, char *err)
{
	return run_parse_args(argc, argv, o, err, 200);
}

static void test_run_flags(void **state)
{
	(void)state;
	struct run_opts o;
	char err[200];
	char *a0[] = { "run", "--kernel", "k", "--", "true" };
	assert_int_equal(parse(5, a0, &o, err), 0);
	assert_int_equal(o.fs.n, 0);
	assert_int_equal(o.fs.cache, FS_CACHE_AUTO);
	assert_string_equal(o.fs.rootfs, "");
	assert_null(o.fs.image);

	char s1[PATH_MAX + 64], s2[PATH_MAX + 64], s3[PATH_MAX + 64];
	snprintf(s1, sizeof(s1), "--share=%s", path("a", ""));
	snprintf(s2, sizeof(s2), "%s:/data:ro", path("a", ""));
	snprintf(s3, sizeof(s3), "%s", path("b", ""));
	char *a1[] = { "run", "--kernel", "k", s1, "--share-9p", s2, "--fs-cache", "none",
		       "--rootfs", s3, "--", "ls" };
	assert_int_equal(parse(12, a1, &o, err), 0);
	assert_int_equal(o.fs.n, 2);
	assert_string_equal(o.fs.share[0].guest, real_a);
	assert_false(o.fs.share[0].nine_p);
	assert_string_equal(o.fs.share[1].guest, "/data");
	assert_true(o.fs.share[1].nine_p && o.fs.share[1].read_only);
	assert_int_equal(o.fs.cache, FS_CACHE_NONE);
	assert_string_equal(o.fs.rootfs, real_a);
	assert_int_equal(o.argc, 1);

	char *a2[] = { "run", "--kernel", "k", "--image", "default", "--fs-cache=always" };
	assert_int_equal(parse(6, a2, &o, err), 0);
	assert_string_equal(o.fs.image, "default");
	assert_int_equal(o.fs.cache, FS_CACHE_ALWAYS);
}

static void run_refused(int argc, char **argv, const char *want)
{
	struct run_opts o;
	char err[200] = "";
	assert_int_equal(parse(argc, argv, &o, err), -EINVAL);
	if (!strstr(err, want))
		fail_msg("reason '%s' lacks '%s'", err, want);
}

static void test_run_refusals(void **state)
{
	(void)state;
	char a[PATH_MAX + 64], x[PATH_MAX + 64], f[PATH_MAX + 64];
	snprintf(a, sizeof(a), "%s", path("a", ""));
	snprintf(x, sizeof(x), "%s:/x", path("a", ""));
	snprintf(f, sizeof(f), "%s", path("file", ""));
	char *r1[] = { "run", "--kernel", "k", "--share" };
	run_refused(4, r1, "needs a value");
	char *r2[] = { "run", "--kernel", "k", "--fs-cache", "sometimes" };
	run_refused(5, r2, "none, auto or always");
	char *r3[] = { "run", "--kernel", "k", "--share", x, "--share-9p", x };
	run_refused(7, r3, "same guest path /x");
	char *r4[] = { "run", "--kernel", "k", "--rootfs", f };
	run_refused(5, r4, "not a directory");
	char *r5[] = { "run", "--kernel", "k", "--rootfs", a, "--image", "i" };
	run_refused(7, r5, "give one");
	char *r6[] = { "run", "--kernel", "k", "--image=i", "--rootfs", a };
	run_refused(6, r6, "give one");
	char *r7[] = { "run", "--kernel", "k", "--image=" };
	run_refused(4, r7, "needs a value");
	/* SHARE_MAX + 1 shares. */
	char specs[SHARE_MAX + 1][PATH_MAX + 64];
	char *argv[3 + 2 * (SHARE_MAX + 1)];
	int n = 0;
	argv[n++] = "run", argv[n++] = "--kernel", argv[n++] = "k";
	for (int i = 0; i <= SHARE_MAX; i++) {
		snprintf(specs[i], sizeof(specs[i]), "%s:/s%d", path("a", ""), i);
		argv[n++] = "--share";
		argv[n++] = specs[i];
	}
	run_refused(n, argv, "too many shares");
}

/* The host's kvmbox.fs value, decoded by the guest's parser. */
static void test_cmdline_round_trip(void **state)
{
	(void)state;
	struct share_opts so = { .cache = FS_CACHE_ALWAYS };
	const char *guests[] = { "/w/proj/sub", "/w/proj", "/odd ,:=\"path\"", "/data" };
	for (unsigned i = 0; i < 4; i++) {
		snprintf(so.share[i].guest, sizeof(so.share[i].guest), "%s", guests[i]);
		so.share[i].nine_p = i == 3;
		so.share[i].read_only = i == 2;
	}
	so.n = 4;
	char value[1024], cmdline[1200];
	int n = share_cmdline_value(&so, value, sizeof(value));
	assert_true(n > 0);
	assert_null(strpbrk(value, " \t\n\""));	/* one kernel command-line word */
	snprintf(cmdline, sizeof(cmdline), "quiet %s=%s %s=%s", KBX_FS_PARAM, value,
		 KBX_ROOT_PARAM, SHARE_ROOT_TAG);
	static struct kbx_mounts mt;
	char err[200];
	assert_int_equal(kbx_mounts_parse(cmdline, &mt, err, sizeof(err)), 0);
	assert_int_equal(mt.n, 4);
	assert_string_equal(mt.root_tag, SHARE_ROOT_TAG);
	/* Parents before children: ordered by mount-point length. */
	assert_string_equal(mt.m[0].path, "/data");
	assert_string_equal(mt.m[0].tag, "kvmbox3");
	assert_true(mt.m[0].nine_p && mt.m[0].cache && !mt.m[0].read_only);
	assert_string_equal(mt.m[1].path, "/w/proj");
	assert_string_equal(mt.m[1].tag, "kvmbox1");
	assert_string_equal(mt.m[2].path, "/w/proj/sub");
	assert_string_equal(mt.m[2].tag, "kvmbox0");
	assert_false(mt.m[2].nine_p || mt.m[2].read_only || mt.m[2].cache);
	assert_string_equal(mt.m[3].path, "/odd ,:=\"path\"");
	assert_true(mt.m[3].read_only);
	char data[128];
	kbx_mount_data(&mt.m[0], data, sizeof(data));
	assert_string_equal(data, "trans=virtio,version=9p2000.L,msize=512000,cache=loose");
	kbx_mount_data(&mt.m[1], data, sizeof(data));
	assert_string_equal(data, "");

	/* Too small a buffer: -E2BIG, never a truncated entry. */
	assert_int_equal(share_cmdline_value(&so, value, 20), -E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_forms),
		cmocka_unit_test(test_spec_refusals),
		cmocka_unit_test(test_run_flags),
		cmocka_unit_test(test_run_refusals),
		cmocka_unit_test(test_cmdline_round_trip),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
