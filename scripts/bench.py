#!/usr/bin/env python3
"""urunc benchmarks, side by side with runc in one run on this machine.

Usage (as root): scripts/bench.py [--runs N] [--out bench/results.md]
Prints a table of medians (wall and CPU time = user+sys of everything the runtime ran, reaped
through a child subreaper) with the ratio urunc/runc, and writes it to --out.
"""
import argparse, concurrent.futures, ctypes, json, os, resource, shutil, statistics
import subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PR_SET_CHILD_SUBREAPER = 36


def sh(*args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def reap_all():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.001)


class Runtime:
    def __init__(self, name, binary, root, env=None):
        self.name, self.binary, self.root, self.env = name, binary, root, env

    def cmd(self, *args):
        # the container inherits create's stdio: a pipe here would stay open as long as it
        # runs, so errors go to a file
        with tempfile.TemporaryFile() as err:
            r = subprocess.run([self.binary, "--root", self.root, *args], env=self.env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            if r.returncode != 0:
                err.seek(0)
                sys.exit(f"{self.name} {' '.join(args)} failed: {err.read().decode(errors='replace')}")
            return r

    def state(self, cid):
        out = subprocess.run([self.binary, "--root", self.root, "state", cid], env=self.env,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
        return json.loads(out)


def busybox_bundle(d, args):
    os.makedirs(f"{d}/rootfs/bin", exist_ok=True)
    shutil.copy("/bin/busybox", f"{d}/rootfs/bin/busybox")
    if not os.path.exists(f"{d}/config.json"):
        sh("runc", "spec", "--bundle", d)
    spec = json.load(open(f"{d}/config.json"))
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args
    json.dump(spec, open(f"{d}/config.json", "w"))
    return spec


def fake_bundle(d, script, namespaces):
    os.makedirs(f"{d}/rootfs", exist_ok=True)
    open(f"{d}/rootfs/kernel", "w").write("#fakevmm\n" + script + "\n")
    spec = {
        "ociVersion": "1.2.0",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/urunit", "/bin/true"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "annotations": {"com.urunc.unikernel.unikernelType": "linux",
                        "com.urunc.unikernel.hypervisor": "qemu",
                        "com.urunc.unikernel.binary": "/kernel"},
        "linux": {"namespaces": namespaces, "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}},
    }
    json.dump(spec, open(f"{d}/config.json", "w"))


def lifecycle(rt, bundle, cid):
    """create + start (the runtime overhead), then wait for the workload and delete."""
    c0, t0 = cpu_children(), time.perf_counter()
    rt.cmd("create", "--bundle", bundle, cid)
    pid = rt.state(cid)["pid"]
    rt.cmd("start", cid)
    t1 = time.perf_counter()
    try:
        os.waitpid(pid, 0)  # reparented to us (subreaper) once create exited
    except ChildProcessError:
        while os.path.exists(f"/proc/{pid}"):
            time.sleep(0.0005)
    rt.cmd("delete", cid)
    reap_all()
    t2 = time.perf_counter()
    return t1 - t0, t2 - t0, cpu_children() - c0


def smaps(pid):
    """(Pss, Private_Clean+Private_Dirty, Private_Dirty) in KiB."""
    v = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            v[parts[0][:-1]] = int(parts[1])
    return v.get("Pss", 0), v.get("Private_Clean", 0) + v.get("Private_Dirty", 0), v.get("Private_Dirty", 0)


def memory_at(rt, bundle, prefix, n, start):
    """Average (Pss, Private_Dirty) of n waiting container processes (urunc: started
    supervisors; runc: created inits waiting on exec.fifo)."""
    pids = []
    for i in range(n):
        rt.cmd("create", "--bundle", bundle, f"{prefix}{i}")
        if start:
            rt.cmd("start", f"{prefix}{i}")
        pids.append(rt.state(f"{prefix}{i}")["pid"])
    time.sleep(0.3)
    m = [smaps(p) for p in pids]
    for i in range(n):
        rt.cmd("delete", "--force", f"{prefix}{i}")
    reap_all()
    return statistics.mean(x[0] for x in m), statistics.mean(x[2] for x in m)


def density(rt, bundle, prefix, n):
    c0, t0 = cpu_children(), time.perf_counter()

    def up(i):
        rt.cmd("create", "--bundle", bundle, f"{prefix}{i}")
        rt.cmd("start", f"{prefix}{i}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        list(ex.map(up, range(n)))
    t_up = time.perf_counter() - t0

    def down(i):
        rt.cmd("delete", "--force", f"{prefix}{i}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        list(ex.map(down, range(n)))
    reap_all()
    return t_up, time.perf_counter() - t0, cpu_children() - c0


def first_line(argv, needle, env=None, pass_fds=()):
    """Seconds until `needle` appears on argv's stdout; then waits for the process."""
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=env,
                         pass_fds=pass_fds)
    t = None
    for line in p.stdout:
        if needle in line.decode(errors="replace"):
            t = time.perf_counter() - t0
            break
    p.stdout.close()
    p.wait()
    return t


def guest_boot(ur, work, runs):
    """`urunc run` of a Linux guest to its first output line vs the same QEMU argv by hand."""
    assets = os.path.join(ROOT, "assets")
    if not os.path.exists(f"{assets}/vmlinux"):
        return None
    b = f"{work}/guest"
    os.makedirs(f"{b}/rootfs", exist_ok=True)
    for f in ("vmlinux", "initrd.cpio"):
        shutil.copy(f"{assets}/{f}", f"{b}/rootfs/{f}")
    spec = {
        "ociVersion": "1.2.0",
        "process": {"user": {"uid": 0, "gid": 0}, "args": ["/urunit", "/bin/echo", "FIRST-LINE"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "annotations": {"com.urunc.unikernel.unikernelType": "linux", "com.urunc.unikernel.hypervisor": "qemu",
                        "com.urunc.unikernel.binary": "/vmlinux", "com.urunc.unikernel.initrd": "/initrd.cpio"},
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}],
                  "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}},
    }
    json.dump(spec, open(f"{b}/config.json", "w"))
    ur.cmd("create", "--bundle", b, "g0")
    plan = json.load(open(f"{ur.root}/g0/plan.json"))
    if plan.get("initrd_build"):
        shutil.copy(plan["initrd_build"]["path"], f"{work}/initrd.img")
    ur.cmd("delete", "--force", "g0")
    reap_all()
    # the same argv by hand; urunit's channel gets a socketpair of our own, as the supervisor's
    import socket
    ours, theirs = socket.socketpair()
    hand = []
    for x in plan["argv"]:
        if x.startswith("socket,id=urunit,fd="):
            x = f"socket,id=urunit,fd={theirs.fileno()}"
        if plan.get("initrd_build") and x == plan["initrd_build"]["path"]:
            x = f"{work}/initrd.img"
        hand.append(x)
    tu, th = [], []
    for i in range(runs):
        th.append(first_line(hand, "FIRST-LINE", pass_fds=(theirs.fileno(),)))
        tu.append(first_line([ur.binary, "--root", ur.root, "run", "--bundle", b, f"g{i + 1}"], "FIRST-LINE", ur.env))
        reap_all()
    if None in tu or None in th:
        return None
    return statistics.median(tu), statistics.median(th)


def ratio(a, b):
    return f"{a / b:.2f}x" if b else "n/a"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--density", type=int, default=50)
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results.md"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.py must run as root")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    sh("cargo", "build", "--release", "-p", "fakevmm", cwd=ROOT)
    # the binary users install: static musl
    sh(os.path.join(ROOT, "scripts", "build-static.sh"), "x86_64", cwd=ROOT)
    urunc_bin = os.path.join(ROOT, "target", "x86_64-unknown-linux-musl", "release", "urunc")
    # a just-linked binary's page-cache pages are dirty and would count as Private_Dirty
    os.sync()
    fake = os.path.join(ROOT, "target", "release", "fakevmm")
    runc_bin = shutil.which("runc")
    if not runc_bin:
        sys.exit("runc is not installed: run scripts/deps.sh")
    work = tempfile.mkdtemp(prefix="urunc-bench-")
    cfg = f"{work}/config.toml"
    open(cfg, "w").write(f'[monitors.qemu]\npath = "{fake}"\naccel = "tcg"\n')
    env = dict(os.environ, URUNC_CONFIG=cfg)
    # state roots on tmpfs, where engines keep them (/run/containerd/runc/...)
    state = tempfile.mkdtemp(prefix="urunc-bench-", dir="/run")
    ur = Runtime("urunc", urunc_bin, f"{state}/urunc-root", env)
    rc = Runtime("runc", runc_bin, f"{state}/runc-root")
    spec = busybox_bundle(f"{work}/runc-true", ["/bin/busybox", "true"])
    ns = spec["linux"]["namespaces"]
    fake_bundle(f"{work}/urunc-true", "exit 0", ns)
    busybox_bundle(f"{work}/runc-sleep", ["/bin/busybox", "sleep", "600"])
    fake_bundle(f"{work}/urunc-sleep", "wait-term 0", ns)
    rows = []

    # 1+2: runtime overhead and full lifecycle, interleaved
    res = {"urunc": [], "runc": []}
    for i in range(a.runs):
        for rt, b in ((ur, f"{work}/urunc-true"), (rc, f"{work}/runc-true")):
            res[rt.name].append(lifecycle(rt, b, f"b{i}"))
    med = {k: [statistics.median(x[j] for x in v) for j in range(3)] for k, v in res.items()}
    rows.append(("runtime overhead: create+start wall (ms)", med["urunc"][0] * 1e3, med["runc"][0] * 1e3, "<= 0.5x"))
    rows.append(("full lifecycle wall (ms)", med["urunc"][1] * 1e3, med["runc"][1] * 1e3, "report"))
    rows.append(("full lifecycle CPU user+sys (ms)", med["urunc"][2] * 1e3, med["runc"][2] * 1e3, "<= 0.5x"))

    # 3: memory of the waiting container process
    ur.cmd("create", "--bundle", f"{work}/urunc-sleep", "mem")
    ur.cmd("start", "mem")
    time.sleep(0.3)
    sup = ur.state("mem")["pid"]
    rc.cmd("create", "--bundle", f"{work}/runc-sleep", "mem")
    init = rc.state("mem")["pid"]  # runc init, waiting on exec.fifo
    (ups, upriv, udirty), (rps, rpriv, rdirty) = smaps(sup), smaps(init)
    rows.append(("memory: one supervisor vs one runc init, Pss (KiB)", ups, rps, "report"))
    rows.append(("memory: one supervisor vs one runc init, Private clean+dirty (KiB)", upriv, rpriv, "report"))
    rows.append(("memory: one supervisor vs one runc init, Private_Dirty (KiB)", udirty, rdirty, "supervisor <= 1024 KiB"))
    ur.cmd("delete", "--force", "mem")
    rc.cmd("delete", "--force", "mem")
    reap_all()
    n = 10
    (up_, ud_), (rp_, rd_) = memory_at(ur, f"{work}/urunc-sleep", "m", n, True), memory_at(rc, f"{work}/runc-sleep", "m", n, False)
    rows.append((f"memory: per container with {n} running, Pss (KiB)", up_, rp_, "report"))
    rows.append((f"memory: per container with {n} running, Private_Dirty (KiB)", ud_, rd_, "supervisor <= 1024 KiB"))

    # 4: density
    ud = density(ur, f"{work}/urunc-sleep", "d", a.density)
    rd = density(rc, f"{work}/runc-sleep", "d", a.density)
    rows.append((f"density: {a.density} created+started concurrently, wall (ms)", ud[0] * 1e3, rd[0] * 1e3, "<= 1.0x"))
    rows.append((f"density: up and down, wall (ms)", ud[1] * 1e3, rd[1] * 1e3, "report"))
    rows.append((f"density: up and down, CPU user+sys (ms)", ud[2] * 1e3, rd[2] * 1e3, "<= 1.0x"))

    # guest boot overhead (needs scripts/prepare-assets.sh)
    open(cfg, "a").write("")
    qemu_cfg = f"{work}/config-qemu.toml"
    open(qemu_cfg, "w").write('[monitors.qemu]\naccel = "tcg"\n')
    gq = Runtime("urunc", urunc_bin, f"{state}/urunc-guest-root", dict(os.environ, URUNC_CONFIG=qemu_cfg))
    g = guest_boot(gq, work, max(3, a.runs // 4))
    if g:
        rows.append(("guest boot to first output line, urunc run vs QEMU by hand (ms)", g[0] * 1e3, g[1] * 1e3, "<= 1.05x"))
    else:
        print("guest boot: skipped (no assets/vmlinux: run scripts/prepare-assets.sh)")

    # 5: binary sizes (static musl release builds)
    sizes = []
    for arch in ("x86_64", "aarch64"):
        for b in ("urunc", "urunit"):
            p = os.path.join(ROOT, "target", f"{arch}-unknown-linux-musl", "release", b)
            sizes.append((arch, b, os.path.getsize(p) if os.path.exists(p) else None))
    runc_size = os.path.getsize(runc_bin)

    lines = ["| figure | urunc | runc (or reference) | ratio | target |", "|---|---:|---:|---:|---|"]
    for name, u, r, target in rows:
        lines.append(f"| {name} | {u:.1f} | {r:.1f} | {ratio(u, r)} | {target} |")
    lines.append("")
    lines.append("| static binary | size (bytes) | target |")
    lines.append("|---|---:|---|")
    for arch, b, s in sizes:
        target = "<= 3 MB" if b == "urunc" else "<= 500 KB"
        lines.append(f"| {b} {arch} | {s if s is not None else 'not built (scripts/build-static.sh)'} | {target} |")
    lines.append(f"| runc (Debian, dynamic) | {runc_size} | reference |")
    header = (f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {os.cpu_count()} cores, "
              f"{a.runs} interleaved runs, medians; urunc drives the fake monitor (tests' fakevmm), runc a busybox container "
              f"with the same namespaces.\n")
    text = header + "\n" + "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, "w").write(text)
    shutil.rmtree(work, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
