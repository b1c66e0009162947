/* tests/unit/test_vmm_legacy.c - the legacy devices driven through their
 * io_region callbacks, as a guest driver would: the 8250's registers and
 * interrupts (Linux's autoconfig probes, THR-empty and receive interrupts,
 * the RX FIFO), the i8042's probe answers and reset line, and the marker
 * port's decoding. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/legacy/legacy.h"

struct irq_log {
	int level;
	int changes;
};

static void irq_cb(void *opaque, int level)
{
	struct irq_log *l = opaque;
	l->level = level;
	l->changes++;
}

static uint8_t rd(struct uart8250 *u, unsigned reg)
{
	uint8_t v = 0;
	u->region.read(u->region.opaque, reg, &v, 1);
	return v;
}

static void wr(struct uart8250 *u, unsigned reg, uint8_t v)
{
	u->region.write(u->region.opaque, reg, &v, 1);
}

static void test_uart_output_and_lsr(void **state)
{
	(void)state;
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	struct uart8250 u;
	struct irq_log irq = { 0 };
	uart_init(&u, UART_COM1_BASE, fds[1], irq_cb, &irq);
	assert_int_equal(u.region.base, 0x3f8);
	assert_int_equal(u.region.len, 8);
	assert_int_equal(rd(&u, 5) & 0x60, 0x60);	/* THRE | TEMT */
	assert_int_equal(rd(&u, 5) & 0x01, 0);		/* no data */
	wr(&u, 0, 'h');
	wr(&u, 0, 'i');
	char buf[4] = { 0 };
	assert_int_equal(read(fds[0], buf, sizeof(buf)), 2);
	assert_string_equal(buf, "hi");
	assert_int_equal(irq.changes, 0);		/* no IER: no interrupt */
	uart_fini(&u);
	close(fds[0]);
	close(fds[1]);
}

static void test_uart_probe_registers(void **state)
{
	(void)state;
	struct uart8250 u;
	uart_init(&u, UART_COM1_BASE, -1, NULL, NULL);
	/* scratch register */
	wr(&u, 7, 0xa5);
	assert_int_equal(rd(&u, 7), 0xa5);
	wr(&u, 7, 0x5a);
	assert_int_equal(rd(&u, 7), 0x5a);
	/* divisor latch behind DLAB */
	wr(&u, 3, 0x83);
	wr(&u, 0, 0x01);
	wr(&u, 1, 0x00);
	assert_int_equal(rd(&u, 0), 0x01);
	assert_int_equal(rd(&u, 1), 0x00);
	wr(&u, 3, 0x03);
	assert_int_equal(rd(&u, 3), 0x03);
	assert_int_equal(rd(&u, 1), 0x00);		/* IER again */
	/* loopback: MSR mirrors MCR, THR lands in RBR */
	wr(&u, 4, 0x10);
	assert_int_equal(rd(&u, 6) & 0xf0, 0x00);
	wr(&u, 4, 0x1f);
	assert_int_equal(rd(&u, 6) & 0xf0, 0xf0);
	wr(&u, 0, 0x42);
	assert_int_equal(rd(&u, 5) & 0x01, 0x01);
	assert_int_equal(rd(&u, 0), 0x42);
	wr(&u, 4, 0x08);
	assert_int_equal(rd(&u, 6), 0xb0);		/* DCD, DSR, CTS */
	/* FIFO enable shows in IIR (16550A) */
	wr(&u, 2, 0x07);
	assert_int_equal(rd(&u, 2) & 0xc0, 0xc0);
	wr(&u, 2, 0x00);
	assert_int_equal(rd(&u, 2), 0x01);		/* no FIFO, no interrupt */
	uart_fini(&u);
}

static void test_uart_thr_interrupt(void **state)
{
	(void)state;
	struct uart8250 u;
	struct irq_log irq = { 0 };
	uart_init(&u, UART_COM1_BASE, -1, irq_cb, &irq);
	wr(&u, 1, 0x02);				/* enable THRI: fires at once */
	assert_int_equal(irq.level, 1);
	assert_int_equal(rd(&u, 2) & 0x0f, 0x02);	/* IIR: THR empty ... */
	assert_int_equal(irq.level, 0);			/* ... and reading it acks */
	assert_int_equal(rd(&u, 2) & 0x0f, 0x01);
	wr(&u, 0, 'x');					/* transmit: THR empty again */
	assert_int_equal(irq.level, 1);
	wr(&u, 1, 0x00);
	assert_int_equal(irq.level, 0);
	uart_fini(&u);
}

static void test_uart_receive(void **state)
{
	(void)state;
	struct uart8250 u;
	struct irq_log irq = { 0 };
	uart_init(&u, UART_COM1_BASE, -1, irq_cb, &irq);
	wr(&u, 1, 0x01);				/* RDI */
	assert_int_equal(irq.level, 0);
	assert_int_equal(uart_receive(&u, (const uint8_t *)"ab", 2), 2);
	assert_int_equal(irq.level, 1);
	assert_int_equal(rd(&u, 2) & 0x0f, 0x04);	/* IIR: RX data */
	assert_int_equal(rd(&u, 5) & 1, 1);
	assert_int_equal(rd(&u, 0), 'a');
	assert_int_equal(irq.level, 1);
	assert_int_equal(rd(&u, 0), 'b');
	assert_int_equal(irq.level, 0);
	assert_int_equal(rd(&u, 5) & 1, 0);
	assert_int_equal(rd(&u, 0), 0);			/* empty FIFO reads 0 */
	/* the FIFO holds 64 bytes; the rest is refused, not overwritten */
	uint8_t big[100];
	memset(big, 'z', sizeof(big));
	big[0] = '1';
	assert_int_equal(uart_rx_space(&u), UART_FIFO_SIZE);
	assert_int_equal(uart_receive(&u, big, sizeof(big)), UART_FIFO_SIZE);
	assert_int_equal(uart_rx_space(&u), 0);
	assert_int_equal(rd(&u, 0), '1');
	/* FCR clears the receive FIFO */
	wr(&u, 2, 0x03);
	assert_int_equal(rd(&u, 5) & 1, 0);
	assert_int_equal(irq.level, 0);
	uart_fini(&u);
}

static void test_uart_wide_access(void **state)
{
	(void)state;
	struct uart8250 u;
	uart_init(&u, UART_COM1_BASE, -1, NULL, NULL);
	uint32_t v = 0xffffffff;
	u.region.read(u.region.opaque, 5, &v, 4);
	assert_int_equal(v, 0x60);	/* low byte is LSR, the rest zero */
	uart_fini(&u);
}

/* ---- i8042 ---- */

static int resets;
static void on_reset(void *opaque)
{
	(void)opaque;
	resets++;
}

static uint8_t kb_rd(struct io_region *r)
{
	uint8_t v = 0;
	r->read(r->opaque, 0, &v, 1);
	return v;
}

static void kb_wr(struct io_region *r, uint8_t v)
{
	r->write(r->opaque, 0, &v, 1);
}

static void test_i8042_probe_and_reset(void **state)
{
	(void)state;
	struct i8042 k;
	resets = 0;
	i8042_init(&k, on_reset, NULL);
	assert_int_equal(k.data_region.base, 0x60);
	assert_int_equal(k.cmd_region.base, 0x64);
	assert_int_equal(kb_rd(&k.cmd_region) & 0x01, 0);	/* nothing to read */
	assert_int_equal(kb_rd(&k.cmd_region) & 0x02, 0);	/* input buffer empty */
	kb_wr(&k.cmd_region, 0xaa);				/* self test */
	assert_int_equal(kb_rd(&k.cmd_region) & 0x01, 1);
	assert_int_equal(kb_rd(&k.data_region), 0x55);
	assert_int_equal(kb_rd(&k.cmd_region) & 0x01, 0);
	kb_wr(&k.cmd_region, 0x60);				/* write CTR */
	kb_wr(&k.data_region, 0x65);
	kb_wr(&k.cmd_region, 0x20);				/* read CTR */
	assert_int_equal(kb_rd(&k.data_region), 0x65);
	kb_wr(&k.cmd_region, 0xab);
	assert_int_equal(kb_rd(&k.data_region), 0x00);
	assert_int_equal(resets, 0);
	kb_wr(&k.cmd_region, 0xfe);
	assert_int_equal(resets, 1);
	i8042_fini(&k);
}

/* ---- marker ---- */

static int boots, last_status = -1;
static void on_boot(void *opaque)
{
	(void)opaque;
	boots++;
}
static void on_status(void *opaque, int status)
{
	(void)opaque;
	last_status = status;
}

static void test_marker_decode(void **state)
{
	(void)state;
	int st = -1;
	assert_int_equal(marker_decode(0x4b420001, &st), MARKER_KIND_BOOT);
	assert_int_equal(marker_decode(0x4b450000, &st), MARKER_KIND_EXIT);
	assert_int_equal(st, 0);
	assert_int_equal(marker_decode(0x4b4500ff, &st), MARKER_KIND_EXIT);
	assert_int_equal(st, 255);
	assert_int_equal(marker_decode(0x4b450107, &st), MARKER_NONE);
	assert_int_equal(marker_decode(0x4b420002, &st), MARKER_KIND_SNAPSHOT);
	assert_int_equal(marker_decode(0x4b420003, &st), MARKER_NONE);
	assert_int_equal(marker_decode(0, &st), MARKER_NONE);
}

static void test_marker_port(void **state)
{
	(void)state;
	struct marker m;
	boots = 0;
	last_status = -1;
	marker_init(&m, on_boot, on_status, NULL);
	assert_int_equal(m.region.base, 0x600);
	uint32_t v = 0x4b420001;
	m.region.write(m.region.opaque, 0, &v, 4);
	assert_int_equal(boots, 1);
	v = 0x4b450007;
	m.region.write(m.region.opaque, 0, &v, 2);	/* not 32-bit: ignored */
	m.region.write(m.region.opaque, 1, &v, 1);
	assert_int_equal(last_status, -1);
	m.region.write(m.region.opaque, 0, &v, 4);
	assert_int_equal(last_status, 7);
	v = 0x12345678;
	m.region.write(m.region.opaque, 0, &v, 4);	/* unknown: ignored */
	assert_int_equal(last_status, 7);
	assert_int_equal(boots, 1);
	uint32_t r = 0;
	m.region.read(m.region.opaque, 0, &r, 4);
	assert_int_equal(r, 0xffffffff);
}

/* What a restored guest reads first: fresh entropy each read, and the
 * host's clock latched by the first time register. */
static void test_marker_entropy_and_time(void **state)
{
	(void)state;
	struct marker m;
	marker_init(&m, NULL, NULL, NULL);
	uint32_t a = 0, b = 0, c = 0;
	m.region.read(m.region.opaque, KBX_ENTROPY_PORT - KBX_MARKER_PORT, &a, 4);
	m.region.read(m.region.opaque, KBX_ENTROPY_PORT - KBX_MARKER_PORT, &b, 4);
	m.region.read(m.region.opaque, KBX_ENTROPY_PORT - KBX_MARKER_PORT, &c, 4);
	assert_false(a == b && b == c);		/* 2^-64 */
	struct timespec before, after;
	clock_gettime(CLOCK_REALTIME, &before);
	uint32_t lo = 0, hi = 1, ns = 0;
	m.region.read(m.region.opaque, KBX_TIME_PORT - KBX_MARKER_PORT, &lo, 4);
	m.region.read(m.region.opaque, KBX_TIME_PORT - KBX_MARKER_PORT + 4, &hi, 4);
	m.region.read(m.region.opaque, KBX_TIME_PORT - KBX_MARKER_PORT + 8, &ns, 4);
	clock_gettime(CLOCK_REALTIME, &after);
	uint64_t sec = (uint64_t)hi << 32 | lo;
	assert_true(sec >= (uint64_t)before.tv_sec && sec <= (uint64_t)after.tv_sec);
	assert_true(ns < 1000000000u);
	uint16_t narrow = 0;
	m.region.read(m.region.opaque, KBX_ENTROPY_PORT - KBX_MARKER_PORT, &narrow, 2);
	assert_int_equal(narrow, 0xffff);	/* only 32-bit reads are answered */
	marker_fini(&m);
}

/* A snapshot's UART: registers, the pending THR interrupt and the receive
 * FIFO (wrapped around) come back in a fresh UART, with its line raised;
 * states no UART can be in are refused. */
static void test_uart_state_round_trip(void **state)
{
	(void)state;
	struct irq_log la = { 0 }, lb = { 0 };
	struct uart8250 a, b;
	uart_init(&a, UART_COM1_BASE, -1, irq_cb, &la);
	uart_init(&b, UART_COM1_BASE, -1, irq_cb, &lb);
	uint8_t fill[UART_FIFO_SIZE];
	memset(fill, 'x', sizeof(fill));
	uart_receive(&a, fill, 60);
	for (int i = 0; i < 58; i++)
		rd(&a, 0);			/* head near the end: the FIFO wraps */
	uart_receive(&a, (const uint8_t *)"hello", 5);
	wr(&a, 7, 0x5a);			/* scratch */
	wr(&a, 1, 0x01);			/* receive interrupts */
	assert_int_equal(la.level, 1);
	struct uart_state s;
	uart_save(&a, &s);
	assert_int_equal(s.rx_count, 7);
	assert_memory_equal(s.rx, "xxhello", 7);
	assert_int_equal(uart_load(&b, &s), 0);
	assert_int_equal(lb.level, 1);
	assert_int_equal(rd(&b, 7), 0x5a);
	char got[8] = { 0 };
	for (int i = 0; i < 7; i++)
		got[i] = (char)rd(&b, 0);
	assert_string_equal(got, "xxhello");
	assert_int_equal(lb.level, 0);
	struct uart_state bad = s;
	bad.rx_count = UART_FIFO_SIZE + 1;
	assert_int_equal(uart_load(&b, &bad), -EINVAL);
	bad = s;
	bad.reserved[3] = 1;
	assert_int_equal(uart_load(&b, &bad), -EINVAL);
	uart_fini(&a);
	uart_fini(&b);
}

static void test_i8042_state_round_trip(void **state)
{
	(void)state;
	struct i8042 a, b;
	i8042_init(&a, NULL, NULL);
	i8042_init(&b, NULL, NULL);
	uint8_t v = 0x60;
	a.cmd_region.write(a.cmd_region.opaque, 0, &v, 1);	/* a command waiting for data */
	struct i8042_state s;
	i8042_save(&a, &s);
	assert_int_equal(s.pending_cmd, 0x60);
	assert_int_equal(i8042_load(&b, &s), 0);
	assert_int_equal(b.pending_cmd, 0x60);
	s.pending_cmd = 0x99;
	assert_int_equal(i8042_load(&b, &s), -EINVAL);
	i8042_fini(&a);
	i8042_fini(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_uart_output_and_lsr),
		cmocka_unit_test(test_uart_probe_registers),
		cmocka_unit_test(test_uart_thr_interrupt),
		cmocka_unit_test(test_uart_receive),
		cmocka_unit_test(test_uart_wide_access),
		cmocka_unit_test(test_i8042_probe_and_reset),
		cmocka_unit_test(test_marker_decode),
		cmocka_unit_test(test_marker_port),
		cmocka_unit_test(test_marker_entropy_and_time),
		cmocka_unit_test(test_uart_state_round_trip),
		cmocka_unit_test(test_i8042_state_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
