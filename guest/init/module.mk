# guest/init/module.mk - kvmbox-init, the guest's static PID 1.
#
# guest/init/kinit.c (pure: command-line decoding, exit codes) is part of
# libguest.a so unit tests link it; main.c is excluded there (see
# guest/module.mk) and linked here, statically, with flags of its own: no
# sanitizers (they cannot link statically), same warnings.
KINIT_CFLAGS := -std=gnu11 -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -I. -static -s
KINIT_SRCS := guest/init/main.c guest/init/kinit.c guest/init/console.c guest/init/netcfg.c \
	guest/init/mounts.c common/listeners.c \
	guest/init/portfwd.c

$(BUILD)/kvmbox-init: $(KINIT_SRCS) guest/init/kinit.h guest/init/console.h guest/init/netcfg.h \
		guest/init/mounts.h common/listeners.h guest/init/portfwd.h \
		$(wildcard guest/abi/*.h)
	@mkdir -p $(@D)
	$(CC) $(KINIT_CFLAGS) -o $@ $(KINIT_SRCS)

EXTRA_ALL += $(BUILD)/kvmbox-init

# make initrd: the minimal guest root (kvmbox-init + busybox) for
# kvmbox run/shell --initrd.
.PHONY: initrd
initrd: $(BUILD)/initrd.cpio
$(BUILD)/initrd.cpio: $(BUILD)/kvmbox-init guest/init/mkinitrd.sh
	guest/init/mkinitrd.sh $@ $<
