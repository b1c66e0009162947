/* common/listeners.c - TCP listeners from /proc/net/tcp{,6} text (see
 * listeners.h).  A line reads
 *   "  0: 00000000:0BB8 00000000:0000 0A ..."
 * sl, local address:port (hex; the address in the kernel's byte order as
 * 8 or 32 hex digits), remote, state (0A = LISTEN). */
#include "common/listeners.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Loopback as the kernel prints it: IPv4 127.x is "..7F" (little-endian
 * word, first octet last); ::1 is 3 zero words then "01000000"; an
 * IPv4-mapped ::ffff:127.x is "0000000000000000FFFF0000" then "..7F". */
static bool local_is_loopback(const char *addr, bool v6)
{
	size_t len = strlen(addr);
	if (!v6)
		return len == 8 && !strncasecmp(addr + 6, "7F", 2);
	if (len != 32)
		return false;
	if (!strcasecmp(addr, "00000000000000000000000001000000"))
		return true;
	return !strncasecmp(addr, "0000000000000000FFFF0000", 24) &&
	       !strncasecmp(addr + 30, "7F", 2);
}

/* Add port to ports[0..*n) unless there: 1 when it did not fit. */
static unsigned add_port(uint16_t *ports, unsigned *n, unsigned max, uint16_t port)
{
	for (unsigned i = 0; i < *n; i++)
		if (ports[i] == port)
			return 0;
	if (*n >= max)
		return 1;
	ports[(*n)++] = port;
	return 0;
}

int listener_line(const char *line, bool v6, struct listener *l)
{
	char local[48], st[4];
	if (sscanf(line, "%*s %47[0-9A-Fa-f:] %*s %3s", local, st) != 2 || strcmp(st, "0A"))
		return 0;
	char *colon = strchr(local, ':');
	if (!colon || (size_t)(colon - local) >= sizeof(l->addr))
		return 0;
	*colon = 0;
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 16);
	if (*end || p == 0 || p > 65535)
		return 0;
	l->port = (uint16_t)p;
	l->loopback = local_is_loopback(local, v6);
	l->v4 = !v6 || !strncasecmp(local, "0000000000000000FFFF0000", 24);
	strcpy(l->addr, local);
	return 1;
}

unsigned listeners_parse(const char *text, bool v6, uint16_t *ports, unsigned *n,
			     unsigned max)
{
	unsigned dropped = 0;
	for (const char *line = text; line && *line;) {
		struct listener l;
		if (listener_line(line, v6, &l) && !l.loopback)
			dropped += add_port(ports, n, max, l.port);
		const char *nl = strchr(line, '\n');
		line = nl ? nl + 1 : NULL;
	}
	return dropped;
}

void listeners_each(void (*fn)(void *arg, const struct listener *l), void *arg)
{
	static const char *const files[2] = { "/proc/net/tcp", "/proc/net/tcp6" };
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "re");
		char line[256];
		struct listener l;
		while (f && fgets(line, sizeof(line), f))
			if (listener_line(line, i == 1, &l))
				fn(arg, &l);
		if (f)
			fclose(f);
	}
}

struct scan_ctx {
	uint16_t *ports;
	unsigned *n, max, dropped;
};

static void scan_one(void *arg, const struct listener *l)
{
	struct scan_ctx *c = arg;
	if (!l->loopback)
		c->dropped += add_port(c->ports, c->n, c->max, l->port);
}

unsigned listeners_scan(uint16_t *ports, unsigned *n, unsigned max)
{
	struct scan_ctx c = { ports, n, max, 0 };
	listeners_each(scan_one, &c);
	return c.dropped;
}

static int cmp_port(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

void listeners_sort(uint16_t *ports, unsigned n)
{
	qsort(ports, n, sizeof(*ports), cmp_port);
}
