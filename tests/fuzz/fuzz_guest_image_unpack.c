/* tests/fuzz/fuzz_guest_image_unpack.c - random bytes as a layer: the
 * unpacker must never crash and never write outside the image root.
 *
 * A scratch directory holds root/ (the image, emptied after each input) and
 * outside/ (a sentinel that must stay empty); after every input the scratch
 * directory must hold exactly those two entries. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "guest/image/image.h"

/* Set up once per fuzzing process (libFuzzer calls us in a loop). */
static char scratch[64];
static int scratch_fd = -1, layer_fd = -1;

static void remove_scratch(void)
{
	int tmp = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (tmp >= 0)
		image_remove_tree_at(tmp, scratch + 5);
}

static void init_once(void)
{
	if (scratch_fd >= 0)
		return;
	log_set_level((enum log_level)-1);	/* quiet: hostile input logs a lot */
	snprintf(scratch, sizeof(scratch), "/tmp/kvmbox-fuzz-unpack-%d", (int)getpid());
	mkdir(scratch, 0700);
	atexit(remove_scratch);
	scratch_fd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	mkdirat(scratch_fd, "outside", 0700);
	layer_fd = memfd_create("layer", MFD_CLOEXEC);
	if (scratch_fd < 0 || layer_fd < 0)
		abort();
}

/* Entries of directory fd, minus "." and "..". */
static int count_entries(int fd)
{
	int d2 = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);	/* own offset */
	DIR *d = fdopendir(d2);
	if (!d)
		abort();
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	init_once();
	if (mkdirat(scratch_fd, "root", 0755))
		abort();
	int root = openat(scratch_fd, "root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0 || ftruncate(layer_fd, 0) || write_full(layer_fd, data, size) ||
	    lseek(layer_fd, 0, SEEK_SET))
		abort();
	image_unpack_layer(root, layer_fd, "fuzz", NULL);
	close(root);
	/* Nothing may have appeared next to root/ or in outside/. */
	int out = openat(scratch_fd, "outside", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (out < 0 || count_entries(out) != 0 || count_entries(scratch_fd) != 2)
		abort();
	close(out);
	if (image_remove_tree_at(scratch_fd, "root"))
		abort();
	return 0;
}
