# vmm/: the binary's main() is linked separately, not archived.
vmm_EXCLUDE := vmm/cli/main.c
# guest/: kvmbox-init (guest/init/) is a static guest binary, not part of the
# host library; guest/image/ (image builder) is.
guest_EXCLUDE := $(shell find guest/init -name '*.c' 2>/dev/null)
