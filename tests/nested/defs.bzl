"""kvm_test: a test that needs /dev/kvm, run on the host's KVM or inside the nested KVM host."""

def kvm_test(name, binary, data = [], args = [], size = "large", tags = [], **kwargs):
    """Runs `binary` (a test executable: cc_binary with testonly, or a script) through
    tests/nested/kvm_or_nested: directly where /dev/kvm is usable hardware KVM, else inside
    tools/nested-host (Debian's kernel under TCG with kvm_amd), so it never skips for lack of KVM.
    Its own summary line is what tools/test counts.
    """
    native.sh_test(
        name = name,
        srcs = ["//tests/nested:kvm_or_nested"],
        args = ["$(location %s)" % binary] + args,
        data = [binary, "//tests/nested:host"] + data,
        size = size,
        # Each nested host is a TCG machine with 2 vCPUs.
        tags = tags + ["cpu:2"],
        **kwargs
    )
