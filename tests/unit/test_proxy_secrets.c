/* tests/unit/test_proxy_secrets.c - placeholders become real values only on
 * the way to their own hosts, in headers, Basic credentials, JSON and forms;
 * host lists match exactly and by suffix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include <stdbool.h>
#include <sys/resource.h>

#include <openssl/evp.h>

#include "net/policy.h"
#include "proxy/secrets.h"

#define PH "kvmbox-ph-0123456789"

static void sub(struct secrets *s, const char *host, enum subst_enc enc, const char *in,
		const char *want, unsigned repl, unsigned refused)
{
	char out[512];
	struct subst_stats st = { 0, 0, false };
	ssize_t n = secrets_subst(s, host, strlen(host), enc, in, strlen(in), out, sizeof(out), &st);
	assert_true(n >= 0);
	out[n] = 0;
	assert_string_equal(out, want);
	assert_int_equal(st.replaced, repl);
	assert_int_equal(st.refused, refused);
}

static void test_substitution(void **state)
{
	(void)state;
	struct secrets s;
	secrets_init(&s);
	assert_int_equal(secrets_add(&s, "env:T", PH, "re\"al/&v", "api.example.com,*.corp.test"), 0);
	sub(&s, "api.example.com", SUBST_RAW, "Bearer " PH, "Bearer re\"al/&v", 1, 0);
	sub(&s, "API.Example.COM.", SUBST_RAW, PH PH, "re\"al/&vre\"al/&v", 2, 0);
	sub(&s, "x.corp.test", SUBST_RAW, PH, "re\"al/&v", 1, 0);
	sub(&s, "corp.test", SUBST_RAW, PH, PH, 0, 1);
	sub(&s, "evil.example", SUBST_RAW, "Bearer " PH, "Bearer " PH, 0, 1);
	sub(&s, "api.example.com", SUBST_JSON, "{\"t\":\"" PH "\"}", "{\"t\":\"re\\\"al/&v\"}", 1, 0);
	sub(&s, "api.example.com", SUBST_FORM, "a=" PH "&b=1", "a=re%22al%2F%26v&b=1", 1, 0);
	sub(&s, "api.example.com", SUBST_RAW, "kvmbox-ph-01234", "kvmbox-ph-01234", 0, 0);
	/* too small an output buffer is an error, not a truncation */
	char tiny[4];
	struct subst_stats st = { 0, 0, false };
	assert_int_equal(secrets_subst(&s, "api.example.com", 15, SUBST_RAW, PH, strlen(PH), tiny, sizeof(tiny), &st), -ENOSPC);
	secrets_fini(&s);
}

static void test_basic_auth(void **state)
{
	(void)state;
	struct secrets s;
	secrets_init(&s);
	assert_int_equal(secrets_add(&s, "env:GH", PH, "ghp_real", "github.com"), 0);
	unsigned char b64[128];
	const char *cred = "x-access-token:" PH;
	EVP_EncodeBlock(b64, (const unsigned char *)cred, (int)strlen(cred));
	char in[200], out[200];
	snprintf(in, sizeof(in), "Basic %s", b64);
	struct subst_stats st = { 0, 0, false };
	ssize_t n = secrets_subst_header(&s, "github.com", 10, "Authorization", 13, in, strlen(in), out, sizeof(out), &st);
	assert_true(n > 6);
	out[n] = 0;
	unsigned char dec[200];
	int dl = EVP_DecodeBlock(dec, (unsigned char *)out + 6, (int)n - 6);
	assert_true(dl >= 23);
	assert_memory_equal(dec, "x-access-token:ghp_real", 23);
	assert_int_equal(st.replaced, 1);
	/* other host: unchanged */
	st = (struct subst_stats){ 0, 0, false };
	n = secrets_subst_header(&s, "gitlab.com", 10, "Authorization", 13, in, strlen(in), out, sizeof(out), &st);
	assert_int_equal((size_t)n, strlen(in));
	assert_memory_equal(out, in, (size_t)n);
	assert_int_equal(st.refused, 1);
	secrets_fini(&s);
}

static void test_specs(void **state)
{
	(void)state;
	struct secrets s;
	secrets_init(&s);
	char err[256];
	setenv("KVMBOX_TEST_TOKEN", "tok", 1);
	assert_int_equal(secrets_add_spec(&s, PH "=env:KVMBOX_TEST_TOKEN@a.test,b.test", err, sizeof(err)), 0);
	assert_int_equal(s.v[0].nhosts, 2);
	assert_string_equal(s.v[0].value, "tok");
	assert_int_equal(secrets_add_spec(&s, PH "=env:KVMBOX_TEST_TOKEN@a.test", err, sizeof(err)), -EEXIST);
	assert_true(secrets_add_spec(&s, "short=env:KVMBOX_TEST_TOKEN@a.test", err, sizeof(err)) < 0);
	assert_true(secrets_add_spec(&s, PH "x=env:KVMBOX_NOPE_UNSET@a.test", err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "KVMBOX_NOPE_UNSET"));
	assert_true(secrets_add_spec(&s, PH "y=file:/nonexistent/x@a.test", err, sizeof(err)) < 0);
	assert_true(secrets_add_spec(&s, PH "z=env:KVMBOX_TEST_TOKEN@", err, sizeof(err)) < 0);
	assert_true(secrets_add_spec(&s, PH "z=env:KVMBOX_TEST_TOKEN@a b", err, sizeof(err)) < 0);
	assert_null(strstr(err, "tok\""));
	secrets_fini(&s);
}

/* The VmFlags line of the mapping holding p (/proc/self/smaps), or "". */
static void vmflags_of(const void *p, char *out, size_t cap)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	bool in = false;
	out[0] = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long a, b;
		if (sscanf(line, "%lx-%lx ", &a, &b) == 2 && strchr(line, ' ') == line + strcspn(line, " "))
			in = (unsigned long)p >= a && (unsigned long)p < b;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, cap, "%s", line);
			break;
		}
	}
	if (f)
		fclose(f);
}

/* A real value lives in pages of its own: left out of core dumps (dd),
 * zero in a forked child (wf), locked where the memlock limit allows
 * (lo); a rotation moves it to new pages, and the old ones keep the
 * previous value (still masked) under the same flags. */
static void test_values_in_locked_pages(void **state)
{
	(void)state;
	struct secrets s;
	secrets_init(&s);
	assert_int_equal(secrets_add(&s, "t", "kvmbox-ph-locked01", "real-value-1", "a.test"), 0);
	struct secret *e = secrets_find(&s, "kvmbox-ph-locked01", 18);
	assert_non_null(e);
	char fl[512];
	vmflags_of(e->value, fl, sizeof(fl));
	assert_non_null(strstr(fl, " dd"));
	assert_non_null(strstr(fl, " wf"));
#if !defined(__SANITIZE_ADDRESS__)	/* AddressSanitizer's mlock does nothing */
	struct rlimit rl;
	if (getrlimit(RLIMIT_MEMLOCK, &rl) == 0 && rl.rlim_cur >= (1u << 20))
		assert_non_null(strstr(fl, " lo"));
#endif
	assert_int_equal(secret_set_value(e, "real-value-2", 12), 0);
	assert_string_equal(e->value, "real-value-2");
	assert_string_equal(e->prev_value, "real-value-1");
	vmflags_of(e->prev_value, fl, sizeof(fl));
	assert_non_null(strstr(fl, " dd"));
	secrets_fini(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_substitution),
		cmocka_unit_test(test_basic_auth),
		cmocka_unit_test(test_specs),
		cmocka_unit_test(test_values_in_locked_pages),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
