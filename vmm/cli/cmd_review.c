/* vmm/cli/cmd_review.c - `kvmbox review [--project DIR] [--list |
 * --discard]`: reopen the pending review of a --review launch
 * (launch/review/review.h).  Without a flag it asks about each undecided
 * change, reading the answers from stdin (a terminal, or a script's
 * lines); --list prints the undecided changes; --discard drops the copy
 * and every undecided change.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/text.h"
#include "launch/review/review.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/net_args.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: kvmbox review [--project DIR] [--list | --discard]\n"
		   "Reopen the review a `kvmbox AGENT --review` launch in DIR (default: here)\n"
		   "left: each change the agent made to the copy, as a diff, applied to the\n"
		   "project only on a yes, and only where the project's file has not changed\n"
		   "since the copy was made.  --list shows what waits; --discard drops it.\n");
}

int cmd_review(int argc, char **argv)
{
	const char *project = ".", *v;
	bool list = false, discard = false;
	for (int i = 1; i < argc; i++) {
		int t = cli_take_value(argc, argv, &i, "--project", &v);
		if (t > 0)
			project = v;
		else if (!strcmp(argv[i], "--list"))
			list = true;
		else if (!strcmp(argv[i], "--discard"))
			discard = true;
		else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			log_err("review: %s %s (try kvmbox review --help)", t < 0 ? "a value is missing for" : "unknown option",
				argv[i]);
			return EXIT_USAGE;
		}
	}
	if (list && discard) {
		log_err("review: --list or --discard, not both");
		return EXIT_USAGE;
	}
	char real[PATH_MAX], err[300];
	if (!realpath(project, real)) {
		log_err("review: project folder %s: %s", project, strerror(errno));
		return EXIT_USAGE;
	}
	struct review rv;
	int r = review_locate(&rv, real);
	if (r == 0 && !review_pending(&rv)) {
		log_err("review: no review is pending for %s", real);
		return 1;
	}
	if (r == 0)
		r = review_load(&rv, err, sizeof(err));
	else
		snprintf(err, sizeof(err), "%s", strerror(-r));
	int status = 1;
	if (r < 0) {
		log_err("review: %s", err);
	} else if (discard) {
		status = review_discard(&rv) < 0;
		if (!status)
			printf("review: the copy and its undecided changes are gone\n");
	} else if (list) {
		struct review_change *c;
		ssize_t n = review_changes(&rv, &c);
		for (ssize_t i = 0; i < n; i++) {
			printf("%c %s ", c[i].host_runs ? '!' : ' ',
			       c[i].kind == REVIEW_ADDED ? "added  " : c[i].kind == REVIEW_CHANGED ? "changed" : "deleted");
			put_visible(stdout, c[i].rel, strlen(c[i].rel));
			putchar('\n');
		}
		if (n >= 0)
			review_changes_free(c, (size_t)n);
		status = n < 0;
	} else {
		r = review_run(&rv, stdin, stdout, "review");
		if (r < 0)
			log_err("review: %s", strerror(-r));
		status = r < 0;
	}
	review_fini(&rv);
	return status;
}
