/* tests/bench/bench_console.c - VMM-side cost of the guest's terminal: the
 * virtio-console port next to the 8250 serial console, both driven the way a
 * guest drives them, in the same run (built and run by bench-console.sh).
 *
 * What is measured: host CPU and wall time inside kvmbox's device code, with
 * the pretend guest (tests/harness) standing in for the guest kernel.  What
 * is not: the guest kernel's own cost, and the VM exits — the serial
 * console takes one exit per byte (THR write) plus interrupts, the virtio
 * port one notification per batch of chains (an ioeventfd, no exit to
 * userspace).  On hardware each exit is ~1-2 us, which only widens the gap.
 *
 *   throughput  guest -> host bytes/s into a pipe drained by another thread
 *               (cat of a large file): virtio 32 KiB chains (Linux's
 *               virtio_console write size), serial one THR write per byte.
 *   echo        one byte host -> guest -> host, median of N round trips:
 *               virtio through io_uring reads/writes on pipes and the rings,
 *               serial through uart_receive, RBR read, THR write.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/virtio_console.h>

#include "common/log.h"
#include "common/util.h"
#include "devices/legacy/legacy.h"
#include "devices/virtio/console.h"
#include "tests/harness/virtio_driver.h"

#define CHAIN 32768u
#define QSIZE 64u

static void *drain(void *arg)
{
	int fd = *(int *)arg;
	static char buf[1 << 16];
	uint64_t total = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		total += (uint64_t)n;
	return (void *)(uintptr_t)total;
}

static double secs(uint64_t ns) { return (double)ns / 1e9; }

static void die(const char *what)
{
	fprintf(stderr, "bench_console: %s failed\n", what);
	exit(1);
}

/* Bring up a console with port 1 on the given fds, opened by the guest. */
static struct vcon *console_up(struct vdrv *d, int in_fd, int out_fd)
{
	if (vdrv_init(d, 64 << 20) < 0)
		die("vdrv_init");
	struct vcon *c = vcon_create(&d->env, VIRTIO_MMIO_BASE, 2);
	struct vcon_backend none = { .in_fd = -1, .out_fd = -1 };
	struct vcon_backend be = { .in_fd = in_fd, .out_fd = out_fd };
	if (!c || vcon_add_port(c, 0, NULL, &none) || vcon_add_port(c, 1, "kvmbox.tty", &be) ||
	    vdrv_start(d, &c->vdev))
		die("console");
	uint64_t f = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX) |
		     (1ULL << VIRTIO_CONSOLE_F_MULTIPORT);
	if (vdrv_negotiate(d, f, NULL) < 0)
		die("negotiate");
	for (unsigned q = 0; q < 6; q++)
		if (vdrv_queue_setup(d, q, QSIZE) < 0)
			die("queue");
	vdrv_post_rx(d, 2, 8, 128);
	vdrv_driver_ok(d);
	struct virtio_console_control m[3] = {
		{ .id = 0, .event = VIRTIO_CONSOLE_DEVICE_READY, .value = 1 },
		{ .id = 1, .event = VIRTIO_CONSOLE_PORT_READY, .value = 1 },
		{ .id = 1, .event = VIRTIO_CONSOLE_PORT_OPEN, .value = 1 },
	};
	for (int i = 0; i < 3; i++) {
		vdrv_send(d, 3, &m[i], sizeof(m[i]));
		vdrv_run(d);
	}
	return c;
}

static void virtio_throughput(uint64_t total)
{
	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	pthread_t t;
	pthread_create(&t, NULL, drain, &p[0]);
	struct vdrv d;
	struct vcon *c = console_up(&d, -1, p[1]);
	uint64_t buf = vdrv_alloc(&d, CHAIN, 4096);
	memset(vdrv_host(&d, buf), 'x', CHAIN);
	struct timespec c0;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	uint64_t t0 = now_ns(), sent = 0, done = 0;
	unsigned inflight = 0;
	while (done < total) {
		struct vdrv_buf b = { buf, CHAIN, false };
		bool added = false;
		while (sent < total && inflight < QSIZE && vdrv_add(&d, 5, &b, 1, 0) >= 0) {
			sent += CHAIN;
			inflight++;
			added = true;
		}
		if (added)
			vdrv_kick(&d, 5);
		loop_run_once(&d.loop, 1000000);
		uint32_t id, len;
		while (vdrv_used(&d, 5, &id, &len) == 1) {
			done += CHAIN;
			inflight--;
		}
	}
	uint64_t ns = now_ns() - t0;
	struct timespec c1;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	vcon_destroy(c);
	vdrv_fini(&d);
	close(p[1]);
	void *got;
	pthread_join(t, &got);
	close(p[0]);
	if ((uint64_t)(uintptr_t)got != total)
		die("virtio byte count");
	double cpu = (double)(c1.tv_sec - c0.tv_sec) + (double)(c1.tv_nsec - c0.tv_nsec) / 1e9;
	printf("throughput virtio-console  %8.1f MB/s  (%llu MiB in %.2f s, %.2f s CPU incl. reader)\n",
	       (double)total / secs(ns) / 1e6, (unsigned long long)(total >> 20), secs(ns), cpu);
}

static void no_irq(void *opaque, int level) { (void)opaque; (void)level; }

static void serial_throughput(uint64_t total)
{
	int p[2];
	if (pipe(p) < 0)
		die("pipe");
	pthread_t t;
	pthread_create(&t, NULL, drain, &p[0]);
	struct uart8250 u;
	uart_init(&u, UART_COM1_BASE, p[1], no_irq, NULL);
	uint64_t t0 = now_ns();
	for (uint64_t i = 0; i < total; i++) {
		uint8_t lsr;
		u.region.read(u.region.opaque, 5, &lsr, 1);	/* LSR: THR empty? */
		uint8_t ch = 'x';
		u.region.write(u.region.opaque, 0, &ch, 1);	/* THR */
	}
	uint64_t ns = now_ns() - t0;
	uart_fini(&u);
	close(p[1]);
	void *got;
	pthread_join(t, &got);
	close(p[0]);
	printf("throughput serial 8250     %8.1f MB/s  (%llu MiB in %.2f s; + 1 VM exit per byte on a real guest)\n",
	       (double)total / secs(ns) / 1e6, (unsigned long long)(total >> 20), secs(ns));
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void virtio_echo(unsigned n)
{
	int in[2], out[2];
	if (pipe(in) < 0 || pipe(out) < 0)
		die("pipe");
	fcntl(out[0], F_SETFL, O_NONBLOCK);	/* only our end: we poll it */
	struct vdrv d;
	struct vcon *c = console_up(&d, in[0], out[1]);
	vdrv_post_rx(&d, 4, QSIZE / 2, 64);
	vdrv_kick(&d, 4);
	vdrv_run(&d);
	uint64_t *lat = calloc(n, sizeof(*lat));
	uint64_t echo = vdrv_alloc(&d, 1, 8);
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		if (write(in[1], "x", 1) != 1)
			die("write");
		void *data;
		uint32_t len;
		while (vdrv_used_buf(&d, 4, &data, &len) != 1)
			loop_run_once(&d.loop, 1000000);
		vdrv_post_rx(&d, 4, 1, 64);	/* the guest reposts its buffer */
		*(uint8_t *)vdrv_host(&d, echo) = *(uint8_t *)data;
		struct vdrv_buf b = { echo, 1, false };
		vdrv_add(&d, 5, &b, 1, 0);
		vdrv_kick(&d, 5);
		char ch;
		while (1) {
			loop_run_once(&d.loop, 0);
			if (read(out[0], &ch, 1) == 1)
				break;
		}
		lat[i] = now_ns() - t0;
		uint32_t id;
		while (vdrv_used(&d, 5, &id, &len) == 1)
			;
		if (d.brk > (60u << 20))
			die("guest RAM for echo buffers");
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("echo       virtio-console  %8.1f us median, %.1f us p99 (%u round trips)\n",
	       (double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3, n);
	free(lat);
	vcon_destroy(c);
	vdrv_fini(&d);
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
}

static void serial_echo(unsigned n)
{
	int out[2];
	if (pipe(out) < 0)
		die("pipe");
	struct uart8250 u;
	uart_init(&u, UART_COM1_BASE, out[1], no_irq, NULL);
	uint64_t *lat = calloc(n, sizeof(*lat));
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = now_ns();
		uart_receive(&u, (const uint8_t *)"x", 1);	/* host key press */
		uint8_t lsr, ch;
		u.region.read(u.region.opaque, 5, &lsr, 1);	/* guest: data ready? */
		u.region.read(u.region.opaque, 0, &ch, 1);	/* RBR */
		u.region.write(u.region.opaque, 0, &ch, 1);	/* THR: echo */
		char back;
		if (read(out[0], &back, 1) != 1)
			die("read");
		lat[i] = now_ns() - t0;
	}
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("echo       serial 8250     %8.1f us median, %.1f us p99 (%u round trips; + 3 VM exits each on a real guest)\n",
	       (double)lat[n / 2] / 1e3, (double)lat[n * 99 / 100] / 1e3, n);
	free(lat);
	uart_fini(&u);
	close(out[0]);
	close(out[1]);
}

int main(int argc, char **argv)
{
	uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : 256;
	unsigned n = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 2000;
	log_set_level(LOG_ERR);
	setvbuf(stdout, NULL, _IOLBF, 0);
	virtio_throughput(mib << 20);
	serial_throughput((mib / 64 ? mib / 64 : 1) << 20);	/* ~2.5 us a byte */
	virtio_echo(n);
	serial_echo(n);
	return 0;
}
