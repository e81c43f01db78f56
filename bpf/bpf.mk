# BPF programs: bpf/%.c -> build/bpf/%.o, compiled with clang against a
# vmlinux.h generated from the running kernel's BTF and libbpf's
# <bpf/bpf_helpers.h>. Paths are relative to the repository root.
#
#   make -f bpf/bpf.mk            # alone: builds $(BPF_OBJECTS)
#   include bpf/bpf.mk            # from the top-level Makefile; depend on
#                                 # $(BPF_OBJECTS) or the `bpf` target
#
# Targets: bpf (all objects), bpf-clean, $(BPF_BUILD)/vmlinux.h.

# Remember whether we are included, so we never take over the includer's
# default goal (the first target make sees would otherwise become it).
BPF_MK_STANDALONE := $(if $(filter 1,$(words $(MAKEFILE_LIST))),yes)
BPF_MK_SAVED_GOAL := $(.DEFAULT_GOAL)

BPF_CLANG ?= clang
BPF_BPFTOOL ?= bpftool
BPF_BUILD ?= build/bpf
BPF_VMLINUX_BTF ?= /sys/kernel/btf/vmlinux
BPF_ARCH := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BPF_CFLAGS ?= -O2 -g -Wall -Werror
BPF_SOURCES := $(wildcard bpf/*.c)
BPF_HEADERS := $(wildcard bpf/*.h)
BPF_HEADERS += $(wildcard bpf/include/*.h bpf/lib/*.h)
BPF_OBJECTS := $(patsubst bpf/%.c,$(BPF_BUILD)/%.o,$(BPF_SOURCES))

# A failed clang or bpftool run must not leave a truncated file that looks
# up to date the next time.
.DELETE_ON_ERROR:

.PHONY: bpf bpf-clean
bpf: $(BPF_OBJECTS)

$(BPF_BUILD):
	mkdir -p $@

# Regenerated when the kernel's BTF changes (a new kernel after reboot).
$(BPF_BUILD)/vmlinux.h: $(wildcard $(BPF_VMLINUX_BTF)) | $(BPF_BUILD)
	$(BPF_BPFTOOL) btf dump file $(BPF_VMLINUX_BTF) format c > $@

$(BPF_BUILD)/%.o: bpf/%.c $(BPF_BUILD)/vmlinux.h $(BPF_HEADERS) | $(BPF_BUILD)
	$(BPF_CLANG) $(BPF_CFLAGS) -target bpf -D__TARGET_ARCH_$(BPF_ARCH) -I$(BPF_BUILD) -Ibpf -c $< -o $@

bpf-clean:
	rm -rf $(BPF_BUILD)

.DEFAULT_GOAL := $(if $(BPF_MK_STANDALONE),bpf,$(BPF_MK_SAVED_GOAL))
