/* firmware/tests/lib.c - serial, marker port, exit and a command-line
 * reader for the tiny test guests (freestanding, runs at CPL 3). */
#include "guest.h"

void serial_puts(const char *s)
{
	for (; *s; s++) {
		if (*s == '\n')
			outb(COM1, '\r');
		while (!(inb(COM1 + 5) & 0x20))	/* LSR.THRE */
			;
		outb(COM1, (uint8_t)*s);
	}
}

void serial_putu(unsigned v)
{
	char buf[12];
	int i = sizeof(buf) - 1;
	buf[i] = 0;
	do {
		buf[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v && i > 0);
	serial_puts(buf + i);
}

const char *guest_cmdline(const struct hvm_start_info *si)
{
	if (!si || si->magic != XEN_HVM_START_MAGIC || !si->cmdline_paddr ||
	    si->cmdline_paddr >= (1ULL << 30))	/* only the first GiB is mapped */
		return "";
	return (const char *)(uintptr_t)si->cmdline_paddr;
}

int cmdline_int(const char *s, const char *key, int dflt)
{
	for (const char *p = s; *p; p++) {
		if (p != s && p[-1] != ' ')
			continue;
		const char *k = key, *q = p;
		while (*k && *q == *k)
			k++, q++;
		if (*k || *q != '=')
			continue;
		q++;
		if (*q < '0' || *q > '9')
			return dflt;
		int v = 0;
		while (*q >= '0' && *q <= '9')
			v = v * 10 + (*q++ - '0');
		return v;
	}
	return dflt;
}

void guest_boot_marker(void)
{
	outl(KBX_MARKER_PORT, KBX_MARKER_BOOT);
}

void guest_exit(int status)
{
	outl(KBX_MARKER_PORT, KBX_MARKER_EXIT_BASE | ((unsigned)status & 0xff));
	outb(0x64, 0xfe);
	for (;;)
		;
}
