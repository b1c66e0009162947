/* vmm/cli/cmd_setup.c - `kvmbox setup [--name NAME] [--suite S] [--mirror URL]
 * [--refresh]`: build the default guest image from Debian packages and the
 * npm registry into the cache (guest/image/setup.c). */
#include <getopt.h>
#include <stdio.h>

#include "guest/image/image.h"
#include "vmm/cli/cli.h"

static void setup_usage(FILE *f)
{
	fprintf(f, "usage: kvmbox setup [--name NAME] [--suite SUITE] [--mirror URL] [--refresh]\n"
		   "  --name     image name (default: default)\n"
		   "  --suite    Debian suite (default: bookworm)\n"
		   "  --mirror   Debian mirror (default: the host's apt sources)\n"
		   "  --refresh  rebuild every step even when its inputs did not change\n");
}

int cmd_setup(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "suite", required_argument, NULL, 's' },
		{ "mirror", required_argument, NULL, 'm' },
		{ "refresh", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct setup_opts o = { .name = "default", .suite = "bookworm" };
	int c;
	optind = 1;
	while ((c = getopt_long(argc, argv, "n:s:m:rh", opts, NULL)) != -1) {
		switch (c) {
		case 'n': o.name = optarg; break;
		case 's': o.suite = optarg; break;
		case 'm': o.mirror = optarg; break;
		case 'r': o.refresh = true; break;
		case 'h': setup_usage(stdout); return 0;
		default: setup_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		setup_usage(stderr);
		return EXIT_USAGE;
	}
	if (!image_name_valid(o.name)) {
		fprintf(stderr, "kvmbox: setup: invalid image name '%s'\n", o.name);
		return EXIT_USAGE;
	}
	for (const char *p = o.suite; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-')) {
			fprintf(stderr, "kvmbox: setup: invalid suite '%s'\n", o.suite);
			return EXIT_USAGE;
		}
	return image_setup(&o) ? 1 : 0;
}
