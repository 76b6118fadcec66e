"""Assembles bare-metal riscv64 test programs into flat binary images."""

def isa_images(names):
    for name in names:
        native.genrule(
            name = name + "_image",
            srcs = [name + ".S", "macros.inc", "link.ld"],
            outs = [name + ".bin"],
            cmd = " && ".join([
                "riscv64-linux-gnu-as -march=rv64gc -mabi=lp64d -defsym BARE=1 " +
                "-I $$(dirname $(location macros.inc)) -o $(@D)/{n}.o $(location {n}.S)".format(n = name),
                "riscv64-linux-gnu-ld -T $(location link.ld) -o $(@D)/{n}.elf $(@D)/{n}.o".format(n = name),
                "riscv64-linux-gnu-objcopy -O binary $(@D)/{n}.elf $@".format(n = name),
            ]),
        )

def linux_image(name):
    """The same source as a static Linux user program (for qemu-riscv64 differential runs)."""
    native.genrule(
        name = name + "_linux_image",
        srcs = [name + ".S", "macros.inc"],
        outs = [name + "_linux.elf"],
        cmd = " && ".join([
            "riscv64-linux-gnu-as -march=rv64gc -mabi=lp64d -I $$(dirname $(location macros.inc)) " +
            "-o $(@D)/{n}_linux.o $(location {n}.S)".format(n = name),
            "riscv64-linux-gnu-ld -static -o $@ $(@D)/{n}_linux.o".format(n = name),
        ]),
    )
