/* tests/e2e/memscan.c - search a live process's memory for byte strings
 * (run by root in the nested harness: is a real token anywhere in the
 * VMM, its guest's RAM included?).
 *
 *   memscan PID NEEDLE...
 *
 * Reads every readable mapping of PID through /proc/PID/mem, and every
 * memfd it holds open (the guest's RAM) through /proc/PID/fd, data
 * extents only (SEEK_DATA), so untouched guest pages cost nothing.  Memfd
 * mappings are left to that second pass.  A readable mapping above 16 GiB
 * is a sanitizer's shadow (metadata bytes, no copy of data) and is skipped,
 * as are [vvar] and [vsyscall]; both are counted in the summary.
 *
 * Prints "NEEDLE: N" per needle (with where the first hit was), then
 * "scanned X MiB (largest mapping L MiB), memfds Y MiB, skipped Z MiB"
 * (the guest's RAM is the largest mapping, or a memfd under --hugepages).  Exit: 0 none found,
 * 1 some found, 2 error.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define MAX_NEEDLES 8
#define BIG_REGION (16ull << 30)

static const char *needle[MAX_NEEDLES];
static size_t needle_len[MAX_NEEDLES], maxlen;
static unsigned hits[MAX_NEEDLES], nneedles;
static char first_at[MAX_NEEDLES][160];

static void search(const char *buf, size_t n, const char *where, uint64_t base)
{
	for (unsigned k = 0; k < nneedles; k++) {
		const char *p = buf;
		size_t left = n;
		const char *h;
		while ((h = memmem(p, left, needle[k], needle_len[k]))) {
			if (!hits[k]++)
				snprintf(first_at[k], sizeof(first_at[k]), "%s+0x%" PRIx64, where,
					 base + (uint64_t)(h - buf));
			left -= (size_t)(h - p) + 1;
			p = h + 1;
		}
	}
}

/* [start, end) of fd at offsets, in chunks overlapping by maxlen - 1 so a
 * needle across a chunk boundary is found once.  Bytes read. */
static uint64_t scan_range(int fd, uint64_t start, uint64_t end, const char *where, char *buf)
{
	uint64_t done = 0;
	for (uint64_t off = start; off < end;) {
		size_t want = end - off < CHUNK ? (size_t)(end - off) : CHUNK;
		ssize_t n = pread(fd, buf, want, (off_t)off);
		if (n <= 0) {		/* a page that cannot be read: skip it */
			off = (off | 4095) + 1;
			continue;
		}
		search(buf, (size_t)n, where, off - start);
		done += (uint64_t)n;
		if (off + (uint64_t)n >= end || (size_t)n < maxlen)
			off += (uint64_t)n;
		else
			off += (uint64_t)n - (maxlen - 1);
	}
	return done;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc - 2 > MAX_NEEDLES) {
		fprintf(stderr, "usage: memscan PID NEEDLE... (at most %d)\n", MAX_NEEDLES);
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		needle[nneedles] = argv[i];
		needle_len[nneedles] = strlen(argv[i]);
		if (!needle_len[nneedles])
			return 2;
		if (needle_len[nneedles] > maxlen)
			maxlen = needle_len[nneedles];
		nneedles++;
	}
	char path[128];
	snprintf(path, sizeof(path), "/proc/%s/maps", argv[1]);
	FILE *maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%s/mem", argv[1]);
	int mem = open(path, O_RDONLY);
	char *buf = malloc(CHUNK);
	if (!maps || mem < 0 || !buf) {
		fprintf(stderr, "memscan: %s: %s\n", path, strerror(errno));
		return 2;
	}
	uint64_t scanned = 0, skipped = 0, memfds = 0, largest = 0;
	char line[4096];
	while (fgets(line, sizeof(line), maps)) {
		uint64_t start, end;
		char perms[8] = "", name[3000] = "";
		if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %*s %*s %*s %2999[^\n]", &start, &end, perms,
			   name) < 3 || perms[0] != 'r')
			continue;
		if (!strncmp(name, "/memfd:", 7))
			continue;	/* through its descriptor, below */
		if (!strcmp(name, "[vvar]") || !strcmp(name, "[vsyscall]") || end - start > BIG_REGION) {
			skipped += end - start;
			continue;
		}
		char where[160];
		snprintf(where, sizeof(where), "%" PRIx64 " %s", start, name[0] ? name : "[anon]");
		uint64_t n = scan_range(mem, start, end, where, buf);
		scanned += n;
		largest = n > largest ? n : largest;
	}
	fclose(maps);
	close(mem);
	snprintf(path, sizeof(path), "/proc/%s/fd", argv[1]);
	DIR *d = opendir(path);
	for (struct dirent *e; d && (e = readdir(d));) {
		char fdpath[600], target[300];
		snprintf(fdpath, sizeof(fdpath), "%s/%s", path, e->d_name);
		ssize_t tl = readlink(fdpath, target, sizeof(target) - 1);
		if (tl <= 0)
			continue;
		target[tl] = 0;
		if (strncmp(target, "/memfd:", 7))
			continue;
		int fd = open(fdpath, O_RDONLY);
		if (fd < 0)
			continue;
		off_t data = 0, hole;
		while ((data = lseek(fd, data, SEEK_DATA)) >= 0) {
			hole = lseek(fd, data, SEEK_HOLE);
			if (hole <= data)
				break;
			memfds += scan_range(fd, (uint64_t)data, (uint64_t)hole, target, buf);
			data = hole;
		}
		close(fd);
	}
	if (d)
		closedir(d);
	int found = 0;
	for (unsigned k = 0; k < nneedles; k++) {
		printf("%s: %u%s%s\n", needle[k], hits[k], hits[k] ? " first at " : "", first_at[k]);
		found |= hits[k] > 0;
	}
	printf("scanned %" PRIu64 " MiB (largest mapping %" PRIu64 " MiB), memfds %" PRIu64
	       " MiB, skipped %" PRIu64 " MiB\n", scanned >> 20, largest >> 20, memfds >> 20, skipped >> 20);
	free(buf);
	return found;
}
