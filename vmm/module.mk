# vmm/: the binary's main() is linked separately, not archived.
vmm_EXCLUDE := vmm/cli/main.c
