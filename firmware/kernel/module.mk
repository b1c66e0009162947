# firmware/kernel/module.mk - `make kernel`: the guest vmlinux, built from
# Debian's linux-source-6.1 by firmware/kernel/build.sh and cached under
# $(KVMBOX_CACHE)/kernel (default ~/.cache/kvmbox); $(BUILD)/vmlinux is a
# symlink to the cached file.
.PHONY: kernel kernel-check
kernel:
	@mkdir -p $(BUILD)
	@path=$$(firmware/kernel/build.sh | tail -n 1) && ln -sfn "$$path" $(BUILD)/vmlinux && \
		echo "kernel: $(BUILD)/vmlinux -> $$path"

kernel-check:
	firmware/kernel/build.sh --check
