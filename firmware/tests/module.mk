# firmware/tests/module.mk - the tiny test guests: freestanding ELF64 images
# with a PVH note, loadable by kvmbox and by qemu-system-x86_64 -kernel.
# Built with their own flags (never the sanitizer or fuzz flags of the host
# build) into $(BUILD)/firmware/tests/<name>.elf.
FW_CC := gcc
FW_CFLAGS := -m64 -O2 -I. -ffreestanding -fno-pie -fno-stack-protector -mno-red-zone \
	-mgeneral-regs-only -fno-asynchronous-unwind-tables -Wall -Wextra -Werror
FW_LDFLAGS := -nostdlib -static -no-pie -Wl,-T,firmware/tests/link.ld \
	-Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,--no-warn-rwx-segments
TINY_GUESTS := hello marker fault spin resetonly virtio cpuid smp echo snap
TINY_GUEST_ELFS := $(patsubst %,$(BUILD)/firmware/tests/%.elf,$(TINY_GUESTS))
EXTRA_ALL += $(TINY_GUEST_ELFS)

$(BUILD)/firmware/tests/%.elf: firmware/tests/%.c firmware/tests/entry.S firmware/tests/lib.c \
		firmware/tests/guest.h firmware/tests/link.ld
	@mkdir -p $(@D)
	$(FW_CC) $(FW_CFLAGS) $(FW_LDFLAGS) -o $@ firmware/tests/entry.S firmware/tests/lib.c $<
