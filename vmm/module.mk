# vmm/: the binary's main() is linked separately, not archived.
vmm_EXCLUDE := vmm/cli/main.c
# vmm/boot_fallback.c stands in for boot/ only while boot/ has no sources.
ifneq ($(wildcard boot/*.c),)
vmm_EXCLUDE += vmm/boot_fallback.c
endif
# guest/: kvmbox-init (guest/init/) is a static guest binary, not part of the
# host library; guest/image/ (image builder) is.
guest_EXCLUDE := $(shell find guest/init -name '*.c' 2>/dev/null)
