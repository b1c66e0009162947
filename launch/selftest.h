/* launch/selftest.h - the launch self-test: before the project hook and the
 * agent, the guest proves the promises of this launch, and the first that
 * does not hold stops the launch with status 125 and one line saying which.
 *
 * Why in the guest: the promises are about what the guest can do, so they
 * are proved from where the agent will stand, through the very VMM,
 * network stack, broker and proxy the launch runs, not by re-reading the
 * configuration on the host.  What is proved (each line of the list file
 * is one check; the guest's sh program SELFTEST_SCRIPT runs them):
 *   http ADDR      a plain request to ADDR (the metadata address, the
 *                  host through the gateway) gets the egress policy's 403
 *                  from the proxy: not merely a closed port, which a broken
 *                  policy would also give for a port nobody listens on;
 *   ca             the proxy's CA is installed and in the system bundle,
 *                  and OpenSSL, Node.js and git in the image (each when
 *                  present) complete a TLS handshake with the proxy;
 *   tls M H P PH WANT
 *                  request M P with Host H (and "Authorization: Bearer PH"
 *                  unless PH is "-") to the proxy's self-test endpoint
 *                  (proxy.h: PROXY_CHECK_NAME, judged as a request to H
 *                  would be, nothing dialled): the answer's status and
 *                  first line must match the glob WANT.  The launcher
 *                  writes, for each placeholder bound to a host name: its
 *                  own host substitutes it (or refuses the host, when the
 *                  egress policy does); for the first, a host that merely
 *                  begins with its own name leaves it as it is; an OAuth
 *                  refresh token's placeholder is never substituted into a
 *                  request; and a push to a repository off the GitHub
 *                  allow-list gets 403;
 *   time           print what the checks cost (--profile).
 * curl makes the requests, Node.js when the image has no curl; an image
 * with neither fails the self-test (--no-self-test launches without it).
 * Checks run with the proxy only: its answers are what tell a promise
 * kept from a port that happens to be closed.
 */
#ifndef KVMBOX_LAUNCH_SELFTEST_H
#define KVMBOX_LAUNCH_SELFTEST_H

#include <stdbool.h>

#include "net/policy.h"
#include "proxy/secrets.h"

#define SELFTEST_LIST "self-test"		/* in the launch directory: the checks */
#define SELFTEST_SCRIPT_FILE "self-test.sh"	/* and selftest_script */

/* What one launch promises. */
struct selftest_in {
	bool refuses_metadata, refuses_host;	/* the flags leave these refused */
	const struct secrets *secrets;		/* placeholders and their hosts */
	const struct policy *egress;		/* the launch's egress policy (NULL: refuse all) */
	bool timed;				/* --profile: say what it cost */
};

/* Write the checks of this launch, one per line, to dir/SELFTEST_LIST
 * (0644, through state_write_file).  0 or -errno. */
int selftest_write_list(const char *dir, const struct selftest_in *in);

/* The sh program that runs a list ("$1": its path in the guest), POSIX sh
 * and busybox compatible.  Exits 0 when every check passed, else 125 after
 * one line on stderr. */
extern const char selftest_script[];

#endif
