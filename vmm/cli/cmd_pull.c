/* vmm/cli/cmd_pull.c - `kvmbox pull [--name NAME] [--insecure] REF`: pull an
 * OCI image from a registry into the image store (guest/image/pull.c). */
#include <getopt.h>
#include <stdio.h>
#include <unistd.h>

#include "guest/image/image.h"
#include "vmm/cli/cli.h"

static void pull_usage(FILE *f)
{
	fprintf(f, "usage: kvmbox pull [--name NAME] [--insecure] REF\n"
		   "  REF         [REGISTRY/]REPO[:TAG][@sha256:DIGEST]\n"
		   "  --name      local image name (default: last REPO component[-TAG])\n"
		   "  --insecure  allow plain http to a non-loopback registry\n"
		   "  credentials: KVMBOX_REGISTRY_AUTH=user:password (never logged)\n");
}

int cmd_pull(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "insecure", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct pull_opts o = { .progress_tty = isatty(STDERR_FILENO) };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:kh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o.name = optarg; break;
		case 'k': o.insecure = true; break;
		case 'h': pull_usage(stdout); return 0;
		default: pull_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc) {
		pull_usage(stderr);
		return EXIT_USAGE;
	}
	o.ref = argv[optind];
	return image_pull(&o) ? 1 : 0;
}
