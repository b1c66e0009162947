/* tests/unit/test_proxy_policy.c - GitHub allow-list decisions, OAuth token
 * endpoint recognition and response rewriting, the host-only state file,
 * and the per-launch CA's leaves (name, issuer, backdated validity). */
#include <errno.h>
#include <setjmp.h>
#include <time.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/x509v3.h>

#include "proxy/ca.h"
#include "proxy/github.h"
#include "proxy/oauth.h"
#include "proxy/secrets.h"

static int gh(const struct repolist *l, const char *host, const char *method, const char *target,
	      const char *body, char *msg)
{
	return github_check(l, host, strlen(host), method, strlen(method), target, strlen(target),
			    body, body ? strlen(body) : 0, msg, 600);
}

static void test_github(void **state)
{
	(void)state;
	struct repolist l;
	char msg[600];
	repolist_init(&l);
	assert_int_equal(repolist_add(&l, "Alice/Allowed.git"), 0);
	assert_int_equal(repolist_add(&l, "no-slash"), -EINVAL);
	assert_int_equal(repolist_add(&l, "a/b/c"), -EINVAL);
	/* git smart HTTP */
	assert_int_equal(gh(&l, "github.com", "POST", "/alice/allowed.git/git-receive-pack", NULL, msg), 0);
	assert_int_equal(gh(&l, "github.com", "POST", "/bob/x.git/git-receive-pack", NULL, msg), 403);
	assert_non_null(strstr(msg, "bob/x"));
	assert_non_null(strstr(msg, "--repo bob/x"));
	assert_int_equal(gh(&l, "github.com", "GET", "/bob/x/info/refs?service=git-receive-pack", NULL, msg), 403);
	assert_int_equal(gh(&l, "github.com", "GET", "/bob/x/info/refs?service=git-upload-pack", NULL, msg), 0);
	assert_int_equal(gh(&l, "github.com", "POST", "/bob/x/git-upload-pack", NULL, msg), 0);
	/* REST */
	assert_int_equal(gh(&l, "api.github.com", "DELETE", "/repos/ALICE/allowed", NULL, msg), 0);
	assert_int_equal(gh(&l, "api.github.com", "PUT", "/repos/bob/x/contents/a", NULL, msg), 403);
	assert_int_equal(gh(&l, "api.github.com", "GET", "/repos/bob/x", NULL, msg), 0);
	assert_int_equal(gh(&l, "uploads.github.com", "POST", "/repos/bob/x/releases/1/assets", NULL, msg), 403);
	/* GraphQL */
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql", NULL, msg), 1);
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql", "{\"query\":\"{ viewer { login } }\"}", msg), 0);
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql",
			    "{\"query\":\"mutation { a }\",\"variables\":{\"owner\":\"alice\",\"name\":\"allowed\"}}", msg), 0);
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql",
			    "{\"query\":\"mutation { a }\",\"variables\":{\"x\":[\"alice/allowed\",\"bob/x\"]}}", msg), 403);
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql", "{\"query\":\"mutation { a }\"}", msg), 403);
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql", "not json", msg), 403);
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql",
			    "{\"query\":\"query { f(s: \\\"mutation\\\") }\"}", msg), 0);
	/* other hosts are not GitHub */
	assert_int_equal(gh(&l, "gitlab.com", "POST", "/bob/x.git/git-receive-pack", NULL, msg), 0);
	repolist_fini(&l);
}

static void test_oauth(void **state)
{
	(void)state;
	assert_string_equal(oauth_endpoint("console.anthropic.com", 21, "/v1/oauth/token", 15), "claude");
	assert_string_equal(oauth_endpoint("platform.claude.com", 19, "/v1/oauth/token", 15), "claude");
	assert_string_equal(oauth_endpoint("auth.openai.com", 15, "/oauth/token", 12), "codex");
	assert_null(oauth_endpoint("auth.openai.com", 15, "/v1/oauth/token", 15));
	const char *j = "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"ph-refresh-1\",\"client_id\":\"c\"}";
	assert_true(oauth_is_refresh(j, strlen(j), false, "ph-refresh-1"));
	assert_false(oauth_is_refresh(j, strlen(j), false, "ph-refresh-2"));
	const char *f = "grant_type=refresh_token&refresh_token=ph-refresh-1";
	assert_true(oauth_is_refresh(f, strlen(f), true, "ph-refresh-1"));
	const char *ac = "{\"grant_type\":\"authorization_code\",\"refresh_token\":\"ph-refresh-1\"}";
	assert_false(oauth_is_refresh(ac, strlen(ac), false, "ph-refresh-1"));

	struct secrets s;
	secrets_init(&s);
	assert_int_equal(secrets_add(&s, "a", "ph-access-1", "old-a", "api.test"), 0);
	assert_int_equal(secrets_add(&s, "r", "ph-refresh-1", "old-r", "token.test"), 0);
	const char *resp = "{\"access_token\":\"new-a\",\"refresh_token\":\"new-r\",\"expires_in\":3600}";
	char *out;
	size_t outlen;
	assert_int_equal(oauth_rewrite_response(&s.v[0], &s.v[1], resp, strlen(resp), &out, &outlen), 0);
	assert_null(strstr(out, "new-"));
	assert_non_null(strstr(out, "\"ph-access-1\""));
	assert_non_null(strstr(out, "\"ph-refresh-1\""));
	assert_non_null(strstr(out, "3600"));
	assert_string_equal(s.v[0].value, "new-a");
	assert_string_equal(s.v[1].value, "new-r");
	free(out);
	assert_int_equal(oauth_rewrite_response(&s.v[0], &s.v[1], "{\"error\":1}", 11, &out, &outlen), -EINVAL);

	char path[] = "/tmp/kvmbox-oauth-test.XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(oauth_save_state(path, "claude", &s.v[0], &s.v[1]), 0);
	struct stat stt;
	assert_int_equal(stat(path, &stt), 0);
	assert_int_equal(stt.st_mode & 0777, 0600);
	secret_set_value(&s.v[0], "x", 1);
	secret_set_value(&s.v[1], "y", 1);
	assert_int_equal(oauth_load_state(path, "claude", &s.v[0], &s.v[1]), 0);
	assert_string_equal(s.v[0].value, "new-a");
	assert_string_equal(s.v[1].value, "new-r");
	assert_int_equal(oauth_load_state(path, "codex", &s.v[0], &s.v[1]), -EINVAL);
	unlink(path);
	secrets_fini(&s);
}

static void test_ca(void **state)
{
	(void)state;
	struct ca *ca = ca_new();
	assert_non_null(ca);
	X509 *leaf = ca_leaf(ca, "api.example.test");
	assert_non_null(leaf);
	assert_ptr_equal(ca_leaf(ca, "API.example.test"), leaf);	/* cached */
	assert_int_equal(X509_check_host(leaf, "api.example.test", 0, 0, NULL), 1);
	assert_int_equal(X509_check_host(leaf, "other.example.test", 0, 0, NULL), 0);
	assert_int_equal(X509_check_issued(ca_cert(ca), leaf), X509_V_OK);
	/* backdated about a day, short-lived */
	assert_true(X509_cmp_time(X509_get0_notBefore(leaf), NULL) < 0);
	time_t half_day_ago = time(NULL) - 43200;
	assert_true(X509_cmp_time(X509_get0_notBefore(leaf), &half_day_ago) < 0);
	time_t in_8_days = time(NULL) + 8 * 86400;
	assert_true(X509_cmp_time(X509_get0_notAfter(leaf), &in_8_days) < 0);
	X509 *ip = ca_leaf(ca, "127.0.0.1");
	assert_non_null(ip);
	assert_int_equal(X509_check_ip_asc(ip, "127.0.0.1", 0), 1);
	assert_null(ca_leaf(ca, "bad name"));
	assert_int_equal(X509_check_ca(ca_cert(ca)), 1);
	ca_free(ca);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_github),
		cmocka_unit_test(test_oauth),
		cmocka_unit_test(test_ca),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
