/* vmm/cli/cmd_images.c - `kvmbox images` lists the image store (name, size,
 * source, created, API version); `kvmbox images rm NAME...` removes images;
 * `kvmbox images check NAME` runs the launch path's API version check. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "guest/image/image.h"
#include "vmm/cli/cli.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_size(uint64_t bytes, char *out, size_t len)
{
	if (bytes >= 1000000000ull)
		snprintf(out, len, "%.2f GB", (double)bytes / 1e9);
	else
		snprintf(out, len, "%.1f MB", (double)bytes / 1e6);
}

static int list_images(void)
{
	char dir[4096];
	int r = image_images_dir(dir, sizeof(dir));
	if (r) {
		fprintf(stderr, "kvmbox: images: %s\n", strerror(-r));
		return 1;
	}
	DIR *d = opendir(dir);
	if (!d) {
		fprintf(stderr, "kvmbox: images: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	char *names[1024];
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) && n < 1024)
		if (image_name_valid(de->d_name))
			names[n++] = strdup(de->d_name);
	closedir(d);
	qsort(names, n, sizeof(names[0]), cmp_str);
	printf("%-24s %10s  %-3s  %-20s  %s\n", "NAME", "SIZE", "API", "CREATED", "SOURCE");
	for (size_t i = 0; i < n; i++) {
		if (!names[i])
			continue;
		char path[4400], size[32];
		struct image_meta m;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || image_meta_read(fd, &m)) {
			printf("%-24s %10s  %-3s  %-20s  %s\n", names[i], "?", "?", "?",
			       "(no metadata: remove it with kvmbox images rm)");
		} else {
			print_size(m.size, size, sizeof(size));
			printf("%-24s %10s  %-3d  %-20.20s  %s\n", names[i], size, m.api_version,
			       m.created[0] ? m.created : m.built, m.source);
		}
		if (fd >= 0)
			close(fd);
		free(names[i]);
	}
	return 0;
}

static int remove_images(int argc, char **argv)
{
	int rc = 0;
	if (argc < 1) {
		fprintf(stderr, "usage: kvmbox images rm NAME...\n");
		return EXIT_USAGE;
	}
	for (int i = 0; i < argc; i++) {
		if (!image_name_valid(argv[i])) {
			fprintf(stderr, "kvmbox: images rm: invalid image name '%s'\n", argv[i]);
			rc = EXIT_USAGE;
			continue;
		}
		int r = image_remove(argv[i]);
		if (r) {
			fprintf(stderr, "kvmbox: images rm %s: %s\n", argv[i],
				r == -ENOENT ? "no such image" : strerror(-r));
			rc = 1;
		} else {
			printf("removed %s\n", argv[i]);
		}
	}
	return rc;
}

static int check_image(const char *name)
{
	char dir[4096], path[4400];
	if (!image_name_valid(name) || image_images_dir(dir, sizeof(dir))) {
		fprintf(stderr, "kvmbox: images check: invalid image name '%s'\n", name);
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (image_check_api(path))
		return 1;
	printf("%s: API version %d, supported\n", name, IMAGE_API_VERSION);
	return 0;
}

int cmd_images(int argc, char **argv)
{
	if (argc == 1 || (argc == 2 && !strcmp(argv[1], "ls")))
		return list_images();
	if (!strcmp(argv[1], "rm"))
		return remove_images(argc - 2, argv + 2);
	if (!strcmp(argv[1], "check") && argc == 3)
		return check_image(argv[2]);
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		printf("usage: kvmbox images [ls] | rm NAME... | check NAME\n");
		return 0;
	}
	fprintf(stderr, "usage: kvmbox images [ls] | rm NAME... | check NAME\n");
	return EXIT_USAGE;
}
