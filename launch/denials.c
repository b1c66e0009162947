/* launch/denials.c - the per-project record of refusals (see denials.h). */
#include "launch/denials.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "launch/state.h"

#define LINE_MAX_BYTES 1024

int denials_path(const char *project_real, char *out, size_t outsz)
{
	char dir[4096];
	int r = state_dir(project_real, dir, sizeof(dir));
	if (r < 0)
		return r;
	return (size_t)snprintf(out, outsz, "%s.denials", dir) < outsz ? 0 : -ENAMETOOLONG;
}

/* "2026-12-05T11:40:56Z" */
static void now_text(char *out, size_t outsz)
{
	time_t t = time(NULL);
	struct tm tm;
	if (!gmtime_r(&t, &tm) || !strftime(out, outsz, "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(out, outsz, "?");
}

void denials_write(int fd, const char *text)
{
	char line[LINE_MAX_BYTES], now[32];
	now_text(now, sizeof(now));
	int n = snprintf(line, sizeof(line) - 1, "%s %s", now, text);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(line) - 2)
		n = (int)sizeof(line) - 2;
	for (int i = 0; i < n; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] >= 0x7f)
			line[i] = '?';
	line[n++] = '\n';
	(void)!write(fd, line, (size_t)n);	/* one write: O_APPEND keeps lines whole */
}

int denials_open(const char *project_real, const char *what)
{
	char path[4096 + 16], old[4096 + 32];
	int r = denials_path(project_real, path, sizeof(path));
	if (r < 0)
		return r;
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > (off_t)DENIALS_MAX_BYTES) {
		snprintf(old, sizeof(old), "%s.old", path);
		rename(path, old);
	}
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != getuid()) {
		r = fstat(fd, &st) < 0 ? -errno : -EPERM;
		close(fd);
		return r;
	}
	char head[LINE_MAX_BYTES];
	snprintf(head, sizeof(head), "launch: %s", what);
	denials_write(fd, head);
	return fd;
}

int denials_print(const char *project_real, FILE *out)
{
	char path[4096 + 16];
	int r = denials_path(project_real, path, sizeof(path));
	if (r < 0)
		return r;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char buf[8192];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, out) != (size_t)n) {
			n = -1;
			errno = EIO;
			break;
		}
	r = n < 0 ? -errno : 0;
	close(fd);
	return r;
}
