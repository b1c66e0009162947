/* devices/legacy/i8042.c - the PS/2 controller, reduced to what a microVM
 * needs: its reset line (command 0xfe on port 0x64, which Linux uses with
 * reboot=k and which ends the VM) and a controller that answers Linux's
 * probe (self test, configuration byte, interface tests) without any
 * keyboard or mouse behind it.
 */
#include "devices/legacy/legacy.h"

#include <errno.h>
#include <string.h>

#define STATUS_OBF 0x01		/* output buffer full */
#define STATUS_SYS 0x04		/* system flag: passed self test */
#define STATUS_CMD 0x08		/* last write was a command */

static void i8042_put(struct i8042 *k, uint8_t v)
{
	k->out = v;
	k->out_full = true;
}

static void i8042_data_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct i8042 *k = opaque;
	(void)off;
	memset(data, 0, size);
	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = k->out;
	k->out_full = false;
	pthread_mutex_unlock(&k->lock);
}

static void i8042_data_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct i8042 *k = opaque;
	(void)off;
	(void)size;
	uint8_t v = *(const uint8_t *)data;
	pthread_mutex_lock(&k->lock);
	switch (k->pending_cmd) {
	case 0x60:		/* write configuration byte */
		k->ctr = v;
		break;
	case 0xd2:		/* write keyboard output buffer: echo */
		i8042_put(k, v);
		break;
	default:		/* bytes for a (absent) keyboard or mouse */
		break;
	}
	k->pending_cmd = 0;
	pthread_mutex_unlock(&k->lock);
}

static void i8042_cmd_read(void *opaque, uint64_t off, void *data, unsigned size)
{
	struct i8042 *k = opaque;
	(void)off;
	memset(data, 0, size);
	pthread_mutex_lock(&k->lock);
	*(uint8_t *)data = (uint8_t)(STATUS_SYS | (k->out_full ? STATUS_OBF : 0) |
				     (k->pending_cmd ? STATUS_CMD : 0));
	pthread_mutex_unlock(&k->lock);
}

static void i8042_cmd_write(void *opaque, uint64_t off, const void *data, unsigned size)
{
	struct i8042 *k = opaque;
	(void)off;
	(void)size;
	uint8_t v = *(const uint8_t *)data;
	bool reset = false;
	pthread_mutex_lock(&k->lock);
	k->pending_cmd = 0;
	switch (v) {
	case 0x20:		/* read configuration byte */
		i8042_put(k, k->ctr);
		break;
	case 0x60:
	case 0xd2:
	case 0xd3:
	case 0xd4:		/* next data byte is for us / the aux port */
		k->pending_cmd = v;
		break;
	case 0xaa:		/* controller self test: passed */
		i8042_put(k, 0x55);
		break;
	case 0xa9:
	case 0xab:		/* aux / keyboard interface test: no error */
		i8042_put(k, 0x00);
		break;
	case 0xa7:
		k->ctr |= 0x20;	/* disable aux */
		break;
	case 0xa8:
		k->ctr &= (uint8_t)~0x20;
		break;
	case 0xad:
		k->ctr |= 0x10;	/* disable keyboard */
		break;
	case 0xae:
		k->ctr &= (uint8_t)~0x10;
		break;
	case I8042_CMD_RESET:
		reset = true;
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&k->lock);
	if (reset && k->on_reset)
		k->on_reset(k->opaque);
}

void i8042_init(struct i8042 *k, void (*on_reset)(void *opaque), void *opaque)
{
	memset(k, 0, sizeof(*k));
	k->data_region = (struct io_region){ .base = I8042_DATA_PORT, .len = 1,
		.read = i8042_data_read, .write = i8042_data_write, .opaque = k };
	k->cmd_region = (struct io_region){ .base = I8042_CMD_PORT, .len = 1,
		.read = i8042_cmd_read, .write = i8042_cmd_write, .opaque = k };
	k->on_reset = on_reset;
	k->opaque = opaque;
	k->ctr = 0x47;		/* kbd interrupt, sys flag, translation */
	pthread_mutex_init(&k->lock, NULL);
}

void i8042_fini(struct i8042 *k)
{
	pthread_mutex_destroy(&k->lock);
}

void i8042_save(struct i8042 *k, struct i8042_state *s)
{
	pthread_mutex_lock(&k->lock);
	*s = (struct i8042_state){ .ctr = k->ctr, .out = k->out, .out_full = k->out_full,
				   .pending_cmd = k->pending_cmd };
	pthread_mutex_unlock(&k->lock);
}

int i8042_load(struct i8042 *k, const struct i8042_state *s)
{
	bool cmd_ok = s->pending_cmd == 0 || s->pending_cmd == 0x60 ||
		      (s->pending_cmd >= 0xd2 && s->pending_cmd <= 0xd4);
	if (s->out_full > 1 || !cmd_ok)
		return -EINVAL;
	pthread_mutex_lock(&k->lock);
	k->ctr = s->ctr;
	k->out = s->out;
	k->out_full = s->out_full;
	k->pending_cmd = s->pending_cmd;
	pthread_mutex_unlock(&k->lock);
	return 0;
}
