/* tests/unit/test_devices_console.c - virtio-console (multiport, named
 * ports) driven by the pretend guest, playing Linux's virtio_console driver:
 * the control handshake must announce the ports with their names, bytes
 * must flow both ways through callback and fd backends with back-pressure,
 * host EOF must reach the guest as "host closed", and a reset in the middle
 * of traffic must leave the device usable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <fcntl.h>
#include <cmocka.h>

#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#include "common/util.h"
#include "devices/virtio/console.h"
#include "guest/abi/console.h"
#include "tests/harness/virtio_driver.h"

#define NPORTS 3
#define CRX 2	/* control receiveq (host -> guest) */
#define CTX 3	/* control transmitq */
#define RXQ(id) ((id) == 0 ? 0u : 2u * (id) + 2)
#define TXQ(id) (RXQ(id) + 1)

struct fixture {
	struct vdrv d;
	struct vcon *c;
	/* callback backend of port 1 */
	uint8_t out[8192];
	size_t out_len;
	size_t accept_max;	/* bytes on_output takes per call (0: all) */
	int opens, closes, hangups;
	/* control messages the guest received */
	struct { uint32_t id; uint16_t event, value; char name[64]; } msg[64];
	unsigned nmsg;
};

static size_t on_output(void *opaque, const uint8_t *buf, size_t len)
{
	struct fixture *f = opaque;
	size_t n = f->accept_max ? (len < f->accept_max ? len : f->accept_max) : len;
	if (n > sizeof(f->out) - f->out_len)
		n = sizeof(f->out) - f->out_len;
	memcpy(f->out + f->out_len, buf, n);
	f->out_len += n;
	return n;
}

static void on_open(void *opaque, bool open)
{
	struct fixture *f = opaque;
	if (open)
		f->opens++;
	else
		f->closes++;
}

static void on_hangup(void *opaque)
{
	((struct fixture *)opaque)->hangups++;
}

/* The device on f's guest memory: ports 0 (no backend) and 1 (named
 * name1, the callback backend), and port 2 on be2 when given. */
static void make_device(struct fixture *f, const char *name1, const struct vcon_backend *be2)
{
	f->c = vcon_create(&f->d.env, VIRTIO_MMIO_BASE, NPORTS);
	assert_non_null(f->c);
	struct vcon_backend cb = { .in_fd = -1, .out_fd = -1, .on_output = on_output,
				   .on_open = on_open, .on_hangup = on_hangup, .opaque = f };
	struct vcon_backend none = { .in_fd = -1, .out_fd = -1 };
	assert_int_equal(vcon_add_port(f->c, 0, NULL, &none), 0);
	assert_int_equal(vcon_add_port(f->c, 1, name1, &cb), 0);
	if (be2)
		assert_int_equal(vcon_add_port(f->c, 2, KBX_PORT_CTL, be2), 0);
	assert_int_equal(vdrv_start(&f->d, &f->c->vdev), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	assert_int_equal(vdrv_init(&f->d, 4 << 20), 0);
	make_device(f, KBX_PORT_TTY, NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	vcon_destroy(f->c);	/* NULL once a test destroyed it */
	vdrv_fini(&f->d);
	free(f);
	return 0;
}

/* Collect control messages the device put in the control receiveq. */
static void read_ctrl(struct fixture *f)
{
	void *data;
	uint32_t len;
	while (vdrv_used_buf(&f->d, CRX, &data, &len) == 1) {
		assert_true(len >= sizeof(struct virtio_console_control));
		struct virtio_console_control m;
		memcpy(&m, data, sizeof(m));
		assert_true(f->nmsg < 64);
		f->msg[f->nmsg].id = m.id;
		f->msg[f->nmsg].event = m.event;
		f->msg[f->nmsg].value = m.value;
		size_t nl = len - sizeof(m);
		assert_true(nl < 64);
		memcpy(f->msg[f->nmsg].name, (uint8_t *)data + sizeof(m), nl);
		f->msg[f->nmsg].name[nl] = 0;
		f->nmsg++;
		vdrv_post_rx(&f->d, CRX, 1, 128);
	}
}

static int find_msg(struct fixture *f, uint32_t id, uint16_t event)
{
	for (unsigned i = 0; i < f->nmsg; i++)
		if (f->msg[i].id == id && f->msg[i].event == event)
			return (int)i;
	return -1;
}

static void send_ctrl(struct fixture *f, uint32_t id, uint16_t event, uint16_t value)
{
	struct virtio_console_control m = { .id = id, .event = event, .value = value };
	int head = vdrv_send(&f->d, CTX, &m, sizeof(m));
	assert_true(head >= 0);
	vdrv_run(&f->d);
	/* Linux spins until its control message is completed: it must be. */
	uint32_t uid, len;
	assert_int_equal(vdrv_used(&f->d, CTX, &uid, &len), 1);
	assert_int_equal(uid, (uint32_t)head);
	read_ctrl(f);
}

/* Probe as Linux does, up to every port ready; ports in open_mask opened. */
static void linux_probe(struct fixture *f, unsigned open_mask)
{
	uint64_t got;
	uint64_t want = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_RING_F_EVENT_IDX) |
			(1ULL << VIRTIO_RING_F_INDIRECT_DESC) |
			(1ULL << VIRTIO_CONSOLE_F_MULTIPORT) | (1ULL << VIRTIO_CONSOLE_F_SIZE);
	assert_int_equal(vdrv_negotiate(&f->d, want, &got), 0);
	assert_int_equal(got, want);
	for (unsigned q = 0; q < 2 * NPORTS + 2; q++)
		assert_int_equal(vdrv_queue_setup(&f->d, q, 16), 0);
	vdrv_post_rx(&f->d, CRX, 8, 128);
	vdrv_driver_ok(&f->d);
	f->nmsg = 0;
	send_ctrl(f, 0, VIRTIO_CONSOLE_DEVICE_READY, 1);
	for (uint32_t id = 0; id < 2; id++) {
		assert_true(find_msg(f, id, VIRTIO_CONSOLE_PORT_ADD) >= 0);
		vdrv_post_rx(&f->d, RXQ(id), 4, 64);
		vdrv_kick(&f->d, RXQ(id));
		send_ctrl(f, id, VIRTIO_CONSOLE_PORT_READY, 1);
		if (open_mask & (1u << id))
			send_ctrl(f, id, VIRTIO_CONSOLE_PORT_OPEN, 1);
	}
}

static void test_config_and_features(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(vdrv_read32(&f->d, VIRTIO_MMIO_DEVICE_ID), VIRTIO_ID_CONSOLE);
	struct virtio_console_config cfg;
	for (unsigned i = 0; i < sizeof(cfg); i++)
		vdrv_cfg_read(&f->d, i, (uint8_t *)&cfg + i, 1);
	assert_int_equal(cfg.cols, 80);
	assert_int_equal(cfg.rows, 24);
	assert_int_equal(cfg.max_nr_ports, NPORTS);
	linux_probe(f, 0);
	uint32_t gen = vdrv_read32(&f->d, VIRTIO_MMIO_CONFIG_GENERATION);
	vdrv_isr_ack(&f->d);
	vcon_set_size(f->c, 132, 50);
	assert_true(vdrv_read32(&f->d, VIRTIO_MMIO_CONFIG_GENERATION) != gen);
	assert_true(vdrv_isr_ack(&f->d) & VIRTIO_MMIO_INT_CONFIG);
	uint16_t cols, rows;
	vdrv_cfg_read(&f->d, 0, &cols, 2);
	vdrv_cfg_read(&f->d, 2, &rows, 2);
	assert_int_equal(cols, 132);
	assert_int_equal(rows, 50);
}

static void test_handshake_names(void **state)
{
	struct fixture *f = *state;
	linux_probe(f, 2);
	/* Only configured ports are announced. */
	assert_true(find_msg(f, 0, VIRTIO_CONSOLE_PORT_ADD) >= 0);
	assert_true(find_msg(f, 1, VIRTIO_CONSOLE_PORT_ADD) >= 0);
	assert_int_equal(find_msg(f, 2, VIRTIO_CONSOLE_PORT_ADD), -1);
	/* Port 0 is the console, port 1 carries its name, both host-open. */
	assert_true(find_msg(f, 0, VIRTIO_CONSOLE_CONSOLE_PORT) >= 0);
	int n = find_msg(f, 1, VIRTIO_CONSOLE_PORT_NAME);
	assert_true(n >= 0);
	assert_string_equal(f->msg[n].name, KBX_PORT_TTY);
	int o = find_msg(f, 1, VIRTIO_CONSOLE_PORT_OPEN);
	assert_true(o >= 0);
	assert_int_equal(f->msg[o].value, 1);
	assert_int_equal(f->opens, 1);
	send_ctrl(f, 1, VIRTIO_CONSOLE_PORT_OPEN, 0);
	assert_int_equal(f->closes, 1);
	assert_false(vdrv_status(&f->d) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_guest_to_host_backpressure(void **state)
{
	struct fixture *f = *state;
	linux_probe(f, 2);
	f->accept_max = 3;	/* the host consumer takes 3 bytes, then stalls */
	assert_true(vdrv_send(&f->d, TXQ(1), "hello world", 11) >= 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	/* Not complete: the chain is held while the host is slow. */
	assert_int_equal(vdrv_used(&f->d, TXQ(1), &id, &len), 0);
	assert_false(vcon_port_output_idle(f->c, 1));
	while (f->out_len < 11) {
		size_t before = f->out_len;
		vcon_port_output_resume(f->c, 1);
		assert_true(f->out_len > before);
	}
	vdrv_run(&f->d);
	assert_int_equal(vdrv_used(&f->d, TXQ(1), &id, &len), 1);
	assert_memory_equal(f->out, "hello world", 11);
	assert_true(vcon_port_output_idle(f->c, 1));
}

static void test_host_to_guest_waits_for_open(void **state)
{
	struct fixture *f = *state;
	linux_probe(f, 0);	/* port 1 ready but not opened */
	assert_int_equal(vcon_port_send(f->c, 1, "abc", 3), 3);
	vdrv_run(&f->d);
	void *data;
	uint32_t len;
	assert_int_equal(vdrv_used_buf(&f->d, RXQ(1), &data, &len), 0);
	assert_int_equal(vcon_port_pending(f->c, 1), 3);
	send_ctrl(f, 1, VIRTIO_CONSOLE_PORT_OPEN, 1);
	assert_int_equal(vdrv_used_buf(&f->d, RXQ(1), &data, &len), 1);
	assert_int_equal(len, 3);
	assert_memory_equal(data, "abc", 3);
	/* More than the guest's buffers hold: split over buffers, the rest
	 * waits for new buffers. */
	char big[300];
	memset(big, 'x', sizeof(big));
	assert_int_equal(vcon_port_send(f->c, 1, big, sizeof(big)), sizeof(big));
	size_t got = 0;
	while (vdrv_used_buf(&f->d, RXQ(1), &data, &len) == 1)
		got += len;
	assert_int_equal(got, 3 * 64);	/* the three buffers left */
	vdrv_post_rx(&f->d, RXQ(1), 4, 64);
	vdrv_kick(&f->d, RXQ(1));
	vdrv_run(&f->d);
	while (vdrv_used_buf(&f->d, RXQ(1), &data, &len) == 1)
		got += len;
	assert_int_equal(got, sizeof(big));
	assert_int_equal(vcon_port_pending(f->c, 1), 0);
	/* The queue is bounded: a flood is refused, not buffered forever. */
	static char flood[VCON_PENDING_MAX + 100];
	assert_int_equal(vcon_port_send(f->c, 1, flood, sizeof(flood)), VCON_PENDING_MAX);
}

/* fd backend on port 2: pipes both ways, EOF reaches the guest. */
static void test_fd_backend(void **state)
{
	struct fixture *f = *state;
	int in[2], out[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe2(out, O_NONBLOCK), 0);
	struct vcon_backend be = { .in_fd = in[0], .out_fd = out[1],
				   .on_hangup = on_hangup, .opaque = f };
	assert_int_equal(vcon_add_port(f->c, 2, KBX_PORT_CTL, &be), 0);
	linux_probe(f, 0);
	vdrv_post_rx(&f->d, RXQ(2), 4, 64);
	vdrv_kick(&f->d, RXQ(2));
	send_ctrl(f, 2, VIRTIO_CONSOLE_PORT_READY, 1);
	int n = find_msg(f, 2, VIRTIO_CONSOLE_PORT_NAME);
	assert_true(n >= 0);
	assert_string_equal(f->msg[n].name, KBX_PORT_CTL);
	send_ctrl(f, 2, VIRTIO_CONSOLE_PORT_OPEN, 1);
	/* host -> guest */
	assert_int_equal(write(in[1], "from host", 9), 9);
	void *data;
	uint32_t len = 0;
	for (int i = 0; i < 50 && vdrv_used_buf(&f->d, RXQ(2), &data, &len) == 0; i++)
		vdrv_run(&f->d);
	assert_int_equal(len, 9);
	assert_memory_equal(data, "from host", 9);
	/* guest -> host */
	assert_true(vdrv_send(&f->d, TXQ(2), "from guest", 10) >= 0);
	vdrv_run(&f->d);
	char buf[32];
	assert_int_equal(read(out[0], buf, sizeof(buf)), 10);
	assert_memory_equal(buf, "from guest", 10);
	uint32_t id;
	assert_int_equal(vdrv_used(&f->d, TXQ(2), &id, &len), 1);
	/* Host input ends: the backend hears it, no more reads, and the port
	 * stays connected so the guest's output still flows. */
	close(in[1]);
	for (int i = 0; i < 50 && f->hangups == 0; i++)
		vdrv_run(&f->d);
	assert_int_equal(f->hangups, 1);
	f->nmsg = 0;
	read_ctrl(f);
	assert_int_equal(find_msg(f, 2, VIRTIO_CONSOLE_PORT_OPEN), -1);
	assert_true(vdrv_send(&f->d, TXQ(2), "after eof", 9) >= 0);
	vdrv_run(&f->d);
	assert_int_equal(read(out[0], buf, sizeof(buf)), 9);
	/* The host closing the port explicitly does tell the guest. */
	vcon_port_host_close(f->c, 2);
	vdrv_run(&f->d);
	read_ctrl(f);
	n = find_msg(f, 2, VIRTIO_CONSOLE_PORT_OPEN);
	assert_true(n >= 0);
	assert_int_equal(f->msg[n].value, 0);
	/* Reset while idle, then probe again: still announced, no crash. */
	vdrv_reset(&f->d);
	linux_probe(f, 0);
	close(in[0]);
	close(out[0]);
	close(out[1]);
}

/* An out_fd left non-blocking (a parent's O_NONBLOCK on the terminal) and
 * full: the port waits for it to take more, without spinning the loop, and
 * then delivers. */
static void test_nonblocking_output_waits(void **state)
{
	struct fixture *f = *state;
	int out[2];
	assert_int_equal(pipe2(out, O_NONBLOCK), 0);
	static char fill[1 << 16];
	size_t filled = 0;
	for (ssize_t n; (n = write(out[1], fill, sizeof(fill))) > 0;)
		filled += (size_t)n;
	struct vcon_backend be = { .in_fd = -1, .out_fd = out[1] };
	assert_int_equal(vcon_add_port(f->c, 2, KBX_PORT_CTL, &be), 0);
	linux_probe(f, 0);
	send_ctrl(f, 2, VIRTIO_CONSOLE_PORT_READY, 1);
	send_ctrl(f, 2, VIRTIO_CONSOLE_PORT_OPEN, 1);
	assert_true(vdrv_send(&f->d, TXQ(2), "late", 4) >= 0);
	vdrv_run(&f->d);
	int completions = 0;
	for (int i = 0; i < 5; i++)
		completions += loop_run_once(&f->d.loop, 2000000);
	assert_int_equal(completions, 0);	/* waiting, not retrying */
	assert_true(vcon_port_output_writing(f->c, 2));
	while (filled) {	/* exactly what we put there: "late" may follow */
		ssize_t n = read(out[0], fill, MIN(filled, sizeof(fill)));
		assert_true(n > 0);
		filled -= (size_t)n;
	}
	vdrv_run(&f->d);
	char buf[8];
	assert_int_equal(read(out[0], buf, sizeof(buf)), 4);
	assert_memory_equal(buf, "late", 4);
	close(out[0]);
	close(out[1]);
}

static void test_reset_mid_traffic(void **state)
{
	struct fixture *f = *state;
	linux_probe(f, 2);
	f->accept_max = 1;
	assert_true(vdrv_send(&f->d, TXQ(1), "held", 4) >= 0);
	vcon_port_send(f->c, 1, "queued", 6);
	vdrv_run(&f->d);
	vdrv_reset(&f->d);
	assert_int_equal(vdrv_status(&f->d), 0);
	assert_int_equal(f->closes, 1);	/* the backend hears the port went away */
	/* The held chain belongs to the old rings: resuming must not push it. */
	f->accept_max = 0;
	vcon_port_output_resume(f->c, 1);
	linux_probe(f, 2);
	assert_true(vdrv_send(&f->d, TXQ(1), "again", 5) >= 0);
	vdrv_run(&f->d);
	uint32_t id, len;
	assert_int_equal(vdrv_used(&f->d, TXQ(1), &id, &len), 1);
	assert_int_equal(vdrv_used(&f->d, TXQ(1), &id, &len), 0);
	assert_memory_equal(f->out + f->out_len - 5, "again", 5);
	assert_false(vdrv_status(&f->d) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

static void test_hostile_control(void **state)
{
	struct fixture *f = *state;
	linux_probe(f, 0);
	/* Short control message, unknown port, unknown event: ignored. */
	assert_true(vdrv_send(&f->d, CTX, "abc", 3) >= 0);
	vdrv_run(&f->d);
	uint32_t uid, ulen;
	assert_int_equal(vdrv_used(&f->d, CTX, &uid, &ulen), 1);	/* completed anyway */
	send_ctrl(f, 999, VIRTIO_CONSOLE_PORT_OPEN, 1);
	send_ctrl(f, 2, VIRTIO_CONSOLE_PORT_READY, 1);	/* exists, not configured */
	send_ctrl(f, 1, 77, 1);
	assert_false(vdrv_status(&f->d) & VIRTIO_CONFIG_S_NEEDS_RESET);
	/* A malformed chain on a data queue breaks the device as usual. */
	struct vdrv_buf b = { f->d.ram_size, 16, false };
	vdrv_add(&f->d, TXQ(1), &b, 1, 0);
	vdrv_kick(&f->d, TXQ(1));
	vdrv_run(&f->d);
	assert_true(vdrv_status(&f->d) & VIRTIO_CONFIG_S_NEEDS_RESET);
	linux_probe(f, 2);
	assert_false(vdrv_status(&f->d) & VIRTIO_CONFIG_S_NEEDS_RESET);
}

/* ---- snapshots ---- */

/* A restore: the device rebuilt on the same guest memory (make_device). */
static void rebuild(struct fixture *f, const char *name1, const struct vcon_backend *be2)
{
	vcon_destroy(f->c);
	make_device(f, name1, be2);
}

static uint8_t snap_buf[1 << 20];

/* Saved with a host read in flight, guest output not yet written, host
 * bytes queued and a window size; restored with new backends and no new
 * handshake: the output reached the old host, the queued bytes and new
 * host input reach the guest, guest output reaches the new host. */
static void test_snapshot_round_trip(void **state)
{
	struct fixture *f = *state;
	int in[2], out[2];
	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	struct vcon_backend be = { .in_fd = in[0], .out_fd = out[1], .opaque = f };
	assert_int_equal(vcon_add_port(f->c, 2, KBX_PORT_CTL, &be), 0);
	linux_probe(f, 2);
	vdrv_post_rx(&f->d, RXQ(2), 4, 64);
	vdrv_kick(&f->d, RXQ(2));
	send_ctrl(f, 2, VIRTIO_CONSOLE_PORT_READY, 1);
	send_ctrl(f, 2, VIRTIO_CONSOLE_PORT_OPEN, 1);	/* a read of in[0] waits */
	assert_true(f->c->port[2].rx_reading);
	static char queued[300];
	for (size_t i = 0; i < sizeof(queued); i++)
		queued[i] = (char)('a' + i % 26);
	assert_int_equal(vcon_port_send(f->c, 1, queued, sizeof(queued)), sizeof(queued));
	assert_int_equal(vcon_port_pending(f->c, 1), sizeof(queued) - 4 * 64);
	vcon_set_size(f->c, 100, 40);
	assert_true(vdrv_send(&f->d, TXQ(2), "before", 6) >= 0);	/* not yet run */

	struct vdev_state st;
	size_t n;
	assert_int_equal(vdev_save(&f->c->vdev, &st, snap_buf, &n), 0);
	char buf[64];
	assert_int_equal(read(out[0], buf, sizeof(buf)), 6);	/* written out first */
	assert_memory_equal(buf, "before", 6);
	assert_int_equal(st.q[RXQ(2)].last_avail, 0);	/* the read's chain given back */
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);

	assert_int_equal(pipe(in), 0);
	assert_int_equal(pipe(out), 0);
	be = (struct vcon_backend){ .in_fd = in[0], .out_fd = out[1], .opaque = f };
	rebuild(f, KBX_PORT_TTY, &be);
	assert_int_equal(vdev_load(&f->c->vdev, &st, snap_buf, n), 0);
	vdev_resume(&f->c->vdev);
	vdrv_run(&f->d);
	f->nmsg = 0;
	read_ctrl(f);
	assert_int_equal(find_msg(f, 1, VIRTIO_CONSOLE_PORT_ADD), -1);	/* no new handshake */
	uint16_t cols, rows;
	vdrv_cfg_read(&f->d, 0, &cols, 2);
	vdrv_cfg_read(&f->d, 2, &rows, 2);
	assert_int_equal(cols, 100);
	assert_int_equal(rows, 40);
	/* port 1: the 256 bytes delivered before, then the queued rest */
	void *data;
	uint32_t len;
	size_t got = 0;
	while (vdrv_used_buf(&f->d, RXQ(1), &data, &len) == 1) {
		assert_memory_equal(data, queued + got, len);
		got += len;
	}
	assert_int_equal(got, 4 * 64);
	vdrv_post_rx(&f->d, RXQ(1), 1, 64);
	vdrv_kick(&f->d, RXQ(1));
	vdrv_run(&f->d);
	assert_int_equal(vdrv_used_buf(&f->d, RXQ(1), &data, &len), 1);
	assert_int_equal(len, sizeof(queued) - 4 * 64);
	assert_memory_equal(data, queued + 4 * 64, len);
	/* port 2: the new host's input lands in the buffer given back */
	assert_int_equal(write(in[1], "after", 5), 5);
	len = 0;
	for (int i = 0; i < 50 && vdrv_used_buf(&f->d, RXQ(2), &data, &len) == 0; i++)
		vdrv_run(&f->d);
	assert_int_equal(len, 5);
	assert_memory_equal(data, "after", 5);
	assert_true(vdrv_send(&f->d, TXQ(2), "out", 3) >= 0);
	vdrv_run(&f->d);
	assert_int_equal(read(out[0], buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "out", 3);
	/* port 1 (callback): open without asking again */
	f->out_len = 0;
	assert_true(vdrv_send(&f->d, TXQ(1), "cb", 2) >= 0);
	vdrv_run(&f->d);
	assert_int_equal(f->out_len, 2);
	vcon_destroy(f->c);	/* before the pipes close */
	f->c = NULL;
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
}

/* Every cut, every field out of range, another port name: refused, and the
 * device takes the real state afterwards. */
static void test_snapshot_refusals(void **state)
{
	struct fixture *f = *state;
	linux_probe(f, 2);
	f->accept_max = 0;
	vcon_port_send(f->c, 1, "q", 1);
	struct vdev_state st;
	size_t n;
	assert_int_equal(vdev_save(&f->c->vdev, &st, snap_buf, &n), 0);
	/* header 8, no control message, port 0 {flags, 0, u32 0}, port 1
	 * {flags, 10, "kvmbox.tty", u32 0}, port 2 unused {0, 0, u32 0} */
	assert_int_equal(n, 8 + 6 + 2 + strlen(KBX_PORT_TTY) + 4 + 6);
	for (size_t cut = 0; cut < n; cut++) {
		rebuild(f, KBX_PORT_TTY, NULL);
		if (vdev_load(&f->c->vdev, &st, snap_buf, cut) != -EINVAL)
			fail_msg("loaded a state cut at %zu of %zu bytes", cut, n);
	}
	static uint8_t bad[256];
	const size_t p0 = 8, p1 = p0 + 6, p2 = p1 + 2 + strlen(KBX_PORT_TTY) + 4;
	const struct { size_t off; uint8_t val; const char *what; } spoil[] = {
		{ 0, NPORTS + 1, "another port count" },
		{ 1, 2, "device_ready 2" },
		{ 2, VCON_CTRL_PENDING + 1, "too many control messages" },
		{ 3, 1, "the pad byte" },
		{ p0, 0x10, "an unknown port flag" },
		{ p1, 1 | 4, "open and not ready" },
		{ p2, 1, "a port this device does not have in use" },
		{ p2, 2, "flags on a port not in use" },
		{ p1 + 2, 'K', "another name" },
		{ p1 + 2 + strlen(KBX_PORT_TTY) + 2, 0x01, "more queued bytes than the limit" },
	};
	for (size_t i = 0; i < ARRAY_SIZE(spoil); i++) {
		memcpy(bad, snap_buf, n);
		bad[spoil[i].off] = spoil[i].val;
		rebuild(f, KBX_PORT_TTY, NULL);
		if (vdev_load(&f->c->vdev, &st, bad, n) != -EINVAL)
			fail_msg("loaded %s", spoil[i].what);
		assert_false(f->c->port[1].guest_open);	/* nothing half-loaded */
	}
	memcpy(bad, snap_buf, n);
	bad[n] = 0;
	rebuild(f, KBX_PORT_TTY, NULL);
	assert_int_equal(vdev_load(&f->c->vdev, &st, bad, n + 1), -EINVAL);	/* a stray byte */
	bad[p2 + 2] = 1;	/* ... that is a queued byte of the port not in use */
	rebuild(f, KBX_PORT_TTY, NULL);
	assert_int_equal(vdev_load(&f->c->vdev, &st, bad, n + 1), -EINVAL);
	rebuild(f, "kvmbox.other", NULL);
	assert_int_equal(vdev_load(&f->c->vdev, &st, snap_buf, n), -EINVAL);
	rebuild(f, KBX_PORT_TTY, NULL);
	assert_int_equal(vdev_load(&f->c->vdev, &st, snap_buf, n), 0);
	assert_true(f->c->port[1].guest_open);
}

/* Output a callback backend will not take: the save refuses. */
static void test_snapshot_busy(void **state)
{
	struct fixture *f = *state;
	linux_probe(f, 2);
	f->out_len = sizeof(f->out);	/* on_output takes nothing */
	assert_true(vdrv_send(&f->d, TXQ(1), "stuck", 5) >= 0);
	vdrv_run(&f->d);
	struct vdev_state st;
	size_t n;
	assert_int_equal(vdev_save(&f->c->vdev, &st, snap_buf, &n), -EBUSY);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
		T(test_config_and_features),
		T(test_handshake_names),
		T(test_guest_to_host_backpressure),
		T(test_host_to_guest_waits_for_open),
		T(test_fd_backend),
		T(test_nonblocking_output_waits),
		T(test_reset_mid_traffic),
		T(test_hostile_control),
		T(test_snapshot_round_trip),
		T(test_snapshot_refusals),
		T(test_snapshot_busy),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
