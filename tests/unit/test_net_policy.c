/* tests/unit/test_net_policy.c - the egress policy table: every group, every
 * address form (IPv4, IPv4-mapped, IPv4-compatible, NAT64, 6to4), the allow
 * flags and profiles, and the DNS name lists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/util.h"
#include "net/policy.h"

static struct policy pol;

static int setup(void **state)
{
	(void)state;
	policy_init(&pol);
	pol.gateway_ip = 0x0A000202;
	pol.guest_net = 0x0A000200;
	pol.guest_mask = 0xFFFFFF00;
	uint8_t a[16];
	policy_parse_addr("203.0.114.7", a);	/* pretend host address */
	policy_add_host_addr(&pol, a);
	policy_parse_addr("2a01:4f8::7", a);
	policy_add_host_addr(&pol, a);
	policy_parse_addr("fd4b:7662:6f78::2", a);	/* the stack's IPv6 gateway */
	policy_add_host_addr(&pol, a);
	return 0;
}

static enum policy_group cls(const char *s)
{
	uint8_t a[16];
	assert_int_equal(policy_parse_addr(s, a), 0);
	return policy_classify(&pol, a);
}

static bool allowed(const char *s)
{
	uint8_t a[16];
	assert_int_equal(policy_parse_addr(s, a), 0);
	return policy_allows(&pol, a, NULL);
}

struct want {
	const char *addr;
	enum policy_group g;
};

static const struct want table[] = {
	{ "1.1.1.1", PG_PUBLIC }, { "93.184.216.34", PG_PUBLIC }, { "2606:4700::1111", PG_PUBLIC },
	{ "0.0.0.0", PG_UNSPECIFIED }, { "0.1.2.3", PG_UNSPECIFIED }, { "::", PG_UNSPECIFIED },
	{ "127.0.0.1", PG_LOOPBACK }, { "127.255.255.254", PG_LOOPBACK }, { "::1", PG_LOOPBACK },
	{ "10.0.0.1", PG_PRIVATE }, { "10.255.255.255", PG_PRIVATE }, { "172.16.0.1", PG_PRIVATE },
	{ "172.31.255.255", PG_PRIVATE }, { "172.32.0.1", PG_PUBLIC }, { "172.15.255.255", PG_PUBLIC },
	{ "192.168.0.1", PG_PRIVATE }, { "100.64.0.1", PG_PRIVATE }, { "100.127.255.255", PG_PRIVATE },
	{ "100.128.0.1", PG_PUBLIC }, { "198.18.0.1", PG_PRIVATE }, { "198.19.255.255", PG_PRIVATE },
	{ "198.20.0.1", PG_PUBLIC }, { "fc00::1", PG_PRIVATE }, { "fdff::1", PG_PRIVATE },
	{ "fec0::1", PG_PRIVATE }, { "64:ff9b:1:101:1:101:101:101", PG_PRIVATE },	/* 1.1.1.1 in every layout */
	{ "169.254.0.1", PG_LINKLOCAL }, { "169.254.255.255", PG_LINKLOCAL }, { "fe80::1", PG_LINKLOCAL },
	{ "febf::1", PG_LINKLOCAL },
	{ "169.254.169.254", PG_METADATA }, { "169.254.170.2", PG_METADATA },
	{ "100.100.100.200", PG_METADATA }, { "168.63.129.16", PG_METADATA },
	{ "192.0.0.192", PG_METADATA }, { "fd00:ec2::254", PG_METADATA },
	{ "10.0.2.2", PG_HOST }, { "203.0.114.7", PG_HOST }, { "2a01:4f8::7", PG_HOST },
	{ "fd4b:7662:6f78::2", PG_HOST }, { "fd4b:7662:6f78::3", PG_PRIVATE },
	{ "224.0.0.1", PG_MULTICAST }, { "239.255.255.250", PG_MULTICAST }, { "ff02::1", PG_MULTICAST },
	{ "255.255.255.255", PG_BROADCAST }, { "10.0.2.255", PG_BROADCAST },
	{ "240.0.0.1", PG_RESERVED }, { "192.0.2.1", PG_RESERVED }, { "198.51.100.1", PG_RESERVED },
	{ "203.0.113.1", PG_RESERVED }, { "2001:db8::1", PG_RESERVED }, { "100::1", PG_RESERVED },
	{ "2001::1", PG_RESERVED },
	/* Embedded IPv4 in every IPv6 form is judged as IPv4. */
	{ "::ffff:127.0.0.1", PG_LOOPBACK }, { "::ffff:10.1.2.3", PG_PRIVATE },
	{ "::ffff:169.254.169.254", PG_METADATA }, { "::ffff:0.0.0.0", PG_UNSPECIFIED },
	{ "::ffff:1.1.1.1", PG_PUBLIC }, { "::ffff:10.0.2.2", PG_HOST },
	{ "64:ff9b::127.0.0.1", PG_LOOPBACK }, { "64:ff9b::10.0.0.1", PG_PRIVATE },
	{ "64:ff9b::169.254.169.254", PG_METADATA }, { "64:ff9b::1.1.1.1", PG_PUBLIC },
	{ "::127.0.0.1", PG_LOOPBACK }, { "::10.0.0.1", PG_PRIVATE }, { "::169.254.169.254", PG_METADATA },
	{ "2002:7f00:1::", PG_LOOPBACK }, { "2002:a9fe:a9fe::1", PG_METADATA },
	{ "2002:0a00:0001::1", PG_PRIVATE }, { "2002:0101:0101::1", PG_PUBLIC },
};

static void test_groups(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		enum policy_group g = cls(table[i].addr);
		if (g != table[i].g)
			fail_msg("%s: group %d (%s), want %d", table[i].addr, g, policy_group_name(g), table[i].g);
		bool a = allowed(table[i].addr);
		if (a != (table[i].g == PG_PUBLIC))
			fail_msg("%s: the default (permissive) profile allows=%d", table[i].addr, a);
	}
}

static void test_allow_lan_opens_only_private(void **state)
{
	(void)state;
	pol.allow_lan = true;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		bool want = table[i].g == PG_PUBLIC || table[i].g == PG_PRIVATE;
		if (allowed(table[i].addr) != want)
			fail_msg("--allow-lan: %s", table[i].addr);
	}
	pol.allow_lan = false;
}

static void test_allow_host_opens_only_host(void **state)
{
	(void)state;
	pol.allow_host = true;
	assert_true(allowed("10.0.2.2"));
	assert_true(allowed("::ffff:10.0.2.2"));
	assert_false(allowed("127.0.0.1"));
	assert_false(allowed("169.254.169.254"));
	assert_false(allowed("10.0.0.1"));
	pol.allow_host = false;
	assert_false(allowed("10.0.2.2"));
}

static void test_allow_egress_cidrs(void **state)
{
	(void)state;
	assert_int_equal(policy_allow_cidr(&pol, "10.1.0.0/16"), 0);
	assert_int_equal(policy_allow_cidr(&pol, "fd12::/16"), 0);
	assert_int_equal(policy_allow_cidr(&pol, "169.254.169.254"), 0);
	assert_true(allowed("10.1.200.3"));
	assert_true(allowed("::ffff:10.1.0.1"));
	assert_false(allowed("10.2.0.1"));
	assert_true(allowed("fd12:3456::1"));
	assert_false(allowed("fd13::1"));
	assert_true(allowed("169.254.169.254"));
	assert_false(allowed("169.254.169.253"));
	assert_int_equal(policy_allow_cidr(&pol, "10.0.0.0/33"), -EINVAL);
	assert_int_equal(policy_allow_cidr(&pol, "10.0.0/8"), -EINVAL);
	assert_int_equal(policy_allow_cidr(&pol, "fd00::/129"), -EINVAL);
	assert_int_equal(policy_allow_cidr(&pol, "10.0.0.0/"), -EINVAL);
	assert_int_equal(policy_allow_cidr(&pol, "10.0.0.0/-1"), -EINVAL);
	assert_int_equal(policy_allow_cidr(&pol, "example.com"), -EINVAL);
	setup(NULL);
}

static void test_profiles(void **state)
{
	(void)state;
	assert_int_equal(pol.profile, PP_PERMISSIVE);	/* the default */
	assert_int_equal(policy_set_profile(&pol, "nope"), -EINVAL);
	assert_int_equal(policy_set_profile(&pol, "Permissive"), -EINVAL);
	assert_int_equal(policy_set_profile(&pol, "permissive"), 0);
	/* permissive is every public address, and only public ones: no
	 * profile opens the LAN or the host (their own flags do) */
	assert_true(allowed("1.1.1.1"));
	assert_false(allowed("10.0.0.1"));
	assert_false(allowed("10.0.2.2"));
	assert_false(allowed("127.0.0.1"));
	assert_false(allowed("169.254.169.254"));
	assert_false(allowed("169.254.1.1"));
	assert_false(allowed("224.0.0.1"));
	static const char *const narrow[] = { "standard", "locked" };
	for (unsigned k = 0; k < 2; k++) {
		policy_init(&pol);
		setup(NULL);
		assert_int_equal(policy_set_profile(&pol, narrow[k]), 0);
		enum policy_group why;
		uint8_t a[16];
		policy_parse_addr("1.1.1.1", a);
		assert_false(policy_allows(&pol, a, &why));
		assert_int_equal(why, PG_UNLISTED);
		assert_string_equal(policy_group_remedy(why), "--allow-domain NAME, or --egress-profile permissive");
		assert_false(allowed("10.0.0.1"));	/* still private, whatever the profile */
		assert_int_equal(policy_allow_cidr(&pol, "1.1.1.0/24"), 0);
		assert_true(allowed("1.1.1.1"));
		policy_parse_addr("93.184.216.34", a);
		assert_false(policy_allows(&pol, a, NULL));
		policy_learn(&pol, a, 30, now_ns());
		assert_true(policy_allows(&pol, a, NULL));
		/* learning never opens what the address rules close */
		policy_parse_addr("10.9.9.9", a);
		policy_learn(&pol, a, 30, now_ns());
		assert_false(policy_allows(&pol, a, NULL));
	}
	policy_init(&pol);
	setup(NULL);
}

/* The policy as an attacker tries it: wide CIDRs that cover the host,
 * every IPv6 form that embeds a denied IPv4 address. */
static void test_attacks(void **state)
{
	(void)state;
	/* /0 in both families: the host, loopback, the gateway (the host's
	 * loopback), multicast and broadcast stay shut; metadata needs its own
	 * address named */
	assert_int_equal(policy_allow_cidr(&pol, "0.0.0.0/0"), 0);
	assert_int_equal(policy_allow_cidr(&pol, "::/0"), 0);
	static const char *const shut[] = {
		"10.0.2.2", "::ffff:10.0.2.2", "203.0.114.7", "2a01:4f8::7", "fd4b:7662:6f78::2",
		"127.0.0.1", "::1", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255", "10.0.2.255",
		"169.254.169.254", "fd00:ec2::254", "168.63.129.16",
		/* embedded forms of the gateway, the host and loopback */
		"64:ff9b::a00:202", "64:ff9b::7f00:1", "::a00:202", "::7f00:1", "::ffff:0:7f00:1", "::ffff:0:a00:202",
		"2002:a00:202::1", "2002:cb00:7207::", "2001:0:a00:202::1", "2001:0:101:101::f5ff:fdfd",
		"2606:4700::5efe:a00:202", "2606:4700::200:5efe:7f00:1",
		"64:ff9b:1:7f00:0:100::", "64:ff9b:1:7f:0:1::", "64:ff9b:1:0:7f:0:100:0", "64:ff9b:1::7f00:1",
		"64:ff9b::a9fe:a9fe",
	};
	for (size_t i = 0; i < ARRAY_SIZE(shut); i++)
		if (allowed(shut[i]))
			fail_msg("allowed %s under 0.0.0.0/0 and ::/0", shut[i]);
	assert_true(allowed("10.9.9.9"));
	assert_true(allowed("240.0.0.1"));	/* reserved: a CIDR opens it */
	assert_true(allowed("2606:4700::1111"));
	/* the local-use NAT64 prefix stays shut for --allow-lan where any layout
	 * could mean a denied address */
	setup(NULL);
	pol.allow_lan = true;
	assert_false(allowed("64:ff9b:1::1"));		/* 0.0.0.1 in the /96 layout */
	assert_false(allowed("64:ff9b:1:a00:2:200::"));	/* 10.0.2.2 in the /48 layout */
	assert_true(allowed("64:ff9b:1:a0a:a:a0a:a0a:a0a"));	/* 10.10.10.10 in every layout */
	/* --allow-host opens the host group only, not what it is embedded in */
	setup(NULL);
	pol.allow_host = true;
	assert_true(allowed("10.0.2.2"));
	assert_false(allowed("64:ff9b::7f00:1"));
	/* the reason given is the embedded address's group */
	uint8_t a[16];
	enum policy_group why;
	policy_parse_addr("2002:a9fe:a9fe::1", a);
	assert_false(policy_allows(&pol, a, &why));
	assert_int_equal(why, PG_METADATA);
	policy_init(&pol);
	setup(NULL);
}

/* An address the host gains while the sandbox runs is the host's at once.
 * Run in a network namespace of its own (needs root), so the test adds
 * addresses to nobody's real interface. */
static void test_live_host_addrs(void **state)
{
	(void)state;
	if (geteuid() != 0)
		skip();
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0)
			_exit(77);
		struct policy p;
		policy_init(&p);
		if (policy_watch_host_addrs(&p) < 0)
			_exit(2);
		uint8_t a[16];
		policy_parse_addr("198.51.99.7", a);	/* public: not the host's yet */
		if (!policy_allows(&p, a, NULL))
			_exit(3);
		if (system("ip link set lo up && ip addr add 198.51.99.7/32 dev lo && "
			   "ip addr add 2a01:4f8:99::7/128 dev lo nodad") != 0)
			_exit(77);
		enum policy_group why;
		if (policy_allows(&p, a, &why) || why != PG_HOST)
			_exit(4);	/* the very next decision sees it */
		policy_parse_addr("2a01:4f8:99::7", a);
		if (policy_allows(&p, a, NULL))
			_exit(5);
		policy_parse_addr("64:ff9b::c633:6307", a);	/* the new address, embedded */
		if (policy_allows(&p, a, NULL))
			_exit(6);
		if (system("ip addr del 198.51.99.7/32 dev lo") != 0)
			_exit(77);
		policy_parse_addr("198.51.99.7", a);
		if (!policy_allows(&p, a, NULL))
			_exit(7);	/* and stops being the host's when it goes */
		policy_fini(&p);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st) == 77)
		skip();	/* no network namespaces or no ip(8) here */
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_names(void **state)
{
	(void)state;
	assert_true(policy_allows_name(&pol, "anything.example"));	/* permissive */
	assert_true(policy_allows_name(&pol, "2001:db8::1"));		/* a CONNECT to an IPv6 literal */
	assert_false(policy_allows_name(&pol, "a b"));
	policy_set_profile(&pol, "locked");
	assert_int_equal(policy_allow_domain(&pol, "GitHub.com."), 0);
	assert_int_equal(policy_allow_domain(&pol, "*.npmjs.org"), 0);
	static const char *const bad[] = { "bad name", "", ".", "*.", "a..b", ".lead", "x/y", "a*b.c",
					   "**.x", "*.*.x", "1.2.3.4:80", "ex\x01mple.com", "*" };
	for (unsigned i = 0; i < ARRAY_SIZE(bad); i++)
		if (policy_allow_domain(&pol, bad[i]) != -EINVAL)
			fail_msg("--allow-domain '%s' accepted", bad[i]);
	assert_true(policy_allows_name(&pol, "github.com"));
	assert_true(policy_allows_name(&pol, "api.github.com"));
	assert_true(policy_allows_name(&pol, "API.GITHUB.COM."));
	assert_false(policy_allows_name(&pol, "evilgithub.com"));
	assert_false(policy_allows_name(&pol, "github.com.evil.net"));
	assert_false(policy_allows_name(&pol, "github.com..evil.net"));
	assert_false(policy_allows_name(&pol, "github.com\n.evil"));
	assert_false(policy_allows_name(&pol, "github.com:443"));
	assert_false(policy_allows_name(&pol, "github.com.."));
	assert_false(policy_allows_name(&pol, ""));
	assert_true(policy_allows_name(&pol, "registry.npmjs.org"));
	assert_false(policy_allows_name(&pol, "npmjs.org"));		/* *. is below only */
	assert_false(policy_allows_name(&pol, "example.com"));
	assert_false(policy_allows_name(&pol, "api.anthropic.com"));	/* no agent */
	policy_init(&pol);
	setup(NULL);
}

/* The profiles' names: the agent's provider, then development
 * infrastructure; built-in entries match exactly. */
static void test_profile_names(void **state)
{
	(void)state;
	policy_set_profile(&pol, "locked");
	policy_set_agent(&pol, POLICY_AGENT_CLAUDE);
	assert_true(policy_allows_name(&pol, "api.anthropic.com"));
	assert_true(policy_allows_name(&pol, "x.claude.ai"));
	assert_false(policy_allows_name(&pol, "evil.api.anthropic.com"));	/* exact */
	assert_false(policy_allows_name(&pol, "api.anthropic.com.evil"));
	assert_false(policy_allows_name(&pol, "github.com"));
	assert_false(policy_allows_name(&pol, "api.openai.com"));
	policy_set_profile(&pol, "standard");
	policy_set_agent(&pol, POLICY_AGENT_CODEX);
	assert_true(policy_allows_name(&pol, "github.com"));
	assert_true(policy_allows_name(&pol, "api.openai.com"));
	assert_true(policy_allows_name(&pol, "registry.npmjs.org"));
	assert_true(policy_allows_name(&pol, "registry-1.docker.io"));
	assert_true(policy_allows_name(&pol, "x.githubusercontent.com"));
	assert_false(policy_allows_name(&pol, "githubusercontent.com.evil"));
	assert_false(policy_allows_name(&pol, "api.anthropic.com"));
	assert_false(policy_allows_name(&pol, "evil.com"));
	policy_set_agent(&pol, POLICY_AGENT_ALL);
	assert_true(policy_allows_name(&pol, "api.anthropic.com"));
	assert_true(policy_allows_name(&pol, "models.dev"));
	policy_set_agent(&pol, POLICY_AGENT_NONE);
	assert_false(policy_allows_name(&pol, "api.openai.com"));
	assert_true(policy_allows_name(&pol, "pypi.org"));
	enum policy_agent a;
	assert_int_equal(policy_agent_parse("codex", &a), 0);
	assert_int_equal(a, POLICY_AGENT_CODEX);
	assert_int_equal(policy_agent_parse("Codex", &a), -EINVAL);
	assert_string_equal(policy_agent_name(POLICY_AGENT_ALL), "all");
	assert_string_equal(policy_profile_name(PP_STANDARD), "standard");
	assert_true(host_match("*.corp.test", "a.b.corp.test", 13));
	assert_false(host_match("*.corp.test", "corp.test", 9));
	assert_true(host_match("corp.test", "CORP.test.", 10));
	policy_init(&pol);
	setup(NULL);
}

static void test_parse(void **state)
{
	(void)state;
	uint8_t a[16];
	uint32_t v4;
	assert_int_equal(policy_parse_addr("1.2.3.4", a), 0);
	assert_true(policy_addr_to_v4(a, &v4));
	assert_int_equal(v4, 0x01020304);
	assert_int_equal(policy_parse_addr("1.2.3", a), -EINVAL);
	assert_int_equal(policy_parse_addr("::g", a), -EINVAL);
	assert_int_equal(policy_parse_addr("", a), -EINVAL);
	assert_int_equal(policy_parse_addr("2001:db8::1", a), 0);
	assert_false(policy_addr_to_v4(a, &v4));
	for (int g = 0; g < PG_COUNT; g++) {
		assert_non_null(policy_group_name((enum policy_group)g));
		assert_non_null(policy_group_remedy((enum policy_group)g));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_groups, setup),
		cmocka_unit_test_setup(test_allow_lan_opens_only_private, setup),
		cmocka_unit_test_setup(test_allow_host_opens_only_host, setup),
		cmocka_unit_test_setup(test_allow_egress_cidrs, setup),
		cmocka_unit_test_setup(test_profiles, setup),
		cmocka_unit_test_setup(test_profile_names, setup),
		cmocka_unit_test_setup(test_attacks, setup),
		cmocka_unit_test(test_live_host_addrs),
		cmocka_unit_test_setup(test_names, setup),
		cmocka_unit_test_setup(test_parse, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
