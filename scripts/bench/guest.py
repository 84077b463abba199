"""A real guest: `urunc run` of a Linux guest to its first output line vs QEMU by hand with the
same argv (what urunc computed for it)."""
import json, os, shutil, socket, statistics, subprocess, time

from rt import reap_all


def first_line(argv, needle, env=None, pass_fds=(), timeout=300):
    """Seconds until `needle` appears on argv's stdout (None if it never does); then waits."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                         env=env, pass_fds=pass_fds)
    t = None
    for line in p.stdout:
        if needle in line.decode(errors="replace"):
            t = time.perf_counter() - t0
            break
    p.stdout.close()
    p.wait(timeout=timeout)
    return t


def linux_bundle(assets, b, args):
    """A bundle at `b` running `args` in a Linux guest (the assets' kernel and initrd) on QEMU."""
    os.makedirs(f"{b}/rootfs", exist_ok=True)
    for f in ("vmlinux", "initrd.cpio"):
        shutil.copy(f"{assets}/{f}", f"{b}/rootfs/{f}")
    spec = {
        "ociVersion": "1.2.0",
        "process": {"user": {"uid": 0, "gid": 0}, "args": args, "cwd": "/"},
        "root": {"path": "rootfs"},
        "annotations": {"com.urunc.unikernel.unikernelType": "linux", "com.urunc.unikernel.hypervisor": "qemu",
                        "com.urunc.unikernel.binary": "/vmlinux", "com.urunc.unikernel.initrd": "/initrd.cpio"},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}],
                  "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}},
    }
    json.dump(spec, open(f"{b}/config.json", "w"))
    return b


def guest_boot(ur, assets, work, runs):
    """Returns (urunc times, by-hand times) in seconds, or None without assets/vmlinux; raises
    RuntimeError when a guest never prints its line."""
    if runs < 1 or not os.path.exists(f"{assets}/vmlinux"):
        return None
    b = linux_bundle(assets, f"{work}/guest", ["/urunit", "/bin/echo", "FIRST-LINE"])
    # the exact monitor argv to run by hand: --debug makes create write its launch plan (this
    # create is not timed; the timed runs below go without --debug)
    ur.cmd("--debug", "create", "--bundle", b, "g0")
    plan = json.load(open(f"{ur.root}/g0/plan.json"))
    if plan.get("initrd_build"):
        shutil.copy(plan["initrd_build"]["path"], f"{work}/initrd.img")
    ur.cmd("delete", "--force", "g0")
    reap_all()
    # urunit's channel gets a socketpair of our own, as the supervisor gives it one
    ours, theirs = socket.socketpair()
    hand = []
    for x in plan["argv"]:
        if x.startswith("socket,id=urunit,fd="):
            x = f"socket,id=urunit,fd={theirs.fileno()}"
        elif plan.get("initrd_build") and x == plan["initrd_build"]["path"]:
            x = f"{work}/initrd.img"
        elif x.startswith("/") and x != plan["program"] and os.path.exists(f"{b}/rootfs{x}"):
            x = f"{b}/rootfs{x}"  # the monitor sees the rootfs as / (its view); by hand we do not
        hand.append(x)
    tu, th = [], []
    for i in range(runs):
        # alternate which goes first, so neither always runs on a cache the other warmed
        pair = [("hand", lambda: first_line(hand, "FIRST-LINE", pass_fds=(theirs.fileno(),))),
                ("urunc", lambda: first_line(ur.argv("run", "--bundle", b, f"g{i + 1}"), "FIRST-LINE", ur.env))]
        for who, run in (pair if i % 2 == 0 else pair[::-1]):
            (th if who == "hand" else tu).append(run())
        reap_all()
    ours.close()
    theirs.close()
    if None in tu or None in th:
        raise RuntimeError("no FIRST-LINE from the guest " + ("by hand" if None in th else "through urunc run"))
    return tu, th


def summary(ts):
    return min(ts), statistics.median(ts), max(ts)
