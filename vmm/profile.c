/* vmm/profile.c - `kvmbox run --profile`: wall and CPU time at each phase of
 * a run, printed at teardown as a table or one JSON object.
 *
 * Marks are written by whichever thread reaches the phase (vCPU threads for
 * the first KVM_RUN and the guest's markers) and read only after every
 * thread has been joined, so plain stores suffice; a phase is marked once.
 */
#include "vmm/vmm.h"

#include <stdio.h>
#include <time.h>

#include "common/util.h"

static const char *const phase_names[PHASE_COUNT] = {
	[PHASE_EXEC] = "exec",
	[PHASE_CREDENTIALS] = "credentials",
	[PHASE_IMAGE] = "image",
	[PHASE_KVM_READY] = "kvm_ready",
	[PHASE_PROXY_READY] = "ca_and_proxy",
	[PHASE_KERNEL_LOADED] = "kernel_loaded",
	[PHASE_FIRST_RUN] = "first_kvm_run",
	[PHASE_GUEST_INIT] = "guest_init_started",
	[PHASE_COMMAND_START] = "command_start",
	[PHASE_FIRST_OUTPUT] = "first_output_byte",
	[PHASE_COMMAND_DONE] = "command_done",
	[PHASE_TEARDOWN] = "teardown",
};

const char *profile_phase_name(enum vm_phase phase)
{
	return phase < PHASE_COUNT ? phase_names[phase] : "?";
}

void profile_mark(struct profile *p, enum vm_phase phase)
{
	if (!p || phase >= PHASE_COUNT)
		return;
	uint64_t zero = 0, now = now_ns();
	if (!__atomic_compare_exchange_n(&p->wall_ns[phase], &zero, now, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	struct timespec ts;
	if (phase == PHASE_EXEC) {
		clock_gettime(CLOCK_REALTIME, &ts);
		p->exec_realtime_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	}
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	p->cpu_ns[phase] = p->cpu_base_ns + (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

void profile_print(const struct profile *p, bool json, int fd,
		   uint64_t ram_resident, uint64_t max_rss)
{
	char buf[2048];
	size_t o = 0;
	uint64_t t0 = p->wall_ns[PHASE_EXEC];
	if (json)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "{\"exec_unix_us\":%llu,",
				      (unsigned long long)(p->exec_realtime_ns / 1000));
	else
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
				      "kvmbox: profile   %-20s %10s %10s\n", "phase", "wall_ms", "cpu_ms");
	for (unsigned i = 0; i < PHASE_COUNT; i++) {
		if (!p->wall_ns[i])
			continue;
		double wall = (double)(p->wall_ns[i] - t0) / 1e6;
		double cpu = (double)p->cpu_ns[i] / 1e6;
		if (json)
			o += (size_t)snprintf(buf + o, sizeof(buf) - o,
					      "\"%s\":{\"wall_ms\":%.3f,\"cpu_ms\":%.3f},",
					      phase_names[i], wall, cpu);
		else
			o += (size_t)snprintf(buf + o, sizeof(buf) - o,
					      "kvmbox: profile   %-20s %10.3f %10.3f\n",
					      phase_names[i], wall, cpu);
		if (o >= sizeof(buf))
			return;
	}
	if (json)
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
				      "\"guest_ram_resident_kib\":%llu,\"max_rss_kib\":%llu}\n",
				      (unsigned long long)(ram_resident / 1024),
				      (unsigned long long)(max_rss / 1024));
	else
		o += (size_t)snprintf(buf + o, sizeof(buf) - o,
				      "kvmbox: profile   guest RAM resident %llu KiB, max RSS %llu KiB\n",
				      (unsigned long long)(ram_resident / 1024),
				      (unsigned long long)(max_rss / 1024));
	if (o < sizeof(buf))
		write_full(fd, buf, o);
}
