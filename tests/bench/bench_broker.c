/* tests/bench/bench_broker.c - what the broker split costs a proxied flow
 * (broker/broker.h), beside the alternatives, measured in the same run.
 *
 * Hand-over, per new flow (N flows):
 *   per-flow  what kvmbox does: the VMM makes a socket pair and sends one
 *             end with a FLOW message (SCM_RIGHTS); the broker receives
 *             and checks it (broker_flow_check, fstat, SO_TYPE, SO_DOMAIN,
 *             O_NONBLOCK); both close their ends.
 *   mux       the multiplexed alternative: one FLOW-sized open message on
 *             the one control socket, received; no descriptor.
 * Bytes, one direction, BENCH_MIB MiB in 16 KiB writes (the proxy's TLS
 * record size), reader on another thread:
 *   per-flow  through the flow's own Unix stream socket pair.
 *   mux       through one shared Unix stream socket with a 16-byte frame
 *             header per write (flow id, length), parsed by the reader.
 *   in-proc   a memcpy into the consumer's buffer: the path before the
 *             split, when the proxy read the stack's ring directly.
 *
 *   bench_broker FLOWS MIB
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "broker/broker.h"

#define WRITE_SZ 16384

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The broker's receive path for one FLOW (broker_flow_recv): 0 or -1. */
static int receive_flow(int ctl)
{
	struct broker_flow m;
	int fd;
	if (broker_flow_recv(ctl, &m, &fd) != 1)
		return -1;
	close(fd);
	return 0;
}

static double handover(int flows, int mux)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	struct proxy_dst d = { .addr = "93.184.216.34", .port = 443 };
	struct broker_flow m = { .type = BROKER_FLOW, .version = BROKER_VERSION, .dst = d };
	double t0 = now_s();
	for (int i = 0; i < flows; i++) {
		if (mux) {
			struct broker_flow r;
			if (send(sv[1], &m, sizeof(m), 0) != (ssize_t)sizeof(m) ||
			    recv(sv[0], &r, sizeof(r), 0) != (ssize_t)sizeof(r) ||
			    broker_flow_check(&r, sizeof(r), 1) < 0)
				return -1;
		} else {
			int fd = broker_flow_send(sv[1], &d);
			if (fd < 0 || receive_flow(sv[0]) < 0)
				return -1;
			close(fd);
		}
	}
	double us = (now_s() - t0) * 1e6 / flows;
	close(sv[0]);
	close(sv[1]);
	return us;
}

struct reader {
	int fd;
	size_t total;
	int mux;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;
	static char buf[1 << 17];
	size_t got = 0, frame_left = 0;
	unsigned char hdr[16];
	while (got < r->total) {
		if (r->mux && !frame_left) {	/* the frame header, then its bytes */
			size_t h = 0;
			while (h < sizeof(hdr)) {
				ssize_t n = read(r->fd, hdr + h, sizeof(hdr) - h);
				if (n <= 0)
					return NULL;
				h += (size_t)n;
			}
			memcpy(&frame_left, hdr + 8, sizeof(frame_left));
		}
		size_t want = r->mux ? (frame_left < sizeof(buf) ? frame_left : sizeof(buf)) : sizeof(buf);
		ssize_t n = read(r->fd, buf, want);
		if (n <= 0)
			return NULL;
		got += (size_t)n;
		if (r->mux)
			frame_left -= (size_t)n;
	}
	return NULL;
}

static double bytes_socket(size_t mib, int mux)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	struct reader r = { .fd = sv[0], .total = mib << 20, .mux = mux };
	static char data[WRITE_SZ + 16];
	memset(data, 'x', sizeof(data));
	pthread_t t;
	double t0 = now_s();
	pthread_create(&t, NULL, read_all, &r);
	for (size_t sent = 0; sent < r.total; sent += WRITE_SZ) {
		size_t len = WRITE_SZ, off = 0, n = WRITE_SZ;
		if (mux) {	/* flow id 7, length */
			unsigned long long id = 7;
			memcpy(data, &id, 8);
			memcpy(data + 8, &n, sizeof(n));
			len += 16;
		}
		while (off < len) {
			ssize_t w = write(sv[1], data + off, len - off);
			if (w <= 0)
				return -1;
			off += (size_t)w;
		}
	}
	pthread_join(t, NULL);
	double s = now_s() - t0;
	close(sv[0]);
	close(sv[1]);
	return (double)mib / s;
}

static double bytes_inproc(size_t mib)
{
	static char src[WRITE_SZ], dst[WRITE_SZ];
	memset(src, 'x', sizeof(src));
	double t0 = now_s();
	for (size_t sent = 0; sent < (mib << 20); sent += WRITE_SZ) {
		memcpy(dst, src, WRITE_SZ);
		__asm__ volatile("" : : "r"(dst) : "memory");
	}
	return (double)mib / (now_s() - t0);
}

int main(int argc, char **argv)
{
	int flows = argc > 1 ? atoi(argv[1]) : 20000;
	size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 1024;
	printf("hand-over, us per new flow (%d flows)    per-flow (kvmbox)  mux (one socket)\n", flows);
	for (int run = 1; run <= 3; run++)
		printf("  run %d %42.2f %17.2f\n", run, handover(flows, 0), handover(flows, 1));
	printf("bytes one way, MiB/s (%zu MiB, 16 KiB writes) per-flow (kvmbox)  mux  in-process memcpy\n",
	       mib);
	for (int run = 1; run <= 3; run++)
		printf("  run %d %42.0f %6.0f %10.0f\n", run, bytes_socket(mib, 0), bytes_socket(mib, 1),
		       bytes_inproc(mib));
	return 0;
}
