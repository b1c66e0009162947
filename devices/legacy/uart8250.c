/* devices/legacy/uart8250.c - a 16550A UART: the guest's serial console.
 *
 * Enough of the chip for Linux's 8250 driver (autoconfig's scratch, loopback
 * and FIFO probes, THR-empty and receive interrupts) and for earlycon: the
 * transmitter is infinitely fast (every THR write goes straight to out_fd and
 * the THR is empty again), the receiver holds a 64-byte FIFO filled by the
 * event loop from the host input fd.  The baud divisor and line control are
 * stored and read back but change nothing.
 *
 * Register accesses come from vCPU threads and host input from the loop
 * thread; both take u->lock.  The interrupt line is driven through a
 * callback (KVM_IRQ_LINE in the machine) only when its level changes.
 */
#include "devices/legacy/legacy.h"

#include <errno.h>
#include <string.h>

#include "common/util.h"

enum {
	UART_RBR_THR = 0, UART_IER = 1, UART_IIR_FCR = 2, UART_LCR = 3,
	UART_MCR = 4, UART_LSR = 5, UART_MSR = 6, UART_SCR = 7,
};
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NONE 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xc0
#define FCR_FIFO_EN 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_DCD_DSR_CTS 0xb0

/* Called with the lock held: the level the line should have now. */
static int uart_pending_level(const struct uart8250 *u)
{
	return ((u->ier & IER_RDI) && u->rx_count) || ((u->ier & IER_THRI) && u->thr_ipending);
}

/* Called with the lock held; the callback itself is thread-safe (an ioctl). */
static void uart_update_irq(struct uart8250 *u)
{
	int level = uart_pending_level(u);
	if (level == u->irq_level)
		return;
	u->irq_level = level;
	if (u->set_irq)
		u->set_irq(u->irq_opaque, level);
}

static void uart_rx_push(struct uart8250 *u, uint8_t byte)
{
	if (u->rx_count >= UART_FIFO_SIZE)
		return;		/* overrun: the byte is lost, as on the chip */
	u->rx[(u->rx_head + u->rx_count) % UART_FIFO_SIZE] = byte;
	u->rx_count++;
}

static uint8_t uart_rx_pop(struct uart8250 *u)
{
	if (!u->rx_count)
		return 0;
	uint8_t b = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_FIFO_SIZE;
	u->rx_count--;
	return b;
}

static uint8_t uart_msr(const struct uart8250 *u)
{
	if (!(u->mcr & MCR_LOOP))
		return MSR_DCD_DSR_CTS;
	uint8_t m = u->mcr;	/* loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
	return (uint8_t)(((m & 1) << 5) | ((m & 2) << 3) | ((m & 4) << 4) | ((m & 8) << 4));
}

static uint8_t uart_iir(struct uart8250 *u)
{
	uint8_t fifo = (u->fcr & FCR_FIFO_EN) ? IIR_FIFO : 0;
	if ((u->ier & IER_RDI) && u->rx_count)
		return fifo | IIR_RDI;
	if ((u->ier & IER_THRI) && u->thr_ipending) {
		u->thr_ipending = false;	/* reading IIR acknowledges THRI */
		return fifo | IIR_THRI;
	}
	return fifo | IIR_NONE;
}

static uint8_t uart_read_reg(struct uart8250 *u, unsigned reg)
{
	bool dlab = u->lcr & LCR_DLAB;
	switch (reg) {
	case UART_RBR_THR:
		return dlab ? u->dll : uart_rx_pop(u);
	case UART_IER:
		return dlab ? u->dlm : u->ier;
	case UART_IIR_FCR:
		return uart_iir(u);
	case UART_LCR:
		return u->lcr;
	case UART_MCR:
		return u->mcr;
	case UART_LSR:
		return (uint8_t)(LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0));
	case UART_MSR:
		return uart_msr(u);
	default:
		return u->scr;
	}
}

/* Returns true (and the byte in *tx) when the write transmits a byte. */
static bool uart_write_reg(struct uart8250 *u, unsigned reg, uint8_t v, uint8_t *tx)
{
	bool dlab = u->lcr & LCR_DLAB;
	switch (reg) {
	case UART_RBR_THR:
		if (dlab) {
			u->dll = v;
			return false;
		}
		u->thr_ipending = true;	/* sent at once: THR is empty again */
		if (u->mcr & MCR_LOOP) {
			uart_rx_push(u, v);
			return false;
		}
		*tx = v;
		return true;
	case UART_IER:
		if (dlab) {
			u->dlm = v;
			return false;
		}
		if (!(u->ier & IER_THRI) && (v & IER_THRI))
			u->thr_ipending = true;	/* enabling THRI with THR empty fires */
		u->ier = v & 0x0f;
		return false;
	case UART_IIR_FCR:
		u->fcr = v & (FCR_FIFO_EN | 0xc0);
		if (v & FCR_CLEAR_RX)
			u->rx_head = u->rx_count = 0;
		return false;
	case UART_LCR:
		u->lcr = v;
		return false;
	case UART_MCR:
		u->mcr = v & 0x1f;
		return false;
	case UART_SCR:
		u->scr = v;
		return false;
	default:		/* LSR, MSR: read-only */
		return false;
	}
}

static void uart_io_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct uart8250 *u = opaque;
	uint8_t *out = data;
	pthread_mutex_lock(&u->lock);
	out[0] = uart_read_reg(u, (unsigned)off & 7);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	if (size > 1)
		memset(out + 1, 0, size - 1);
}

static void uart_io_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct uart8250 *u = opaque;
	(void)size;
	uint8_t tx = 0;
	pthread_mutex_lock(&u->lock);
	bool send = uart_write_reg(u, (unsigned)off & 7, *(const uint8_t *)data, &tx);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	if (send && u->out_fd >= 0 && write_full(u->out_fd, &tx, 1) < 0)
		__atomic_add_fetch(&u->out_errors, 1, __ATOMIC_RELAXED);
}

size_t uart_receive(struct uart8250 *u, const uint8_t *buf, size_t len)
{
	pthread_mutex_lock(&u->lock);
	size_t n = 0;
	while (n < len && u->rx_count < UART_FIFO_SIZE)
		uart_rx_push(u, buf[n++]);
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

size_t uart_rx_space(struct uart8250 *u)
{
	pthread_mutex_lock(&u->lock);
	size_t n = UART_FIFO_SIZE - u->rx_count;
	pthread_mutex_unlock(&u->lock);
	return n;
}

void uart_init(struct uart8250 *u, uint16_t base, int out_fd, irq_line_fn set_irq,
	       void *irq_opaque)
{
	memset(u, 0, sizeof(*u));
	u->region = (struct io_region){ .base = base, .len = 8, .read = uart_io_read,
					.write = uart_io_write, .opaque = u };
	u->out_fd = out_fd;
	u->set_irq = set_irq;
	u->irq_opaque = irq_opaque;
	u->lcr = 0x03;		/* 8N1 */
	u->mcr = 0x08;		/* OUT2 */
	u->dll = 0x0c;		/* 9600 baud */
	pthread_mutex_init(&u->lock, NULL);
}

void uart_fini(struct uart8250 *u)
{
	pthread_mutex_destroy(&u->lock);
}

void uart_save(struct uart8250 *u, struct uart_state *s)
{
	pthread_mutex_lock(&u->lock);
	*s = (struct uart_state){ .ier = u->ier, .lcr = u->lcr, .mcr = u->mcr, .scr = u->scr,
				  .dll = u->dll, .dlm = u->dlm, .fcr = u->fcr,
				  .thr_ipending = u->thr_ipending, .rx_count = (uint8_t)u->rx_count };
	for (unsigned i = 0; i < u->rx_count; i++)
		s->rx[i] = u->rx[(u->rx_head + i) % UART_FIFO_SIZE];
	pthread_mutex_unlock(&u->lock);
}

int uart_load(struct uart8250 *u, const struct uart_state *s)
{
	static const uint8_t zero[sizeof(s->reserved)];
	if (s->rx_count > UART_FIFO_SIZE || s->thr_ipending > 1 ||
	    memcmp(s->reserved, zero, sizeof(zero)))
		return -EINVAL;
	pthread_mutex_lock(&u->lock);
	u->ier = s->ier & 0x0f;
	u->lcr = s->lcr;
	u->mcr = s->mcr & 0x1f;
	u->scr = s->scr;
	u->dll = s->dll;
	u->dlm = s->dlm;
	u->fcr = s->fcr;
	u->thr_ipending = s->thr_ipending;
	u->rx_head = 0;
	u->rx_count = s->rx_count;
	memcpy(u->rx, s->rx, sizeof(u->rx));
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return 0;
}
