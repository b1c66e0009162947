/* devices/virtio/console.c - virtio-console, multiport, named ports, each
 * port's host side a byte stream with back-pressure (see console.h).
 *
 * Queue layout (virtio spec 5.3.2): port 0 receive/transmit are queues 0/1,
 * the control receive/transmit queues are 2/3, port n >= 1 uses 2n+2/2n+3.
 * "Receive" is host -> guest.  The control handshake: the guest sends
 * DEVICE_READY, we answer PORT_ADD per port; it sends PORT_READY per
 * port, we answer CONSOLE_PORT (port 0), PORT_NAME and PORT_OPEN (host
 * side connected); it sends PORT_OPEN when a program opens the port.  Linux
 * drops data arriving on a port nobody opened, so host bytes wait until then.
 */
#include "devices/virtio/console.h"

#include <endian.h>
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include <linux/virtio_console.h>
#include <linux/virtio_ids.h>

#include "common/log.h"
#include "common/util.h"

#define CTRL_RX 2u	/* control receiveq: host -> guest */
#define CTRL_TX 3u	/* control transmitq: guest -> host */

static unsigned rxq(unsigned id) { return id == 0 ? 0 : 2 * id + 2; }
static unsigned txq(unsigned id) { return rxq(id) + 1; }

static struct vcon *vcon_of(struct vdev *dev) { return container_of(dev, struct vcon, vdev); }
static struct virtqueue *vq_at(struct vcon *c, unsigned q) { return &c->vdev.vq[q]; }

/* --- control queue: host -> guest ------------------------------------- */

static void ctrl_flush(struct vcon *c)
{
	struct virtqueue *vq = vq_at(c, CTRL_RX);
	bool pushed = false;
	while (c->ctrl_count && vq_pop(vq, &c->ctrl_in) > 0) {
		const typeof(c->ctrl[0]) *m = &c->ctrl[c->ctrl_head];
		size_t n = vq_chain_write(&c->ctrl_in, 0, m->buf, m->len);
		vq_push(vq, &c->ctrl_in, (uint32_t)n);
		pushed = true;
		c->ctrl_head = (c->ctrl_head + 1) % VCON_CTRL_PENDING;
		c->ctrl_count--;
	}
	if (pushed)
		vdev_signal_used(&c->vdev, vq);
}

static void ctrl_send(struct vcon *c, unsigned id, uint16_t event, uint16_t value,
		      const char *extra)
{
	if (c->ctrl_count == VCON_CTRL_PENDING) {
		log_once(LOG_WARN, "virtio-console: guest not taking control messages; dropping");
		return;
	}
	typeof(c->ctrl[0]) *m = &c->ctrl[(c->ctrl_head + c->ctrl_count) % VCON_CTRL_PENDING];
	struct virtio_console_control h = {
		.id = htole32(id), .event = htole16(event), .value = htole16(value) };
	memcpy(m->buf, &h, sizeof(h));
	size_t extra_len = extra ? strlen(extra) : 0;
	if (extra_len)
		memcpy(m->buf + sizeof(h), extra, extra_len);
	m->len = (uint16_t)(sizeof(h) + extra_len);
	c->ctrl_count++;
	ctrl_flush(c);
}

/* --- port: host -> guest ---------------------------------------------- */

static void port_rx_work(struct vcon_port *p);

/* Make sure p->rx holds a receive chain with room: true if it does. */
static bool rx_chain(struct vcon_port *p)
{
	struct virtqueue *vq = vq_at(p->con, rxq(p->id));
	while (!p->rx_held) {
		if (vq_pop(vq, &p->rx) <= 0)
			return false;
		if (p->rx.write_len > 0) {
			p->rx_held = true;
			break;
		}
		vq_push(vq, &p->rx, 0);	/* no room in it: hand it back */
	}
	return true;
}

static void rx_complete(struct vcon_port *p, size_t n)
{
	struct virtqueue *vq = vq_at(p->con, rxq(p->id));
	p->rx_held = false;
	if (vq_push(vq, &p->rx, (uint32_t)n) == 0) {
		p->bytes_in += n;
		vdev_signal_used(&p->con->vdev, vq);
	}
}

/* A backend fd that is non-blocking (a parent left O_NONBLOCK on the
 * user's terminal) answered EAGAIN: wait for it with a one-shot poll on
 * the same op instead of retrying at once, which would spin the loop
 * thread until the reader or writer caught up.  False when no SQE. */
static bool wait_ready(struct vcon_port *p, struct loop_op *op, int fd, unsigned events)
{
	struct io_uring_sqe *sqe = loop_sqe(p->con->vdev.env.loop, op);
	if (!sqe)
		return false;
	io_uring_prep_poll_add(sqe, fd, events);
	return true;
}

static void rx_read_done(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct vcon_port *p = op->opaque;
	vdev_queue_lock(&p->con->vdev);
	p->rx_reading = false;
	bool polled = p->rx_polling;
	p->rx_polling = false;
	if (res == -ECANCELED) {	/* vcon_destroy */
		vdev_queue_unlock(&p->con->vdev);
		return;
	}
	if (polled) {
		/* in_fd readable (or failed: the read will say) */
	} else if (res == -EAGAIN && wait_ready(p, &p->rx_op, p->be.in_fd, POLLIN)) {
		p->rx_reading = p->rx_polling = true;
		vdev_queue_unlock(&p->con->vdev);
		return;
	} else if (res > 0) {
		rx_complete(p, (size_t)res);
	} else if (res != -EINTR && res != -EAGAIN) {
		/* EOF or an error: no more host input on this port.  The
		 * port stays open: output keeps flowing (see console.h). */
		if (res < 0)
			log_warn("virtio-console: port %u input: %s", p->id, strerror(-res));
		p->in_eof = true;
		if (p->be.on_hangup)
			p->be.on_hangup(p->be.opaque);
	}
	port_rx_work(p);
	vdev_queue_unlock(&p->con->vdev);
}

static void port_rx_work(struct vcon_port *p)
{
	if (!p->guest_open || p->rx_reading || p->con->saving || !vdev_running(&p->con->vdev))
		return;
	while (p->pending_len && rx_chain(p)) {
		size_t n = vq_chain_write(&p->rx, 0, p->pending, p->pending_len);
		memmove(p->pending, p->pending + n, p->pending_len - n);
		p->pending_len -= n;
		rx_complete(p, n);
	}
	if (p->pending_len || p->be.in_fd < 0 || p->in_eof || p->host_closed || !rx_chain(p))
		return;
	struct io_uring_sqe *sqe = loop_sqe(p->con->vdev.env.loop, &p->rx_op);
	if (!sqe)
		return;		/* retried on the next kick */
	io_uring_prep_readv(sqe, p->be.in_fd, p->rx.iov + p->rx.nread, p->rx.nwrite, -1);
	p->rx_reading = true;
}

/* --- port: guest -> host ---------------------------------------------- */

static void port_tx_work(struct vcon_port *p);

/* Drop the first `n` bytes of the readable iovecs from tx_first on. */
static void tx_advance(struct vcon_port *p, size_t n)
{
	while (n && p->tx_first < p->tx.nread) {
		struct iovec *v = &p->tx.iov[p->tx_first];
		size_t k = MIN(n, v->iov_len);
		v->iov_base = (uint8_t *)v->iov_base + k;
		v->iov_len -= k;
		n -= k;
		if (v->iov_len == 0)
			p->tx_first++;
	}
}

static void tx_complete(struct vcon_port *p)
{
	struct virtqueue *vq = vq_at(p->con, txq(p->id));
	p->tx_held = false;
	if (vq_push(vq, &p->tx, 0) == 0)
		vdev_signal_used(&p->con->vdev, vq);
}

/* n more bytes of the guest's reached the backend. */
static void count_output(struct vcon_port *p, size_t n)
{
	if (!p->bytes_out && n && p->be.on_first_output)
		p->be.on_first_output(p->be.opaque);
	p->bytes_out += n;
}

static void tx_write_done(struct loop *loop, struct loop_op *op, int res, uint32_t flags)
{
	(void)loop;
	(void)flags;
	struct vcon_port *p = op->opaque;
	vdev_queue_lock(&p->con->vdev);
	p->tx_writing = false;
	bool polled = p->tx_polling;
	p->tx_polling = false;
	if (res == -ECANCELED) {	/* vcon_destroy */
		vdev_queue_unlock(&p->con->vdev);
		return;
	}
	if (polled) {
		/* out_fd writable (or failed: the write will say) */
	} else if (res == -EAGAIN && wait_ready(p, &p->tx_op, p->be.out_fd, POLLOUT)) {
		p->tx_writing = p->tx_polling = true;
		vdev_queue_unlock(&p->con->vdev);
		return;
	} else if (res >= 0) {
		count_output(p, (size_t)res);
		tx_advance(p, (size_t)res);
	} else if (res != -EINTR && res != -EAGAIN) {
		log_warn("virtio-console: port %u output: %s; discarding", p->id, strerror(-res));
		p->be.out_fd = -1;	/* from now on the guest's bytes are dropped */
		if (p->be.on_hangup)
			p->be.on_hangup(p->be.opaque);
	}
	port_tx_work(p);
	vdev_queue_unlock(&p->con->vdev);
}

/* Hand the held chain's bytes to the backend: true when all were taken. */
static bool tx_deliver(struct vcon_port *p)
{
	if (p->be.out_fd >= 0) {
		struct io_uring_sqe *sqe = loop_sqe(p->con->vdev.env.loop, &p->tx_op);
		if (!sqe)
			return false;
		io_uring_prep_writev(sqe, p->be.out_fd, p->tx.iov + p->tx_first,
				     p->tx.nread - p->tx_first, -1);
		p->tx_writing = true;
		return false;
	}
	while (p->be.on_output && p->tx_first < p->tx.nread) {
		struct iovec *v = &p->tx.iov[p->tx_first];
		size_t k = p->be.on_output(p->be.opaque, v->iov_base, v->iov_len);
		k = MIN(k, v->iov_len);
		count_output(p, k);
		tx_advance(p, k);
		if (k < v->iov_len || k == 0)
			return false;	/* back-pressure: wait for resume */
	}
	return true;		/* all delivered, or no backend: discarded */
}

static void port_tx_work(struct vcon_port *p)
{
	struct virtqueue *vq = vq_at(p->con, txq(p->id));
	while (!p->tx_writing) {
		if (!p->tx_held) {
			if (vq_pop(vq, &p->tx) <= 0)
				return;
			p->tx_held = true;
			p->tx_first = 0;
		}
		if (p->tx_first < p->tx.nread && !tx_deliver(p))
			return;
		tx_complete(p);
	}
}

/* --- control queue: guest -> host ------------------------------------- */

static struct vcon_port *port_by_id(struct vcon *c, uint32_t id)
{
	if (id >= c->nports || !c->port[id].used) {
		log_once(LOG_WARN, "virtio-console: control message for unknown port %u", id);
		return NULL;
	}
	return &c->port[id];
}

static void port_ready(struct vcon *c, struct vcon_port *p)
{
	p->guest_ready = true;
	if (p->console) {
		ctrl_send(c, p->id, VIRTIO_CONSOLE_CONSOLE_PORT, 1, NULL);
		p->guest_open = true;	/* Linux keeps console ports open */
	}
	if (p->name[0])
		ctrl_send(c, p->id, VIRTIO_CONSOLE_PORT_NAME, 1, p->name);
	if (!p->host_closed)
		ctrl_send(c, p->id, VIRTIO_CONSOLE_PORT_OPEN, 1, NULL);
	port_rx_work(p);
}

static void ctrl_handle(struct vcon *c, const struct virtio_console_control *m)
{
	uint32_t id = le32toh(m->id);
	uint16_t event = le16toh(m->event), value = le16toh(m->value);
	struct vcon_port *p;
	switch (event) {
	case VIRTIO_CONSOLE_DEVICE_READY:
		if (value != 1 || c->device_ready)
			return;
		c->device_ready = true;
		for (unsigned i = 0; i < c->nports; i++)
			if (c->port[i].used)
				ctrl_send(c, i, VIRTIO_CONSOLE_PORT_ADD, 0, NULL);
		return;
	case VIRTIO_CONSOLE_PORT_READY:
		if ((p = port_by_id(c, id)) && value == 1 && !p->guest_ready)
			port_ready(c, p);
		return;
	case VIRTIO_CONSOLE_PORT_OPEN:
		if (!(p = port_by_id(c, id)) || p->guest_open == (value != 0))
			return;
		p->guest_open = value != 0;
		if (p->be.on_open)
			p->be.on_open(p->be.opaque, p->guest_open);
		port_rx_work(p);
		return;
	default:
		log_once(LOG_INFO, "virtio-console: ignoring control event %u", event);
	}
}

static void ctrl_rx_work(struct vcon *c)
{
	struct virtqueue *vq = vq_at(c, CTRL_TX);
	bool pushed = false;
	while (vq_pop(vq, &c->ctrl_out) > 0) {
		struct virtio_console_control m;
		if (vq_chain_read(&c->ctrl_out, 0, &m, sizeof(m)) == sizeof(m))
			ctrl_handle(c, &m);
		else
			log_once(LOG_WARN, "virtio-console: short control message ignored");
		vq_push(vq, &c->ctrl_out, 0);
		pushed = true;
	}
	if (pushed)
		vdev_signal_used(&c->vdev, vq);
}

/* --- vdev_ops --------------------------------------------------------- */

static void vcon_notify(struct vdev *dev, unsigned q)
{
	struct vcon *c = vcon_of(dev);
	if (q == CTRL_RX) {
		ctrl_flush(c);
		return;
	}
	if (q == CTRL_TX) {
		ctrl_rx_work(c);
		return;
	}
	unsigned id = q < 2 ? 0 : (q - 2) / 2;
	struct vcon_port *p = &c->port[id];
	if (id >= c->nports)
		return;
	if (q == rxq(id))
		port_rx_work(p);
	else
		port_tx_work(p);
}

static void vcon_cfg_read(struct vdev *dev, uint32_t off, void *data, unsigned size)
{
	struct vcon *c = vcon_of(dev);
	struct virtio_console_config cfg = {
		.cols = htole16(c->cols), .rows = htole16(c->rows),
		.max_nr_ports = htole32(c->nports),
	};
	if (off + size <= sizeof(cfg))
		memcpy(data, (uint8_t *)&cfg + off, size);
}

static void vcon_reset(struct vdev *dev)
{
	struct vcon *c = vcon_of(dev);
	c->device_ready = false;
	c->ctrl_head = c->ctrl_count = 0;
	for (unsigned i = 0; i < c->nports; i++) {
		struct vcon_port *p = &c->port[i];
		bool was_open = p->guest_open;
		/* Output the guest queued and we had not delivered yet is gone
		 * with the rings: say so (kvmbox-init lost `kvmbox shell`
		 * output this way when it rebooted too early; see
		 * guest/init/console.c wait_host_hangup). */
		if (p->used && p->tx_held)
			log_once(LOG_WARN, "virtio-console: guest reset the device before port %u's "
				 "output was delivered; the rest of it is dropped", i);
		/* Reads/writes in flight finish on their own; their chains
		 * belong to the old rings and vq_push refuses them. */
		p->guest_ready = p->guest_open = false;
		p->rx_held = p->tx_held = false;
		if (was_open && p->be.on_open && p->used)
			p->be.on_open(p->be.opaque, false);
	}
}

/* --- snapshots --------------------------------------------------------
 *
 * Saved (all little-endian): a header { u8 nports, u8 device_ready,
 * u8 nctrl, u8 0, u16 cols, u16 rows }, the nctrl control messages still
 * waiting for guest buffers { u16 len, bytes }, and per port { u8 flags
 * (PS_*), u8 name_len, name, u32 pending_len, the host bytes queued for
 * the guest }.  Before that the device settles: reads from the host in
 * flight are cancelled (a read that completed meanwhile delivered its
 * bytes), the guest's queued output is written out in full, and a receive
 * chain held for the next read goes back to its ring.  Output a callback
 * backend will not take makes the save refuse (-EBUSY).
 */
enum { PS_USED = 1, PS_GUEST_READY = 2, PS_GUEST_OPEN = 4, PS_HOST_CLOSED = 8 };
#define VCON_SETTLE_MS 2000u	/* how long the host may take to accept the output */

static bool port_busy(const struct vcon_port *p)
{
	return p->rx_reading || p->tx_writing;
}

/* Cancel host reads, drain guest output; false if it did not settle. */
static bool vcon_settle(struct vcon *c)
{
	struct loop *loop = c->vdev.env.loop;
	c->saving = true;	/* port_rx_work starts no read from now on */
	for (unsigned i = 0; i < c->nports; i++)
		if (c->port[i].rx_reading)
			loop_cancel(loop, &c->port[i].rx_op);
	for (unsigned ms = 0; ms < VCON_SETTLE_MS; ms++) {
		bool busy = false;
		for (unsigned i = 0; i < c->nports; i++) {
			struct vcon_port *p = &c->port[i];
			if (p->used && !p->tx_writing)
				port_tx_work(p);
			busy |= port_busy(p) || (p->used && p->tx_held);
		}
		if (!busy)
			return true;
		loop_run_once(loop, 1000000);
	}
	return false;
}

struct vcon_writer {
	uint8_t *b;
	size_t n;
};

static void put(struct vcon_writer *w, const void *src, size_t len)
{
	if (len)	/* an unused port has no pending buffer */
		memcpy(w->b + w->n, src, len);
	w->n += len;
}

static void put16(struct vcon_writer *w, uint16_t v) { v = htole16(v); put(w, &v, 2); }
static void put32(struct vcon_writer *w, uint32_t v) { v = htole32(v); put(w, &v, 4); }

static int vcon_save(struct vdev *dev, void *buf, size_t *len)
{
	struct vcon *c = vcon_of(dev);
	if (!vcon_settle(c))
		return -EBUSY;
	for (unsigned i = 0; i < c->nports; i++) {
		struct vcon_port *p = &c->port[i];
		if (p->rx_held) {
			int r = vq_unpop(vq_at(c, rxq(i)), &p->rx);
			if (r < 0)
				return r;
			p->rx_held = false;
		}
	}
	struct vcon_writer w = { buf, 0 };
	uint8_t hdr[4] = { (uint8_t)c->nports, c->device_ready, (uint8_t)c->ctrl_count, 0 };
	put(&w, hdr, sizeof(hdr));
	put16(&w, c->cols);
	put16(&w, c->rows);
	for (unsigned k = 0; k < c->ctrl_count; k++) {
		const typeof(c->ctrl[0]) *m = &c->ctrl[(c->ctrl_head + k) % VCON_CTRL_PENDING];
		put16(&w, m->len);
		put(&w, m->buf, m->len);
	}
	for (unsigned i = 0; i < c->nports; i++) {
		const struct vcon_port *p = &c->port[i];
		uint8_t f[2] = {
			(uint8_t)((p->used ? PS_USED : 0) | (p->guest_ready ? PS_GUEST_READY : 0) |
				  (p->guest_open ? PS_GUEST_OPEN : 0) |
				  (p->host_closed ? PS_HOST_CLOSED : 0)),
			(uint8_t)strlen(p->name) };
		put(&w, f, sizeof(f));
		put(&w, p->name, f[1]);
		put32(&w, (uint32_t)p->pending_len);
		put(&w, p->pending, p->pending_len);
	}
	*len = w.n;
	return 0;
}

struct vcon_reader {
	const uint8_t *b;
	size_t len, off;
	bool bad;
};

static const uint8_t *take(struct vcon_reader *r, size_t n)
{
	if (r->bad || n > r->len - r->off) {
		r->bad = true;
		return NULL;
	}
	r->off += n;
	return r->b + r->off - n;
}

static uint16_t take16(struct vcon_reader *r)
{
	const uint8_t *p = take(r, 2);
	return p ? (uint16_t)(p[0] | p[1] << 8) : 0;
}

static uint32_t take32(struct vcon_reader *r)
{
	const uint8_t *p = take(r, 4);
	return p ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		   (uint32_t)p[3] << 24 : 0;
}

/* One port's saved record into p, which must be configured as it was. */
static bool load_port(struct vcon_reader *r, struct vcon_port *p, bool device_ready)
{
	const uint8_t *f = take(r, 2);
	if (!f)
		return false;
	const uint8_t *name = take(r, f[1]);
	uint32_t pending = take32(r);
	const uint8_t *bytes = take(r, pending);
	if (r->bad || (f[0] & ~(PS_USED | PS_GUEST_READY | PS_GUEST_OPEN | PS_HOST_CLOSED)))
		return false;
	bool used = f[0] & PS_USED, ready = f[0] & PS_GUEST_READY, open = f[0] & PS_GUEST_OPEN;
	if (used != p->used || f[1] != strlen(p->name) || memcmp(name, p->name, f[1]) ||
	    (ready && !device_ready) || (open && !ready) || (!used && (f[0] || pending)) ||
	    pending > VCON_PENDING_MAX)
		return false;
	p->guest_ready = ready;
	p->guest_open = open;
	p->host_closed = f[0] & PS_HOST_CLOSED;
	if (pending)
		memcpy(p->pending, bytes, pending);
	p->pending_len = pending;
	return true;
}

/* Into a device built with the same ports (names and all) and not yet
 * driven; the owner's backends hear nothing of it (no on_open): what the
 * guest has open is the saved state's. */
static int vcon_load(struct vdev *dev, const void *buf, size_t len)
{
	struct vcon *c = vcon_of(dev);
	struct vcon_reader r = { buf, len, 0, false };
	const uint8_t *hdr = take(&r, 4);
	uint16_t cols = take16(&r), rows = take16(&r);
	if (r.bad || hdr[0] != c->nports || hdr[1] > 1 || hdr[2] > VCON_CTRL_PENDING || hdr[3])
		return -EINVAL;
	unsigned nctrl = hdr[2];
	for (unsigned k = 0; k < nctrl; k++) {
		uint16_t n = take16(&r);
		const uint8_t *m = take(&r, n);
		if (r.bad || n < sizeof(struct virtio_console_control) || n > sizeof(c->ctrl[k].buf))
			return -EINVAL;
		memcpy(c->ctrl[k].buf, m, n);
		c->ctrl[k].len = n;
	}
	bool ok = true;
	for (unsigned i = 0; i < c->nports && ok; i++)
		ok = load_port(&r, &c->port[i], hdr[1]);
	if (!ok || r.off != len) {
		for (unsigned i = 0; i < c->nports; i++) {	/* as vcon_create left them */
			struct vcon_port *p = &c->port[i];
			p->guest_ready = p->guest_open = p->host_closed = false;
			p->pending_len = 0;
		}
		return -EINVAL;
	}
	c->device_ready = hdr[1];
	c->ctrl_head = 0;
	c->ctrl_count = nctrl;
	c->cols = cols;
	c->rows = rows;
	return 0;
}

struct vcon *vcon_create(const struct dev_env *env, uint64_t base, unsigned nports)
{
	if (nports < 1 || nports > VCON_MAX_PORTS)
		return NULL;
	struct vcon *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->nports = nports;
	c->cols = 80;
	c->rows = 24;
	c->ops = (struct vdev_ops){
		.name = "console", .device_id = VIRTIO_ID_CONSOLE,
		.features = (1ULL << VIRTIO_CONSOLE_F_MULTIPORT) | (1ULL << VIRTIO_CONSOLE_F_SIZE),
		.nqueues = 2 * nports + 2, .queue_max = VCON_QUEUE_SIZE,
		.config_len = sizeof(struct virtio_console_config),
		.cfg_read = vcon_cfg_read, .notify = vcon_notify, .reset = vcon_reset,
		.save = vcon_save, .load = vcon_load,
	};
	for (unsigned i = 0; i < nports; i++) {
		struct vcon_port *p = &c->port[i];
		p->con = c;
		p->id = i;
		p->rx_op = (struct loop_op){ .cb = rx_read_done, .opaque = p };
		p->tx_op = (struct loop_op){ .cb = tx_write_done, .opaque = p };
		p->be.in_fd = p->be.out_fd = -1;
	}
	if (vdev_init(&c->vdev, &c->ops, env, base) < 0) {
		free(c);
		return NULL;
	}
	return c;
}

static bool io_in_flight(struct vcon *c)
{
	for (unsigned i = 0; i < c->nports; i++)
		if (c->port[i].rx_reading || c->port[i].tx_writing)
			return true;
	return false;
}

void vcon_destroy(struct vcon *c)
{
	if (!c)
		return;
	struct loop *loop = c->vdev.env.loop;
	for (unsigned i = 0; i < c->nports; i++) {
		if (c->port[i].rx_reading)
			loop_cancel(loop, &c->port[i].rx_op);
		if (c->port[i].tx_writing)
			loop_cancel(loop, &c->port[i].tx_op);
	}
	/* Reads and writes in flight point into c: let them complete. */
	c->vdev.status |= VIRTIO_CONFIG_S_NEEDS_RESET;	/* start nothing new */
	for (int i = 0; i < 1000 && io_in_flight(c); i++)
		loop_run_once(loop, 1000000);
	vdev_fini(&c->vdev);
	for (unsigned i = 0; i < c->nports; i++)
		free(c->port[i].pending);
	free(c);
}

int vcon_add_port(struct vcon *c, unsigned id, const char *name, const struct vcon_backend *be)
{
	if (id >= c->nports || c->port[id].used)
		return -EINVAL;
	if ((id == 0) != (name == NULL) || (name && (!name[0] || strlen(name) > VCON_NAME_MAX)))
		return -EINVAL;
	struct vcon_port *p = &c->port[id];
	p->pending = malloc(VCON_PENDING_MAX);
	if (!p->pending)
		return -ENOMEM;
	p->used = true;
	p->console = id == 0;
	if (name)
		strcpy(p->name, name);
	p->be = *be;
	return 0;
}

size_t vcon_port_send(struct vcon *c, unsigned id, const void *buf, size_t len)
{
	if (id >= c->nports || !c->port[id].used)
		return 0;
	struct vcon_port *p = &c->port[id];
	vdev_queue_lock(&c->vdev);
	size_t n = MIN(len, VCON_PENDING_MAX - p->pending_len);
	memcpy(p->pending + p->pending_len, buf, n);
	p->pending_len += n;
	port_rx_work(p);
	vdev_queue_unlock(&c->vdev);
	return n;
}

size_t vcon_port_pending(struct vcon *c, unsigned id)
{
	return id < c->nports ? c->port[id].pending_len : 0;
}

void vcon_port_output_resume(struct vcon *c, unsigned id)
{
	if (id >= c->nports || !c->port[id].used)
		return;
	vdev_queue_lock(&c->vdev);
	port_tx_work(&c->port[id]);
	vdev_queue_unlock(&c->vdev);
}

bool vcon_port_output_idle(struct vcon *c, unsigned id)
{
	if (id >= c->nports)
		return true;
	struct vcon_port *p = &c->port[id];
	vdev_queue_lock(&c->vdev);
	bool idle = !p->tx_held && !p->tx_writing && !vq_has_avail(vq_at(c, txq(id)));
	vdev_queue_unlock(&c->vdev);
	return idle;
}

bool vcon_port_output_writing(struct vcon *c, unsigned id)
{
	if (id >= c->nports)
		return false;
	vdev_queue_lock(&c->vdev);
	bool writing = c->port[id].tx_writing;
	vdev_queue_unlock(&c->vdev);
	return writing;
}

void vcon_port_host_close(struct vcon *c, unsigned id)
{
	if (id >= c->nports || !c->port[id].used)
		return;
	vdev_queue_lock(&c->vdev);
	struct vcon_port *p = &c->port[id];
	if (!p->host_closed) {
		p->host_closed = true;
		if (p->guest_ready)
			ctrl_send(c, id, VIRTIO_CONSOLE_PORT_OPEN, 0, NULL);
	}
	vdev_queue_unlock(&c->vdev);
}

void vcon_set_size(struct vcon *c, uint16_t cols, uint16_t rows)
{
	pthread_mutex_lock(&c->vdev.lock);
	c->cols = cols;
	c->rows = rows;
	pthread_mutex_unlock(&c->vdev.lock);
	vdev_config_changed(&c->vdev);
}
