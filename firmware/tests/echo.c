/* firmware/tests/echo.c - reads one line from the serial port (polling
 * LSR.DR from CPL 3), prints "got: LINE" and exits with the line's length:
 * the host-stdin -> event loop -> UART receive path of `kvmbox run
 * --console`, including lines longer than the 64-byte FIFO. */
#include "guest.h"

int guest_main(const struct hvm_start_info *si)
{
	(void)si;
	static char line[256];
	unsigned n = 0;
	for (;;) {
		while (!(inb(COM1 + 5) & 0x01))	/* LSR.DR */
			__asm__ volatile("pause");
		char ch = (char)inb(COM1);
		if (ch == '\n' || ch == '\r')
			break;
		if (n < sizeof(line) - 1)
			line[n++] = ch;
	}
	line[n] = 0;
	serial_puts("got: ");
	serial_puts(line);
	serial_puts("\n");
	return (int)n;
}
