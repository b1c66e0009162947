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
#include <openssl/pem.h>
#include <sys/stat.h>

#include <openssl/x509v3.h>

#include "proxy/ca.h"
#include "proxy/github.h"
#include "proxy/graphql.h"
#include "proxy/oauth.h"
#include "proxy/secrets.h"

static int gh(const struct repolist *l, const char *host, const char *method, const char *target,
	      const char *body, char *msg)
{
	/* as the relay passes them: pointers into one request line, not
	 * NUL-terminated where they end */
	char line[4096];
	int n = snprintf(line, sizeof(line), "%s %s HTTP/1.1", method, target);
	assert_true(n > 0 && (size_t)n < sizeof(line));
	return github_check(l, host, strlen(host), line, strlen(method), line + strlen(method) + 1,
			    strlen(target), body, body ? strlen(body) : 0, msg, 600);
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
	/* without a resolver, node ids alone cannot be checked */
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql",
			    "{\"query\":\"mutation { a(input:{subjectId:\\\"PR_1\\\"}) }\"}", msg), 403);
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql", "not json", msg), 403);
	assert_int_equal(gh(&l, "api.github.com", "POST", "/graphql",
			    "{\"query\":\"query { f(s: \\\"mutation\\\") }\"}", msg), 0);
	/* other hosts are not GitHub */
	assert_int_equal(gh(&l, "gitlab.com", "POST", "/bob/x.git/git-receive-pack", NULL, msg), 0);
	repolist_fini(&l);
}

/* github_check_ids on one GraphQL body: the status, ids in *ids. */
static int gq(const struct repolist *l, const char *body, struct github_ids *ids, char *msg)
{
	return github_check_ids(l, "api.github.com", 14, "POST", 4, "/graphql", 8, body, strlen(body),
				ids, msg, 600);
}

static bool has_id(const struct github_ids *ids, const char *id)
{
	for (unsigned i = 0; i < ids->n; i++)
		if (!strcmp(ids->id[i], id))
			return true;
	return false;
}

static void test_github_ids(void **state)
{
	(void)state;
	struct repolist l;
	struct github_ids ids;
	char msg[600];
	repolist_init(&l);
	assert_int_equal(repolist_add(&l, "alice/allowed"), 0);
	/* gh pr create: the repository id in the input object */
	assert_int_equal(gq(&l, "{\"query\":\"mutation PullRequestCreate($input:CreatePullRequestInput!)"
			     "{createPullRequest(input:$input){pullRequest{id url}}}\",\"variables\":{\"input\":"
			     "{\"repositoryId\":\"R_kgDOAAA\",\"baseRefName\":\"main\",\"title\":\"fix: a/b\","
			     "\"clientMutationId\":\"cm-1\"}}}", &ids, msg), GITHUB_RESOLVE);
	assert_int_equal(ids.n, 1);
	assert_string_equal(ids.id[0], "R_kgDOAAA");
	assert_int_equal(ids.named, 0);	/* "fix: a/b" is not an OWNER/NAME */
	/* lists, "id", duplicates, nesting, inline literals and variables */
	assert_int_equal(gq(&l, "{\"query\":\"mutation($s:ID!,$more:[ID!]!){addComment(input:{subjectId:$s,"
			     "body:\\\"x\\\"}){a} b: requestReviews(input:{pullRequestId:\\\"PR_x\\\","
			     "userIds:[\\\"U_1\\\",$t], labelIds: $more, teamIds: null}){c {id}} "
			     "d: f(id: \\\"I_9\\\") { nodeId: id }}\",\"variables\":{\"s\":\"PR_x\","
			     "\"t\":\"U_2\",\"more\":[\"LA_1\",\"LA_2\"],\"x\":{\"ids\":[\"I_9\"]}}}",
			     &ids, msg), GITHUB_RESOLVE);
	assert_int_equal(ids.n, 6);
	assert_true(has_id(&ids, "PR_x") && has_id(&ids, "U_1") && has_id(&ids, "U_2") && has_id(&ids, "LA_1") &&
		    has_id(&ids, "LA_2") && has_id(&ids, "I_9"));
	assert_int_equal(ids.named, 0);
	/* legacy base64 ids, with a slash, are ids (not OWNER/NAME) */
	assert_int_equal(gq(&l, "{\"query\":\"mutation($i:X!){ m(input:$i) }\",\"variables\":{\"i\":"
			     "{\"id\":\"MDEw/Ulk+=\"}}}", &ids, msg), GITHUB_RESOLVE);
	assert_string_equal(ids.id[0], "MDEw/Ulk+=");
	/* an OWNER/NAME of another repository beside ids: refused at once */
	assert_int_equal(gq(&l, "{\"query\":\"mutation { m }\",\"variables\":{\"repositoryId\":\"R_1\","
			     "\"repo\":\"bob/x\"}}", &ids, msg), 403);
	assert_non_null(strstr(msg, "bob/x"));
	/* a variable used as an id but not given (a default would hide it) */
	assert_int_equal(gq(&l, "{\"query\":\"mutation($r:ID=\\\"R_2\\\"){ m(input:{issueId:$r}) }\"}",
			     &ids, msg), 403);
	assert_non_null(strstr(msg, "$r"));
	/* not node ids */
	assert_int_equal(gq(&l, "{\"query\":\"mutation { m(input:{issueId:12}) }\"}", &ids, msg), 403);
	assert_int_equal(gq(&l, "{\"query\":\"mutation { m }\",\"variables\":{\"issueId\":\"a b\"}}",
			     &ids, msg), 403);
	assert_int_equal(gq(&l, "{\"query\":\"mutation { m }\",\"variables\":{\"issueId\":{\"x\":1}}}",
			     &ids, msg), 403);	/* an object under an id key names nothing */
	assert_int_equal(gq(&l, "{\"query\":\"mutation { m(input:{issueId:\\\"a\\\\\\\"b\\\"}) }\"}",
			     &ids, msg), 403);
	assert_int_equal(gq(&l, "{\"query\":\"mutation { m(input:{issueId:\\\"unterminated) }\"}",
			     &ids, msg), 403);
	/* comments, block strings and names are not ids */
	assert_int_equal(gq(&l, "{\"query\":\"mutation { # issueId: \\\"X_1\\\"\\n m(input:{body:"
			     "\\\"\\\"\\\"issueId: \\\\\\\"Y\\\"\\\"\\\", subjectId: \\\"Z_1\\\"}) "
			     "{ repositoryId: id } }\"}", &ids, msg), GITHUB_RESOLVE);
	assert_int_equal(ids.n, 1);
	assert_string_equal(ids.id[0], "Z_1");
	/* too many ids */
	char big[4096];
	size_t o = (size_t)snprintf(big, sizeof(big), "{\"query\":\"mutation{m}\",\"variables\":{\"ids\":[");
	for (int i = 0; i < 40; i++)
		o += (size_t)snprintf(big + o, sizeof(big) - o, "%s\"N_%d\"", i ? "," : "", i);
	snprintf(big + o, sizeof(big) - o, "]}}");
	assert_int_equal(gq(&l, big, &ids, msg), 403);
	assert_non_null(strstr(msg, "32"));
	/* queries are not looked at */
	assert_int_equal(gq(&l, "{\"query\":\"query { node(id:\\\"R_1\\\") { id } }\"}", &ids, msg), 0);
	repolist_fini(&l);
}

/* The allow-list as an attacker tries it: other spellings of a path,
 * writes outside /repos, other GitHub hosts, GraphQL that hides its
 * mutation or its repository. */
static void test_github_attacks(void **state)
{
	(void)state;
	struct repolist l;
	char msg[600];
	repolist_init(&l);
	assert_int_equal(repolist_add(&l, "alice/allowed"), 0);
	static const struct {
		const char *host, *method, *target;
		int want;
	} rest[] = {
		{ "api.github.com", "POST", "/repos/alice/allowed/issues", 0 },
		{ "api.github.com", "POST", "/Repos/alice/allowed/issues", 0 },
		{ "api.github.com", "POST", "/repos/%61lice/allowed/issues", 0 },	/* unreserved, decoded */
		{ "api.github.com", "POST", "/repos/alice/allowed/../../bob/x/issues", 403 },
		{ "api.github.com", "POST", "/repos/alice/allowed/./issues", 403 },
		{ "api.github.com", "POST", "/repos/alice%2Fallowed/issues", 403 },
		{ "api.github.com", "POST", "/repos/alice%2fallowed/issues", 403 },
		{ "api.github.com", "POST", "//repos/bob/x/issues", 403 },
		{ "api.github.com", "POST", "/repos//bob/x/issues", 403 },
		{ "api.github.com", "POST", "/REPOS/bob/x/issues", 403 },
		{ "api.github.com", "POST", "/repos/b%6fb/x/pulls", 403 },
		{ "api.github.com", "POST", "/repos/bob/x%00/pulls", 403 },
		{ "api.github.com", "POST", "/repos/alice/allowed;/issues", 403 },
		{ "api.github.com", "POST", "/repos/alice/allowed\\..\\..\\bob/x", 403 },
		{ "api.github.com", "POST", "/repos/alice/allowedx/issues", 403 },
		{ "api.github.com", "POST", "/repos/alice/allowed.x/issues", 403 },
		{ "api.github.com", "POST", "/repositories/123/issues", 1 },	/* resolved first */
		{ "uploads.github.com", "POST", "/repositories/123/releases/1/assets", 403 },
		{ "api.github.com", "POST", "/repositories/0/issues", 403 },
		{ "api.github.com", "POST", "/repositories/12x/issues", 403 },
		{ "api.github.com", "POST", "/repositories/99999999999999999999/issues", 403 },
		{ "api.github.com", "POST", "/user/keys", 403 },
		{ "api.github.com", "POST", "/user/gpg_keys", 403 },
		{ "api.github.com", "POST", "/user/repos", 403 },
		{ "api.github.com", "POST", "/orgs/acme/repos", 403 },
		{ "api.github.com", "POST", "/gists", 403 },
		{ "api.github.com", "PATCH", "/user", 403 },
		{ "api.github.com", "PUT", "/user/following/bob", 403 },
		{ "api.github.com", "DELETE", "/user/keys/1", 403 },
		{ "api.github.com", "POST", "/markdown", 0 },
		{ "api.github.com", "GET", "/user/keys", 0 },
		{ "api.github.com", "GET", "/graphql", 0 },
		{ "api.github.com", "GET", "/graphql?query=mutation%7Ba%7D", 403 },
		{ "api.github.com", "PUT", "/graphql", 403 },
		{ "api.github.com.", "POST", "/user/keys", 403 },	/* trailing dot */
		{ "API.GitHub.com", "POST", "/user/keys", 403 },
		{ "uploads.github.com", "POST", "/repos/alice/allowed/releases/1/assets?name=a", 0 },
		{ "uploads.github.com", "POST", "/repos/bob/x/releases/1/assets?name=a", 403 },
		{ "gist.github.com", "POST", "/abc123.git/git-receive-pack", 403 },
		{ "raw.githubusercontent.com", "PUT", "/bob/x/main/a", 403 },
		{ "codeload.github.com", "GET", "/bob/x/tar.gz/main", 0 },
		{ "github.com", "POST", "/alice/allowed.git/git-receive-pack", 0 },
		{ "github.com", "POST", "/Alice/Allowed/git-receive-pack", 0 },
		{ "github.com", "POST", "/bob/x.git/git-receive-pack", 403 },
		{ "github.com", "POST", "//bob/x/git-receive-pack", 403 },
		{ "github.com", "POST", "/alice/allowed/../../bob/x/git-receive-pack", 403 },
		{ "github.com", "POST", "/alice/allowed/%2e%2e/%2e%2e/bob/x/git-receive-pack", 403 },
		{ "github.com", "POST", "/alice%2Fallowed/../bob/x/git-receive-pack", 403 },
		{ "github.com", "POST", "/bob/x/Git-Receive-Pack", 403 },
		{ "github.com", "POST", "/bob/x/git-receive-pack/", 403 },
		{ "github.com", "POST", "/bob/x/info/lfs/objects/batch", 403 },
		{ "github.com", "POST", "/alice/allowed.git/info/lfs/objects/batch", 0 },
		{ "github.com", "POST", "/bob/x/git-upload-pack", 0 },
		{ "github.com", "POST", "/session", 403 },
		{ "github.com", "PUT", "/bob/x", 403 },
		{ "www.github.com", "POST", "/bob/x/git-receive-pack", 403 },
		{ "github.com", "GET", "/bob/x/info/refs?service=git%2Dreceive-pack", 403 },
		{ "github.com", "GET", "/bob/x/info/refs?service=git-upload-pack&service=git-receive-pack", 403 },
		{ "github.com", "GET", "/bob/x/info/refs?%73ervice=git-receive-pack", 403 },
		{ "github.com", "GET", "/bob/x/info/refs?service=git-upload-pack", 0 },
		{ "github.com", "GET", "/alice/allowed/info/refs?service=git-receive-pack", 0 },
	};
	for (size_t i = 0; i < sizeof(rest) / sizeof(rest[0]); i++) {
		int got = gh(&l, rest[i].host, rest[i].method, rest[i].target, NULL, msg);
		if (got != rest[i].want)
			fail_msg("%s %s %s: %d, want %d (%s)", rest[i].host, rest[i].method, rest[i].target, got,
				 rest[i].want, msg);
		if (got == 403)
			assert_non_null(strstr(msg, "--repo"));	/* names the flag */
	}
	/* /repositories/ID: resolved through GET /repositories/ID, then decided
	 * like any repository */
	struct github_ids rid;
	assert_int_equal(github_check_ids(&l, "api.github.com", 14, "PATCH", 5, "/repositories/42/issues/1", 25,
					  "{}", 2, &rid, msg, sizeof(msg)), GITHUB_RESOLVE);
	assert_int_equal(rid.repo_id, 42);
	assert_int_equal(rid.n, 1);
	assert_string_equal(rid.id[0], "rest:42");
	struct github_node rn;
	const char *ans = "{\"id\":42,\"full_name\":\"Alice/Allowed\",\"private\":false}";
	assert_int_equal(github_parse_repo(ans, strlen(ans), &rn), 0);
	assert_int_equal(github_decide(&l, &rid, &rn, msg, sizeof(msg)), 0);
	ans = "{\"full_name\":\"bob/x\"}";
	assert_int_equal(github_parse_repo(ans, strlen(ans), &rn), 0);
	assert_int_equal(github_decide(&l, &rid, &rn, msg, sizeof(msg)), 403);
	assert_non_null(strstr(msg, "bob/x"));
	static const char *const bad_ans[] = { "{}", "{\"full_name\":\"bob\"}", "{\"full_name\":\"a/b/c\"}",
					       "{\"full_name\":7}", "[]", "{\"full_name\":\"bob/x\"} x" };
	for (size_t i = 0; i < sizeof(bad_ans) / sizeof(bad_ans[0]); i++)
		assert_int_equal(github_parse_repo(bad_ans[i], strlen(bad_ans[i]), &rn), -EINVAL);

	struct github_ids ids;
	static const struct {
		const char *body;
		int want;
	} gql[] = {
		/* a quote inside a comment does not hide the mutation after it */
		{ "{\"query\":\"# \\\"\\nmutation { createIssue(input:{repositoryId:\\\"R_x\\\"}) {x} }\"}", GITHUB_RESOLVE },
		/* a block string holding a quote neither */
		{ "{\"query\":\"mutation { m(input:{body:\\\"\\\"\\\" \\\" \\\"\\\"\\\", subjectId:\\\"Y_1\\\"}) {x} }\"}", GITHUB_RESOLVE },
		/* a query and a mutation in one document */
		{ "{\"query\":\"query A { viewer { login } } mutation B { m }\",\"operationName\":\"A\"}", 403 },
		{ "{\"query\":\"{ viewer { login } } mutation { m }\"}", 403 },
		/* the mutation's work in a fragment */
		{ "{\"query\":\"mutation { ...F } fragment F on Mutation { addComment(input:{subjectId:\\\"X_1\\\"}) {a} }\"}", GITHUB_RESOLVE },
		/* a repository named inline beside a listed id */
		{ "{\"query\":\"mutation { a: addComment(input:{subjectId:\\\"X_1\\\"}) {a} b: createCommitOnBranch(input:{branch:{repositoryNameWithOwner:\\\"bob/x\\\",branchName:\\\"main\\\"}}) {c} }\"}", 403 },
		/* ... escaped, as a block string, or as owner + name */
		{ "{\"query\":\"mutation { m(input:{subjectId:\\\"X_1\\\", r:\\\"bob\\\\u002Fx\\\"}) {a} }\"}", 403 },
		{ "{\"query\":\"mutation { m(input:{subjectId:\\\"X_1\\\", r:\\\"\\\"\\\"\\n    bob/x\\n  \\\"\\\"\\\"}) {a} }\"}", 403 },
		{ "{\"query\":\"mutation { m(input:{subjectId:\\\"X_1\\\", owner:\\\"bob\\\", name:\\\"x\\\"}) {a} }\"}", 403 },
		{ "{\"query\":\"mutation { m(input:{owner:\\\"alice\\\", name:\\\"allowed\\\"}) {a} }\"}", 0 },
		/* a default value is what GitHub uses when the variable is absent */
		{ "{\"query\":\"mutation($r:String=\\\"bob/x\\\") { m(input:{subjectId:\\\"X_1\\\", r:$r}) {a} }\"}", 403 },
		/* an escaped id is decoded before it is judged */
		{ "{\"query\":\"mutation { m(input:{subjectId:\\\"X\\\\u005f1\\\"}) {a} }\"}", GITHUB_RESOLVE },
		/* a byte-order mark inside the document is ignored like white space */
		{ "{\"query\":\"\\ufeffmutation { m(input:{subjectId:\\\"X_1\\\"}) {a} }\"}", GITHUB_RESOLVE },
		/* the body is JSON as GitHub parses it, the document GraphQL as the spec lexes it */
		{ "\xef\xbb\xbf{\"query\":\"mutation { m }\"}", 403 },
		{ "{\"query\":\"mutation { m }\" /* c */}", 403 },
		{ "{\"query\":\"mutation { m }\"} x", 403 },
		{ "{\"query\":\"mutation { m(a: 0x1) }\"}", 403 },
		{ "{\"query\":\"mutation { m(a: \\\"unterminated) }\"}", 403 },
		{ "{\"query\":\"mutation { m(a: 1) } %\"}", 403 },
		{ "{\"query\":\"mutation { m }\",\"variables\":[1]}", 403 },
		{ "{\"query\":\"query { viewer { login } }\",\"variables\":{\"r\":\"bob/x\"}}", 0 },
		/* a branch or a title shaped OWNER/NAME is text, not a repository... */
		{ "{\"query\":\"mutation($i:CreatePullRequestInput!){createPullRequest(input:$i){pullRequest{url}}}\","
		  "\"variables\":{\"i\":{\"repositoryId\":\"R_1\",\"headRefName\":\"feature/login\","
		  "\"baseRefName\":\"release/1\",\"title\":\"docs/typo\"}}}", GITHUB_RESOLVE },
		{ "{\"query\":\"mutation { createCommitOnBranch(input:{branch:{repositoryNameWithOwner:\\\"alice/allowed\\\","
		  "branchName:\\\"feature/x\\\"},message:{headline:\\\"fix/typo\\\"}}) { commit { oid } } }\"}", 0 },
		/* ...but under any other name it is checked */
		{ "{\"query\":\"mutation($i:X!){m(input:$i)}\",\"variables\":{\"i\":{\"subjectId\":\"X_1\","
		  "\"target\":\"bob/x\"}}}", 403 },
		{ "{\"query\":\"mutation { m(input:{subjectId:\\\"X_1\\\", title:{x:\\\"bob/x\\\"}}) {a} }\"}", 403 },
	};
	for (size_t i = 0; i < sizeof(gql) / sizeof(gql[0]); i++) {
		int got = gq(&l, gql[i].body, &ids, msg);
		if (got != gql[i].want)
			fail_msg("%s: %d, want %d (%s)", gql[i].body, got, gql[i].want, msg);
	}
	assert_int_equal(gq(&l, gql[11].body, &ids, msg), GITHUB_RESOLVE);
	assert_string_equal(ids.id[0], "X_1");
	repolist_fini(&l);
}

/* The lexer on the specification's own examples. */
static void test_graphql_lexer(void **state)
{
	(void)state;
	static struct gql_token t;
	struct gql_lexer lx;
	const char *src = "\xef\xbb\xbf{ a(b: \"x\\u00e9\\uD83D\\uDE00\\u{1F600}\", c: -1.5e3, d: [$e]) # c\n"
			  "  f: \"\"\"\n    hello\n      world\n    \\\"\"\"\n  \"\"\" ... }";
	static const char *const want[] = { "{", "a", "(", "b", ":", "x\xc3\xa9\xf0\x9f\x98\x80\xf0\x9f\x98\x80",
					    "c", ":", "-1.5e3", "d", ":", "[", "$", "e", "]", ")", "f", ":",
					    "hello\n  world\n\"\"\"", ".", "}" };
	gql_init(&lx, src, strlen(src));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(gql_next(&lx, &t), 0);
		assert_string_equal(t.text, want[i]);
	}
	assert_int_equal(gql_next(&lx, &t), 0);
	assert_int_equal(t.kind, GQL_END);
	static const char *const bad[] = { "\"a\nb\"", "\"\\x\"", "\"\\uD800\"", "\"\\u{110000}\"", "01",
					   "1.", "1e", "1a", "..", "\"\"\"x", "?" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		gql_init(&lx, bad[i], strlen(bad[i]));
		assert_int_equal(gql_next(&lx, &t), -EINVAL);
	}
	struct gql_outline o;
	{
		const char *d = "query A { a } mutation B { b } fragment F on X { c }";
		assert_int_equal(gql_outline(d, strlen(d), "B", &o), 0);
	}
	assert_int_equal(o.operations, 2);
	assert_int_equal(o.mutations, 1);
	assert_int_equal(o.fragments, 1);
	assert_true(o.selected_is_mutation);
	assert_int_equal(gql_outline("type X { a: Int }", 17, NULL, &o), -EINVAL);
	assert_int_equal(gql_outline("{ a ", 4, NULL, &o), -EINVAL);
	assert_int_equal(gql_outline("{ a ) }", 7, NULL, &o), -EINVAL);
}

static void test_github_resolve(void **state)
{
	(void)state;
	struct repolist l;
	struct github_ids ids = { 0 };
	struct github_node nd[4];
	char msg[600], q[8192];
	repolist_init(&l);
	repolist_add(&l, "alice/allowed");
	ids.n = 2;
	strcpy(ids.id[0], "R_1");
	strcpy(ids.id[1], "PR_2");
	int n = github_nodes_query(&ids, q, sizeof(q));
	assert_true(n > 0 && (size_t)n == strlen(q));
	assert_non_null(strstr(q, "nodes(ids:$ids)"));
	assert_non_null(strstr(q, "\"ids\":[\"R_1\",\"PR_2\"]"));
	assert_int_equal(github_nodes_query(&ids, q, 100), -ENOSPC);
	/* answers: repository, repository-owned, discussion comment, user, org, null */
	static const char ans[] =
		"{\"data\":{\"nodes\":[{\"__typename\":\"Repository\",\"nameWithOwner\":\"Alice/Allowed\"},"
		"{\"__typename\":\"PullRequest\",\"repository\":{\"nameWithOwner\":\"bob/x\"}},"
		"{\"__typename\":\"DiscussionComment\",\"discussion\":{\"repository\":{\"nameWithOwner\":\"alice/allowed\"}}},"
		"{\"__typename\":\"User\"}]}}";
	assert_int_equal(github_parse_nodes(ans, strlen(ans), 4, nd), 0);
	assert_int_equal(nd[0].kind, GITHUB_NODE_REPO);
	assert_string_equal(nd[0].name, "Alice/Allowed");
	assert_int_equal(nd[1].kind, GITHUB_NODE_REPO);
	assert_string_equal(nd[1].name, "bob/x");
	assert_int_equal(nd[2].kind, GITHUB_NODE_REPO);
	assert_int_equal(nd[3].kind, GITHUB_NODE_ACTOR);
	assert_int_equal(github_parse_nodes(ans, strlen(ans), 3, nd), -EINVAL);	/* count must match */
	static const char ans2[] =
		"{\"data\":{\"nodes\":[null,{\"__typename\":\"Organization\"},{\"__typename\":\"Gist\","
		"\"nameWithOwner\":\"no slash\"},{\"repository\":null}]},\"errors\":[{\"type\":\"NOT_FOUND\"}]}";
	assert_int_equal(github_parse_nodes(ans2, strlen(ans2), 4, nd), 0);
	assert_int_equal(nd[0].kind, GITHUB_NODE_UNKNOWN);
	assert_int_equal(nd[1].kind, GITHUB_NODE_OTHER);
	assert_string_equal(nd[1].name, "Organization");
	assert_int_equal(nd[2].kind, GITHUB_NODE_OTHER);
	assert_int_equal(nd[3].kind, GITHUB_NODE_UNKNOWN);
	assert_int_equal(github_parse_nodes("{\"data\":null,\"errors\":[]}", 27, 1, nd), -EINVAL);
	assert_int_equal(github_parse_nodes("{\"data\":{\"nodes\":[", 19, 1, nd), -EINVAL);
	assert_int_equal(github_parse_nodes("[]", 2, 0, nd), -EINVAL);
	/* decisions */
	struct github_node repo_ok = { GITHUB_NODE_REPO, "alice/allowed" }, repo_bad = { GITHUB_NODE_REPO, "bob/x" },
			   user = { GITHUB_NODE_ACTOR, "User" }, org = { GITHUB_NODE_OTHER, "Organization" },
			   unk = { GITHUB_NODE_UNKNOWN, "" };
	struct github_node d[2] = { repo_ok, user };
	assert_int_equal(github_decide(&l, &ids, d, msg, sizeof(msg)), 0);
	d[1] = repo_bad;
	assert_int_equal(github_decide(&l, &ids, d, msg, sizeof(msg)), 403);
	assert_non_null(strstr(msg, "bob/x"));
	assert_non_null(strstr(msg, "--repo bob/x"));
	d[1] = org;
	assert_int_equal(github_decide(&l, &ids, d, msg, sizeof(msg)), 403);
	assert_non_null(strstr(msg, "PR_2 (type Organization) is not part"));
	d[1] = unk;
	assert_int_equal(github_decide(&l, &ids, d, msg, sizeof(msg)), 403);
	assert_non_null(strstr(msg, "PR_2 could not be resolved"));
	d[0] = user;
	d[1] = user;
	assert_int_equal(github_decide(&l, &ids, d, msg, sizeof(msg)), 403);	/* targets no repository */
	ids.named = 1;	/* ...unless a listed OWNER/NAME is named too */
	assert_int_equal(github_decide(&l, &ids, d, msg, sizeof(msg)), 0);
	/* the cache: bounded, oldest replaced, unresolved not kept */
	struct github_cache *c = malloc(sizeof(*c));
	assert_non_null(c);
	github_cache_init(c);
	struct github_node got;
	github_cache_put(c, "U_0", &unk);
	assert_false(github_cache_get(c, "U_0", &got));
	char id[32];
	for (int i = 0; i < GITHUB_CACHE_MAX + 10; i++) {
		snprintf(id, sizeof(id), "R_%d", i);
		github_cache_put(c, id, &repo_ok);
	}
	assert_int_equal(c->n, GITHUB_CACHE_MAX);
	assert_false(github_cache_get(c, "R_9", &got));
	assert_true(github_cache_get(c, "R_10", &got));
	snprintf(id, sizeof(id), "R_%d", GITHUB_CACHE_MAX + 9);
	assert_true(github_cache_get(c, id, &got));
	assert_string_equal(got.name, "alice/allowed");
	free(c);
	repolist_fini(&l);
}

static void test_oauth(void **state)
{
	(void)state;
	assert_string_equal(oauth_endpoint("console.anthropic.com", 21, "/v1/oauth/token", 15), "claude");
	assert_string_equal(oauth_endpoint("platform.claude.com", 19, "/v1/oauth/token", 15), "claude");
	assert_string_equal(oauth_endpoint("auth.openai.com", 15, "/oauth/token", 12), "codex");
	assert_null(oauth_endpoint("auth.openai.com", 15, "/v1/oauth/token", 15));
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
	/* the lifetime the host file records: a positive integer, else none */
	assert_int_equal(oauth_expires_in(resp, strlen(resp)), 3600);
	const char *no_life[] = { "{\"expires_in\":\"3600\"}", "{\"expires_in\":0}", "{\"expires_in\":-5}",
				  "{\"expires_in\":1.5}", "{\"expires_in\":99999999999}", "{}", "[3600]" };
	for (size_t i = 0; i < sizeof(no_life) / sizeof(no_life[0]); i++)
		assert_int_equal(oauth_expires_in(no_life[i], strlen(no_life[i])), -1);
	/* a token member kvmbox does not know, at any depth: refused, not passed */
	static const char *const odd[] = {
		"{\"access_token\":\"a\",\"session_token\":\"x\"}",
		"{\"access_token\":\"a\",\"account\":{\"refresh_token\":\"x\"}}",
		"{\"access_token\":\"a\",\"list\":[{\"Api_Token\":\"x\"}]}",
		"\xef\xbb\xbf{\"access_token\":\"a\"}",		/* byte-order mark */
		"{\"access_token\":\"a\"} trailing",
		"{\"access_token\":\"a\",/* c */\"x\":1}",
		"{\"access_token\":7}",
	};
	for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++)
		assert_int_equal(oauth_rewrite_response(&s.v[0], &s.v[1], odd[i], strlen(odd[i]), &out, &outlen),
				 -EINVAL);
	assert_int_equal(oauth_rewrite_response(NULL, &s.v[1], resp, strlen(resp), &out, &outlen), -EINVAL);
	/* an id_token goes to the guest unsigned: claims kept, signature not */
	const char *withid = "{\"access_token\":\"new-a\",\"id_token\":"
			     "\"eyJhbGciOiJSUzI1NiJ9.eyJlbWFpbCI6ImFAYiJ9.UkVBTFNJRw\"}";
	assert_int_equal(oauth_rewrite_response(&s.v[0], &s.v[1], withid, strlen(withid), &out, &outlen), 0);
	assert_non_null(strstr(out, "\"eyJhbGciOiJSUzI1NiJ9.eyJlbWFpbCI6ImFAYiJ9.a3ZtYm94"));
	assert_null(strstr(out, "UkVBTFNJRw"));
	free(out);
	static const char *const badid[] = {
		"{\"access_token\":\"a\",\"id_token\":\"opaque\"}",
		"{\"access_token\":\"a\",\"id_token\":\"e30.e30\"}",
		"{\"access_token\":\"a\",\"id_token\":\"e30.e30.s.t\"}",
		"{\"access_token\":\"a\",\"id_token\":\"e30.bm90IGpzb24.s\"}",	/* claims not JSON */
		"{\"access_token\":\"a\",\"id_token\":\"e30.e3=.s\"}",
		"{\"access_token\":\"a\",\"id_token\":7}",
	};
	for (size_t i = 0; i < sizeof(badid) / sizeof(badid[0]); i++)
		assert_int_equal(oauth_rewrite_response(&s.v[0], &s.v[1], badid[i], strlen(badid[i]), &out, &outlen),
				 -EINVAL);
	/* an error body keeps the error code, redacts real values, drops the rest */
	char eb[1024];
	const char *err = "{\"error\":\"invalid_grant\",\"error_description\":\"token new-r revoked\","
			  "\"refresh_token\":\"new-r\"}";
	size_t el = oauth_error_body(&s, 400, err, strlen(err), eb, sizeof(eb));
	assert_int_equal(el, strlen(eb));
	assert_null(strstr(eb, "new-r"));
	assert_non_null(strstr(eb, "\"invalid_grant\""));
	assert_non_null(strstr(eb, "token [redacted] revoked"));	/* ph-refresh-1 looks like a token too */
	el = oauth_error_body(&s, 500, "<html>new-r</html>", 18, eb, sizeof(eb));
	assert_null(strstr(eb, "new-r"));
	assert_non_null(strstr(eb, "upstream_error"));

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

/* Refresh bodies parsed as the server parses them; everything ambiguous is
 * refused rather than guessed. */
static void test_oauth_body(void **state)
{
	(void)state;
	struct secrets s;
	secrets_init(&s);
	assert_int_equal(secrets_add(&s, "a", "ph-access-1", "real-a", "api.test"), 0);
	assert_int_equal(secrets_add(&s, "r", "ph-refresh-1", "real\"r&=", "auth.openai.com"), 0);
	const char *json = "application/json", *form = "application/x-www-form-urlencoded";
	struct oauth_body b;
	static const struct {
		const char *ct, *body;
		bool refresh;
	} ok[] = {
		{ "application/json", " {\"grant_type\":\"refresh_token\",\"refresh_token\":\"ph-refresh-1\",\"client_id\":\"c\"}\n", true },
		{ "Application/JSON; charset=UTF-8", "{\"grant_type\" : \"refresh\\u005ftoken\", \"refresh_token\":\"ph-refresh-1\"}", true },
		{ "application/x-www-form-urlencoded", "grant_type=refresh%5Ftoken&refresh_token=ph%2Drefresh-1", true },
		{ "application/x-www-form-urlencoded; charset=\"utf-8\"", "client_id=a+b&grant_type=refresh_token&refresh_token=ph-refresh-1", true },
		{ "application/json", "{\"grant_type\":\"authorization_code\",\"code\":\"x\"}", false },
		{ "application/json", "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"ph-refresh-2\"}", false },
		/* another field carrying a placeholder is not the refresh kvmbox does */
		{ "application/json", "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"ph-refresh-1\",\"x\":\"ph-access-1\"}", false },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		assert_int_equal(oauth_body_parse(ok[i].ct, strlen(ok[i].ct), ok[i].body, strlen(ok[i].body), &b), 0);
		assert_int_equal(oauth_body_is_refresh(&b, &s, "ph-refresh-1"), ok[i].refresh);
		oauth_body_free(&b);
	}
	static const struct {
		const char *ct, *body;
	} bad[] = {
		{ "application/json", "\xef\xbb\xbf{\"grant_type\":\"refresh_token\"}" },	/* BOM */
		{ "application/json", "{\"grant_type\":\"x\",\"grant_type\":\"refresh_token\"}" },	/* repeated */
		{ "application/json", "{\"grant_type\":\"refresh_token\",\"a\":{\"b\":\"c\"}}" },	/* nested */
		{ "application/json", "{\"grant_type\":\"refresh_token\",\"n\":1}" },
		{ "application/json", "{\"grant_type\":\"refresh_token\"}x" },
		{ "application/json", "{\"grant_type\":\"refresh_token\",}" },
		{ "application/json", "{/*c*/\"grant_type\":\"refresh_token\"}" },
		{ "application/json", "{'grant_type':'refresh_token'}" },
		{ "application/json", "{\"a\":\"\\ud800\"}" },			/* lone surrogate */
		{ "application/json", "{\"a\":\"\\u0000\"}" },
		{ "application/json", "{\"a\":\"\xc3\xa9\"}" },			/* raw non-ASCII */
		{ "application/json", "[\"grant_type\"]" },
		{ "application/json; charset=latin1", "{}" },
		{ "application/json;x=y", "{}" },
		{ "text/plain", "{}" },
		{ "", "grant_type=refresh_token" },
		{ "application/x-www-form-urlencoded", "grant_type=refresh_token&grant_type=x" },
		{ "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token" },
		{ "application/x-www-form-urlencoded", "grant_type=refresh_token&" },
		{ "application/x-www-form-urlencoded", "grant_type=refresh%5" },
		{ "application/x-www-form-urlencoded", "grant_type=refresh%zz" },
		{ "application/x-www-form-urlencoded", "a=%00" },
		{ "application/x-www-form-urlencoded", "=x" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(oauth_body_parse(bad[i].ct, strlen(bad[i].ct), bad[i].body, strlen(bad[i].body), &b),
				 -EINVAL);

	/* the body the server gets: canonical, the real value encoded for it */
	char *out;
	size_t n;
	const char *jb = "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"ph-refresh-1\",\"scope\":\"a b\"}";
	assert_int_equal(oauth_body_parse(json, strlen(json), jb, strlen(jb), &b), 0);
	assert_int_equal(oauth_body_build(&b, "refresh_token", "real\"r&=", 8, &out, &n), 0);
	assert_memory_equal(out, "{\"grant_type\":\"refresh_token\",\"refresh_token\":\"real\\u0022r&=\",\"scope\":\"a b\"}", n);
	free(out);
	oauth_body_free(&b);
	const char *fb = "grant_type=refresh_token&refresh_token=ph-refresh-1&scope=a+b";
	assert_int_equal(oauth_body_parse(form, strlen(form), fb, strlen(fb), &b), 0);
	assert_int_equal(oauth_body_build(&b, "refresh_token", "real\"r&=", 8, &out, &n), 0);
	assert_memory_equal(out, "grant_type=refresh_token&refresh_token=real%22r%26%3D&scope=a%20b", n);
	free(out);
	oauth_body_free(&b);

	/* placeholders as written or percent-encoded */
	assert_true(oauth_carries_placeholder(&s, "x=ph-access-1", 13));
	assert_true(oauth_carries_placeholder(&s, "x=ph%2daccess%2D1", 17));
	assert_false(oauth_carries_placeholder(&s, "x=ph-access-", 12));

	/* the refresh token is never substituted by the generic path */
	s.v[1].refresh_only = true;
	char sub[256];
	struct subst_stats st = { 0, 0, false };
	ssize_t k = secrets_subst(&s, "auth.openai.com", 15, SUBST_RAW, "Bearer ph-refresh-1", 19, sub,
				  sizeof(sub), &st);
	assert_int_equal(k, 19);
	assert_memory_equal(sub, "Bearer ph-refresh-1", 19);
	assert_int_equal(st.replaced, 0);
	assert_true(oauth_refresh_hosts_ok("codex", &s.v[1]));
	assert_false(oauth_refresh_hosts_ok("claude", &s.v[1]));
	assert_false(oauth_refresh_hosts_ok("codex", &s.v[0]));
	/* what the guest may see is redacted */
	char red[64];
	k = secrets_redact(&s, "x real-a y", 10, red, sizeof(red));
	assert_memory_equal(red, "x ph-access-1 y", (size_t)k);
	char m[] = "a real-a real\"r&= b";
	assert_int_equal(secrets_mask(&s, m, strlen(m)), 2);
	assert_string_equal(m, "a ****** ******** b");
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

/* A suspended sandbox's CA, kept and taken back: the same certificate, a
 * key that still signs leaves it issues; the file the user's alone; a
 * file that is not a CA with its own key refused. */
static void test_ca_kept(void **state)
{
	(void)state;
	char dir[] = "/tmp/kvmbox-ca-XXXXXX", path[64], cmd[512];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/proxy-ca.pem", dir);
	struct ca *ca = ca_new();
	assert_non_null(ca);
	assert_int_equal(ca_save(ca, path), 0);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	struct ca *back = ca_load(path);
	assert_non_null(back);
	assert_int_equal(X509_cmp(ca_cert(ca), ca_cert(back)), 0);
	X509 *leaf = ca_leaf(back, "api.example.test");
	assert_non_null(leaf);
	assert_int_equal(X509_check_issued(ca_cert(ca), leaf), X509_V_OK);
	EVP_PKEY *pub = X509_get0_pubkey(ca_cert(ca));
	assert_int_equal(X509_verify(leaf, pub), 1);	/* signed by the kept key */
	ca_free(back);
	/* another CA's key with this certificate; a leaf as the CA; no key;
	 * nothing at all */
	struct ca *other = ca_new();
	char other_path[80];
	snprintf(other_path, sizeof(other_path), "%s/other.pem", dir);
	assert_int_equal(ca_save(other, other_path), 0);
	snprintf(cmd, sizeof(cmd), "cd %s && sed -n '/BEGIN PRIVATE/,/END PRIVATE/p' other.pem >mix.pem && "
		 "sed -n '/BEGIN CERT/,/END CERT/p' proxy-ca.pem >>mix.pem && "
		 "sed -n '/BEGIN CERT/,/END CERT/p' proxy-ca.pem >nokey.pem && : >empty.pem", dir);
	assert_int_equal(system(cmd), 0);
	static const char *const bad[] = { "mix.pem", "nokey.pem", "empty.pem", "absent.pem" };
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		snprintf(path, sizeof(path), "%s/%s", dir, bad[k]);
		assert_null(ca_load(path));
	}
	FILE *f = fopen(path, "w");	/* a leaf with its own key: not a CA */
	assert_non_null(f);
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	X509_set_pubkey(x, k);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_sign(x, k, EVP_sha256());
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	PEM_write_X509(f, x);
	fclose(f);
	assert_null(ca_load(path));
	X509_free(x);
	EVP_PKEY_free(k);
	ca_free(other);
	ca_free(ca);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ca_kept),
		cmocka_unit_test(test_github),
		cmocka_unit_test(test_github_ids),
		cmocka_unit_test(test_github_resolve),
		cmocka_unit_test(test_github_attacks),
		cmocka_unit_test(test_graphql_lexer),
		cmocka_unit_test(test_oauth),
		cmocka_unit_test(test_oauth_body),
		cmocka_unit_test(test_ca),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
