"""Tests that boot a guest through `vmlaunch up` and talk to its console (tests/boot/console.sh)."""

def guest_console_test(name, data = [], timeout = "long", tags = [], src = None, env = {}):
    """An sh_test NAME.sh that runs vmlaunch with the console helpers.

    Large and exclusive: a guest boot on the jit interpreter wants the machine's cores to itself,
    and a loaded machine only makes the boot slower, never the result different.

    Args:
      name: the test; its script is NAME.sh in the calling package.
      data: what the script needs besides vmlaunch, tests/lib.sh and tests/boot/console.sh.
      timeout: Bazel's timeout class (the guest boots several times in some tests).
      tags: more tags.
      src: the script, when it is not NAME.sh (a variant of another test).
      env: environment for the script (VML_GUEST_ACCEL: the guest's accel entry, see console.sh).
    """
    native.sh_test(
        name = name,
        size = "large",
        timeout = timeout,
        srcs = [src or name + ".sh"],
        env = env,
        data = data + [
            "//launcher:vmlaunch",
            "//tests:lib.sh",
            "//tests/boot:console.sh",
        ],
        tags = ["exclusive"] + tags,
    )
