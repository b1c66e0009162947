/* vmm/cli/cmd_setup.c - `kvmbox setup [--name NAME] [--suite S] [--mirror URL]
 * [--refresh]`: build the default guest image from Debian packages and the
 * npm registry into the user's cache, without root (guest/image/setup.c),
 * then find the guest kernel and boot the image once to run each agent's
 * --version in it, when this host's KVM can; it says plainly when not.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "guest/image/image.h"
#include "vmm/cli/cli.h"
#include "vmm/cli/guest_files.h"
#include "vmm/vmm.h"

#define AGENTS_VERSION_CMD "claude --version && codex --version && opencode --version"

extern char **environ;

static void setup_usage(FILE *f)
{
	fprintf(f, "usage: kvmbox setup [--name NAME] [--suite SUITE] [--mirror URL] [--refresh]\n"
		   "Build the guest image as you (no root: mmdebstrap in a user namespace, the\n"
		   "agents from the npm registry) into $KVMBOX_CACHE (default ~/.cache/kvmbox),\n"
		   "then find the guest kernel and, where this host's KVM can run it, boot the\n"
		   "image once and run each agent's --version.  A second run reuses every step\n"
		   "whose inputs did not change.  The kernel is built by `make kernel initrd` in\n"
		   "the kvmbox source tree (setup finds it, it does not build it).\n"
		   "  --name     image name (default: default)\n"
		   "  --suite    Debian suite (default: bookworm)\n"
		   "  --mirror   Debian mirror (default: the host's apt sources)\n"
		   "  --refresh  rebuild every step even when its inputs did not change\n");
}

/* Step 3: the kernel and initrd the launchers will use, as they find them
 * (guest_files.h), into *kernel and *initrd (pointers into gf). */
static int find_kernel(struct guest_files *gf, const char **kernel, const char **initrd)
{
	char *argv[] = { "setup", NULL };
	char err[256];
	printf("setup: [3/4] guest kernel\n");
	*kernel = *initrd = NULL;
	if (guest_files_resolve(gf, 1, argv, err, sizeof(err)) < 0) {
		printf("        %s\n", err);
		return -ENOMEM;
	}
	for (int i = 1; i + 1 < gf->argc; i += 2)
		*(!strcmp(gf->argv[i], "--kernel") ? kernel : initrd) = gf->argv[i + 1];
	if (gf->missing[0] || !*kernel || !*initrd) {
		printf("        none usable: %s\n", gf->missing[0] ? gf->missing :
		       "a kernel from $KVMBOX_KERNEL needs $KVMBOX_INITRD too");
		return -ENOENT;
	}
	printf("        %s\n        %s\n", *kernel, *initrd);
	return 0;
}

/* Step 4: boot the image once, each agent's --version in it. */
static int boot_check(const char *name, const char *kernel, const char *initrd)
{
	char err[256];
	printf("setup: [4/4] boot the image and run each agent's --version\n");
	int kvm = vm_open_kvm(err, sizeof(err));
	if (kvm < 0) {
		printf("        not here: %s\n        the image is built; it boots where KVM is usable\n", err);
		return 0;
	}
	close(kvm);
	char *argv[] = { "kvmbox", "shell", "--image", (char *)name, "--kernel", (char *)kernel,
			 "--initrd", (char *)initrd, "--no-net", "--memory", "1G", "--",
			 "/bin/sh", "-c", AGENTS_VERSION_CMD, NULL };
	pid_t pid;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", 0, 0);
	int r = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (r) {
		printf("        cannot start kvmbox shell: %s\n", strerror(r));
		return -r;
	}
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
		printf("        the image boots and every agent answers\n");
		return 0;
	}
	printf("        the boot check failed (status %d): see the lines above\n",
	       WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	return -EIO;
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
	if (image_setup(&o))
		return 1;
	struct guest_files gf = { 0 };
	const char *kernel, *initrd;
	int r = find_kernel(&gf, &kernel, &initrd);
	if (r == 0)
		r = boot_check(o.name, kernel, initrd);
	else
		printf("setup: [4/4] boot check: not without a kernel\n");
	guest_files_free(&gf);
	return r ? 1 : 0;
}
