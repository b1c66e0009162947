/* devices/legacy/legacy.h - the PC legacy devices kvmbox emulates on the
 * port-I/O bus: an 8250/16550A UART (the console), the i8042 controller
 * (only for its reset line and enough status for Linux's probe), and the
 * kvmbox marker/exit port (see marker.h for that contract).
 *
 * None of them knows KVM: interrupts leave through a callback, the machine
 * learns about resets and exit statuses through callbacks, and tests drive
 * the io_region callbacks directly.
 */
#ifndef KVMBOX_DEVICES_LEGACY_H
#define KVMBOX_DEVICES_LEGACY_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/devices.h"
#include "devices/legacy/marker.h"

/* ---- 8250 UART ---- */
#define UART_COM1_BASE 0x3f8
#define UART_COM1_IRQ 4
#define UART_FIFO_SIZE 64

/* Interrupt line callback: level 1 raises, 0 lowers. */
typedef void (*irq_line_fn)(void *opaque, int level);

/* A 16550A-compatible UART.  Register accesses come from vCPU threads, host
 * input from the event loop: everything below `lock` is guarded by it. */
struct uart8250 {
	struct io_region region;	/* 8 ports at base */
	int out_fd;			/* guest output goes here (-1: dropped) */
	irq_line_fn set_irq;
	void *irq_opaque;
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thr_ipending;		/* THR-empty interrupt pending */
	int irq_level;			/* last level sent */
	uint8_t rx[UART_FIFO_SIZE];
	unsigned rx_head, rx_count;
	uint64_t out_errors;		/* writes to out_fd that failed */
};

void uart_init(struct uart8250 *u, uint16_t base, int out_fd, irq_line_fn set_irq,
	       void *irq_opaque);
void uart_fini(struct uart8250 *u);
/* Queue host input for the guest; returns the bytes accepted (FIFO space). */
size_t uart_receive(struct uart8250 *u, const uint8_t *buf, size_t len);
/* Free space in the receive FIFO (the loop reads at most this much). */
size_t uart_rx_space(struct uart8250 *u);

/* What a snapshot keeps of a UART (vmm/snapshot/): the registers, the
 * pending THR-empty interrupt and the receive FIFO, oldest byte first.
 * Fixed layout: it is stored as is. */
struct uart_state {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr, thr_ipending;
	uint8_t rx_count, reserved[7];
	uint8_t rx[UART_FIFO_SIZE];
};
void uart_save(struct uart8250 *u, struct uart_state *s);
/* 0 (the interrupt line set to match), or -EINVAL for a state no UART can
 * be in (a FIFO count over its size, reserved bytes set). */
int uart_load(struct uart8250 *u, const struct uart_state *s);

/* ---- i8042 ---- */
#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_CMD_RESET 0xfe

/* Data port 0x60 and command/status port 0x64 as two regions. */
struct i8042 {
	struct io_region data_region, cmd_region;
	void (*on_reset)(void *opaque);
	void *opaque;
	pthread_mutex_t lock;
	uint8_t ctr;		/* controller configuration byte */
	uint8_t out;		/* output buffer */
	bool out_full;
	uint8_t pending_cmd;	/* command waiting for its data byte, or 0 */
};

/* What a snapshot keeps of the controller (fixed layout). */
struct i8042_state {
	uint8_t ctr, out, out_full, pending_cmd;
};

void i8042_init(struct i8042 *k, void (*on_reset)(void *opaque), void *opaque);
void i8042_save(struct i8042 *k, struct i8042_state *s);
/* 0, or -EINVAL for a state the controller cannot be in. */
int i8042_load(struct i8042 *k, const struct i8042_state *s);
void i8042_fini(struct i8042 *k);

#endif
