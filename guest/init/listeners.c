/* guest/init/listeners.c - TCP listeners from /proc/net/tcp{,6} text (see
 * listeners.h).  A line reads
 *   "  0: 00000000:0BB8 00000000:0000 0A ..."
 * sl, local address:port (hex; the address in the kernel's byte order as
 * 8 or 32 hex digits), remote, state (0A = LISTEN). */
#include "guest/init/listeners.h"

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

static bool have(const uint16_t *ports, unsigned n, uint16_t p)
{
	for (unsigned i = 0; i < n; i++)
		if (ports[i] == p)
			return true;
	return false;
}

int kbx_listener_line(const char *line, bool v6, uint16_t *port, bool *loopback)
{
	char local[48], st[4];
	if (sscanf(line, "%*s %47[0-9A-Fa-f:] %*s %3s", local, st) != 2 || strcmp(st, "0A"))
		return 0;
	char *colon = strchr(local, ':');
	if (!colon)
		return 0;
	*colon = 0;
	char *end;
	unsigned long p = strtoul(colon + 1, &end, 16);
	if (*end || p == 0 || p > 65535)
		return 0;
	*port = (uint16_t)p;
	*loopback = local_is_loopback(local, v6);
	return 1;
}

/* The port of one line when it is a LISTEN socket not on loopback, else 0. */
static uint16_t listen_port(const char *line, bool v6)
{
	uint16_t port;
	bool loopback;
	return kbx_listener_line(line, v6, &port, &loopback) && !loopback ? port : 0;
}

unsigned kbx_listeners_parse(const char *text, bool v6, uint16_t *ports, unsigned *n,
			     unsigned max)
{
	unsigned dropped = 0;
	for (const char *line = text; line && *line;) {
		uint16_t port = listen_port(line, v6);
		if (port && !have(ports, *n, port)) {
			if (*n < max)
				ports[(*n)++] = port;
			else
				dropped++;
		}
		const char *nl = strchr(line, '\n');
		line = nl ? nl + 1 : NULL;
	}
	return dropped;
}

static int cmp_port(const void *a, const void *b)
{
	return (int)*(const uint16_t *)a - (int)*(const uint16_t *)b;
}

void kbx_listeners_sort(uint16_t *ports, unsigned n)
{
	qsort(ports, n, sizeof(*ports), cmp_port);
}
