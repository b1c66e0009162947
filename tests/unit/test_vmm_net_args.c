/* tests/unit/test_vmm_net_args.c - the network flags shared by net-serve,
 * run and shell (vmm/cli/net_args.c): every flag in both spellings, values
 * validated as the policy will apply them, one-line refusals, --no-net
 * (VMs only) refusing other network flags, --auto-publish for VMs too,
 * the policy/config built from the flags, and the --proxy flags (VMs
 * only; --secret/--repo/--upstream-ca need --proxy). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/cli/net_args.h"
#include "vmm/cli/run.h"

static int parse_run(struct run_opts *o, char *err, int argc, char **argv)
{
	return run_parse_args(argc, argv, o, err, 200);
}

static void test_all_flags_apply(void **state)
{
	(void)state;
	char *argv[] = { "run", "--kernel", "k", "--allow-egress", "10.1.0.0/16",
			 "--allow-egress=192.168.7.7", "--allow-lan", "--allow-host",
			 "--egress-profile", "locked", "--allow-domain=example.com",
			 "--egress-agent", "claude", "--publish", "8080:80", "--publish=127.0.0.1:5353:53/udp", "--mtu", "9000",
			 "--", "true" };
	struct run_opts o;
	char err[200];
	assert_int_equal(parse_run(&o, err, 20, argv), 0);
	assert_false(o.net.disabled);
	assert_int_equal(o.net.negress, 2);
	assert_int_equal(o.net.ndomains, 1);
	assert_int_equal(o.net.npublish, 2);
	assert_string_equal(o.net.publish[1], "127.0.0.1:5353:53/udp");
	assert_int_equal(o.argc, 1);
	struct policy *pol = malloc(sizeof(*pol));
	assert_non_null(pol);
	policy_init(pol);
	struct net_config cfg;
	net_config_default(&cfg);
	assert_int_equal(net_opts_apply(&o.net, pol, &cfg), 0);
	assert_ptr_equal(cfg.policy, pol);
	assert_int_equal(cfg.mtu, 9000);
	assert_true(pol->allow_lan && pol->allow_host);
	assert_int_equal(pol->profile, PP_LOCKED);
	assert_int_equal(pol->agent, POLICY_AGENT_CLAUDE);
	assert_int_equal(pol->nallow, 2);
	assert_int_equal(pol->ndomains, 1);
	free(pol);
}

static void test_defaults(void **state)
{
	(void)state;
	char *argv[] = { "run", "--kernel", "k" };
	struct run_opts o;
	char err[200];
	assert_int_equal(parse_run(&o, err, 3, argv), 0);
	assert_false(o.net.disabled);
	assert_false(o.net.set);
	struct policy *pol = malloc(sizeof(*pol));
	assert_non_null(pol);
	policy_init(pol);
	struct net_config cfg;
	net_config_default(&cfg);
	assert_int_equal(net_opts_apply(&o.net, pol, &cfg), 0);
	assert_int_equal(cfg.mtu, 1500);
	assert_int_equal(pol->profile, PP_PERMISSIVE);	/* public only */
	assert_false(pol->allow_lan || pol->allow_host);
	free(pol);
}

static void test_refusals(void **state)
{
	(void)state;
	static const struct { const char *flag, *value, *why; } bad[] = {
		{ "--allow-egress", "10.0.0.0/99", "bad --allow-egress" },
		{ "--allow-egress", "not-an-ip", "bad --allow-egress" },
		{ "--egress-profile", "open", "unknown --egress-profile" },
		{ "--egress-agent", "gemini", "unknown --egress-agent" },
		{ "--allow-domain", "a b", "bad --allow-domain" },
		{ "--allow-domain", "x/y", "bad --allow-domain" },
		{ "--publish", "1:2:3:4", "bad --publish" },
		{ "--publish", "0:80", "bad --publish" },
		{ "--publish", "80:70000", "bad --publish" },
		{ "--publish", "80:80/sctp", "bad --publish" },
		{ "--mtu", "575", "--mtu must be" },
		{ "--mtu", "65521", "--mtu must be" },
		{ "--mtu", "-1", "--mtu must be" },
		{ "--mtu", "", "--mtu needs a value" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *argv[] = { "run", "--kernel", "k", (char *)bad[i].flag, (char *)bad[i].value };
		struct run_opts o;
		char err[200] = "";
		assert_int_equal(parse_run(&o, err, 5, argv), -EINVAL);
		if (!strstr(err, bad[i].why))
			fail_msg("%s %s: got '%s'", bad[i].flag, bad[i].value, err);
		assert_null(strchr(err, '\n'));
	}
	char *missing[] = { "run", "--kernel", "k", "--publish" };
	struct run_opts o;
	char err[200];
	assert_int_equal(parse_run(&o, err, 4, missing), -EINVAL);
	assert_non_null(strstr(err, "--publish needs a value"));
}

static void test_no_net(void **state)
{
	(void)state;
	struct run_opts o;
	char err[200];
	char *ok[] = { "run", "--kernel", "k", "--no-net" };
	assert_int_equal(parse_run(&o, err, 4, ok), 0);
	assert_true(o.net.disabled);
	char *both[] = { "run", "--kernel", "k", "--no-net", "--allow-host" };
	assert_int_equal(parse_run(&o, err, 5, both), -EINVAL);
	assert_non_null(strstr(err, "--no-net cannot be combined"));
	/* VMs report their listeners on kvmbox.ctl (shell; run refuses it). */
	char *autop[] = { "run", "--kernel", "k", "--auto-publish" };
	assert_int_equal(parse_run(&o, err, 4, autop), 0);
	assert_true(o.net.auto_publish);
}

static void test_serve_side(void **state)
{
	(void)state;
	/* net-serve: --auto-publish is fine, --no-net is not a network flag. */
	struct net_opts no;
	memset(&no, 0, sizeof(no));
	char err[200];
	char *argv[] = { "net-serve", "--auto-publish", "--no-net", "--publish", "5:6" };
	int i = 1;
	assert_int_equal(net_opts_take(&no, NET_ARGS_SERVE, 5, argv, &i, err, sizeof(err)), 1);
	assert_true(no.auto_publish);
	i = 2;
	assert_int_equal(net_opts_take(&no, NET_ARGS_SERVE, 5, argv, &i, err, sizeof(err)), 0);
	i = 3;
	assert_int_equal(net_opts_take(&no, NET_ARGS_SERVE, 5, argv, &i, err, sizeof(err)), 1);
	assert_int_equal(i, 4);
	assert_int_equal(no.npublish, 1);
}

static void test_too_many(void **state)
{
	(void)state;
	struct net_opts no;
	memset(&no, 0, sizeof(no));
	char err[200];
	char *argv[] = { "x", "--publish", "1:1" };
	for (int n = 0; n < NET_ARGS_MAX_PUBLISH; n++) {
		int i = 1;
		assert_int_equal(net_opts_take(&no, NET_ARGS_VM, 3, argv, &i, err, sizeof(err)), 1);
	}
	int i = 1;
	assert_int_equal(net_opts_take(&no, NET_ARGS_VM, 3, argv, &i, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "too many --publish"));
}

static void test_proxy_flags(void **state)
{
	(void)state;
	struct run_opts o;
	char err[200];
	char *ok[] = { "run", "--kernel", "k", "--proxy", "--secret", "PH_1234567=env:X@api.test",
		       "--repo=o/n", "--upstream-ca", "ca.pem" };
	assert_int_equal(parse_run(&o, err, 9, ok), 0);
	assert_true(o.net.proxy);
	assert_int_equal(o.net.nsecrets, 1);
	assert_int_equal(o.net.nrepos, 1);
	assert_string_equal(o.net.upstream_ca, "ca.pem");
	char *noproxy[] = { "run", "--kernel", "k", "--repo", "o/n" };
	assert_int_equal(parse_run(&o, err, 5, noproxy), -EINVAL);
	assert_non_null(strstr(err, "need --proxy"));
	char *badrepo[] = { "run", "--kernel", "k", "--proxy", "--repo", "nobody" };
	assert_int_equal(parse_run(&o, err, 6, badrepo), -EINVAL);
	assert_non_null(strstr(err, "OWNER/NAME"));
	char *nonet[] = { "run", "--kernel", "k", "--no-net", "--proxy" };
	assert_int_equal(parse_run(&o, err, 5, nonet), -EINVAL);
	/* net-serve has no --proxy */
	struct net_opts no;
	memset(&no, 0, sizeof(no));
	int i = 1;
	assert_int_equal(net_opts_take(&no, NET_ARGS_SERVE, 2, (char *[]){ "x", "--proxy" }, &i, err,
				       sizeof(err)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_flags_apply),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_no_net),
		cmocka_unit_test(test_serve_side),
		cmocka_unit_test(test_too_many),
		cmocka_unit_test(test_proxy_flags),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
