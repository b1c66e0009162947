# cage/: the SIGSYS handler names the refused call from a table generated
# from the kernel's headers (every __NR_ of x86-64).
$(BUILD)/gen/cage/sysnames.h: cage/module.mk
	@mkdir -p $(@D)
	echo '#include <sys/syscall.h>' | $(CC) -dM -E - | \
		sed -n 's/^#define __NR_\([a-z0-9_]*\) \([0-9][0-9]*\)$$/[\2] = "\1",/p' | sort -u > $@
$(BUILD)/obj/cage/seccomp.o: $(BUILD)/gen/cage/sysnames.h
$(BUILD)/obj/cage/seccomp.o: CFLAGS += -I$(BUILD)/gen
