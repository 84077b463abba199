#!/usr/bin/env python3
"""urunc side by side with runc, crun and youki (when installed) and a floor program, in one run.

Usage (as root): scripts/bench.py [--runs N] [--seed S] [--youki PATH] [--out bench/results.md]

Fair by construction: everything runs in a private mount namespace; every runtime's state root
is on a fresh tmpfs of its own; no `state` call is timed (pids come from --pid-file); the
runtimes run interleaved in a new random order every round; memory is what each runtime leaves
running per started container (urunc's supervisor against nothing for the peers); instruction
counts come from callgrind (repeatable under load). Wall and CPU figures are min/median/max; the
ratios are urunc's median over the peer's. The modules are in scripts/bench/.

Needs runc, busybox (Debian busybox-static), cc and, for the instruction counts, valgrind; uses
crun (Debian crun) and youki (`cargo install youki --features v1,v2,seccomp`) when present. The
host is left as found: mounts live in the private namespace, and hugetlb, moved to a v1
hierarchy there for crun, is given back to cgroup2 at the end.
"""
import argparse, ctypes, os, random, shutil, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "bench"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import features, guest, hostns, phases, report  # noqa: E402
from rt import Floor, Runtime, build_floor, busybox_bundle, busybox_rootfs, cgroup_hierarchies  # noqa: E402
from rt import fake_bundle, reap_all, sealed_copy_for_valgrind, sh  # noqa: E402

PR_SET_CHILD_SUBREAPER = 36


def find_youki(arg):
    for c in (arg, shutil.which("youki"), os.path.expanduser("~/.cargo/bin/youki")):
        if c and os.access(c, os.X_OK):
            return c
    return None


def build(work):
    sh("cargo", "build", "--release", "-p", "fakevmm", cwd=ROOT)
    sh(os.path.join(HERE, "build-static.sh"), "x86_64", cwd=ROOT)  # what users install
    os.sync()  # a just-linked binary's page-cache pages are dirty: they would count as Private_Dirty
    floor = build_floor(os.path.join(HERE, "bench", "floor.c"), f"{work}/floor")
    return (os.path.join(ROOT, "target", "x86_64-unknown-linux-musl", "release", "urunc"),
            os.path.join(ROOT, "target", "release", "fakevmm"), floor)


def runtimes(a, work, state, urunc_bin, fake, notes):
    cfg = f"{work}/config.toml"
    open(cfg, "w").write(f'[monitors.qemu]\npath = "{fake}"\naccel = "tcg"\n')
    peer = {"true": busybox_bundle(f"{work}/peer-true", ["/bin/busybox", "true"]),
            "sleep": busybox_bundle(f"{work}/peer-sleep", ["/bin/busybox", "sleep", "600"]),
            "cg": busybox_bundle(f"{work}/peer-cg", ["/bin/busybox", "sleep", "600"], rlimits=False)}
    ours = {"true": fake_bundle(f"{work}/urunc-true", "exit 0"),
            "sleep": fake_bundle(f"{work}/urunc-sleep", "wait-term 0")}
    out = [Runtime("urunc", urunc_bin, f"{state}/urunc", dict(os.environ, URUNC_CONFIG=cfg), ours)]
    # valgrind 3.19 does not know landlock_create_ruleset (444): urunc's probe sees ENOSYS and
    # create refuses to go on unless told it may run the monitor unconfined
    open(f"{cfg}.valgrind", "w").write(open(cfg).read() + "[sandbox]\nallow_unconfined = true\n")
    out[0].cg_env = dict(os.environ, URUNC_CONFIG=f"{cfg}.valgrind")
    notes.append("urunc under callgrind: `allow_unconfined = true` (valgrind 3.19 answers ENOSYS to "
                 "Landlock's syscalls and to openat2, so urunc takes its fallback paths there)")
    cands = [("runc", shutil.which("runc")), ("crun", shutil.which("crun")), ("youki", find_youki(a.youki))]
    for name, binary in cands:
        if not binary:
            notes.append(f"{name}: not installed, skipped")
            continue
        r = Runtime(name, binary, f"{state}/{name}", None, peer)
        ver = subprocess.run([binary, "--version"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True).stdout.strip().splitlines()
        notes.append(f"{name} {binary}: {ver[0] if ver else 'no version'}")
        if name == "runc":
            r.counter, r.cg_create = "lackey", False
            notes.append("runc under valgrind: counted with lackey (callgrind aborts on the Go runtime's "
                         "signal handling); its `create` cannot be counted: `runc init` re-executes "
                         "/proc/self/exe, which under valgrind is valgrind's own tool")
        if name == "youki":
            r.cg_binary, fd = sealed_copy_for_valgrind(binary)
            r.cg_fds, r.cg_create = (fd,), False
            notes.append("youki under callgrind: run from a sealed memfd copy, so it skips its own "
                         "re-exec from one (which valgrind cannot follow); its counts lack that copy and "
                         "second program load. Its `create` cannot be counted: the container process it "
                         "forks stays under valgrind, which answers ENOSYS to the new mount API it uses "
                         "without a fallback")
        if name == "crun":
            r.cg_binary, extra = hostns.ro_copy_for_valgrind(binary, state)
            r.cg_env = dict(os.environ, **extra)
            notes.append("crun under callgrind: run from a read-only bind mount with "
                         "_LIBCONTAINER_CLONED_BINARY=1, so it skips its memfd re-exec (which valgrind "
                         "cannot follow); its counts lack that second program load")
        out.append(r)
    ok = []
    for r in out:  # one warm-up lifecycle each (not measured); a runtime that fails is dropped
        try:
            r.lifecycle(f"{a.tag}-warm", work)
            ok.append(r)
        except SystemExit as e:
            if r.name in ("urunc", "runc"):
                raise
            notes.append(f"{r.name}: skipped, its warm-up lifecycle failed: {e}")
            force_delete_all([r], state)
    return ok


def lifecycle_rows(res, names, suffix=""):
    col = lambda j: {n: report.stats([x[j] for x in res[n]], 1e3) for n in names if n in res}
    cs = col(0)
    cs.pop("floor", None)  # the floor has no separate create and start
    return [(f"create+start wall (ms){suffix}", cs, "<= 0.5x crun"),
            (f"full lifecycle wall (ms){suffix}", col(1), "report"),
            (f"full lifecycle CPU user+sys (ms){suffix}", col(2), "<= 0.5x crun; <= 2x floor")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30, help="interleaved lifecycle rounds")
    ap.add_argument("--mount-runs", type=int, default=10, help="rounds with 1,000 extra mounts")
    ap.add_argument("--mounts", type=int, default=1000)
    ap.add_argument("--density", type=int, default=20)
    ap.add_argument("--mem", type=int, default=10, help="running containers for the memory figure")
    ap.add_argument("--list", type=int, default=100, help="containers for the `list` figure")
    ap.add_argument("--guest-runs", type=int, default=3)
    ap.add_argument("--exec-runs", type=int, default=5, help="exec latency/throughput rounds (0: none)")
    ap.add_argument("--exec-mib", type=int, default=2, help="MiB read through exec's stdout per round")
    ap.add_argument("--no-net-modes", action="store_true", help="skip redirect vs pod network figures")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--youki", default=None, help="youki binary (default: PATH, ~/.cargo/bin)")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "results.md"))
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.py must run as root")
    a.seed = a.seed if a.seed is not None else int(time.time())
    a.tag = f"ubench{os.getpid()}"
    rng = random.Random(a.seed)
    load0 = open("/proc/loadavg").read().split()[:3]
    work = tempfile.mkdtemp(prefix="urunc-bench-")
    urunc_bin, fake, floor_bin = build(work)
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    hostns.enter_private()
    notes = [hostns.cgroups_for_crun()]
    state = hostns.private_tmpfs("/tmp/urunc-bench-state-")
    rts = []
    try:
        text = run(a, rng, work, state, urunc_bin, fake, floor_bin, notes, load0, rts)  # a renderer
    finally:
        force_delete_all(rts, state)
        check_leftovers(a.tag)  # a cgroup left in the private hugetlb hierarchy would keep it bound
        notes.append(hostns.restore_hugetlb())
        hostns.umount(state)
        os.rmdir(state)
        shutil.rmtree(work, ignore_errors=True)
    text = text()  # after the clean-up, whose notes it shows
    print(text)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    open(a.out, "w").write(text)


def force_delete_all(rts, state):
    """After a failure half-way: every container still in a state root goes (on success there
    is none left, and this does nothing)."""
    for r in rts:
        if os.path.isdir(r.root):
            for cid in os.listdir(r.root):
                if os.path.isdir(f"{r.root}/{cid}"):
                    r.cmd("delete", "--force", cid, check=False)
    reap_all()


def sizes():
    out = []
    for b, target in (("urunc", "<= 3 MB"), ("urunit", "<= 500 KB")):
        p = os.path.join(ROOT, "target", "x86_64-unknown-linux-musl", "release", b)
        out.append(f"| {b} x86_64 static | {os.path.getsize(p):,} | {target} |")
    for name in ("runc", "crun"):
        p = shutil.which(name)
        if p:
            out.append(f"| {name} (Debian, dynamic) | {os.path.getsize(p):,} | reference |")
    return ["| binary | size (bytes) | target |", "|---|---:|---|"] + out


def run(a, rng, work, state, urunc_bin, fake, floor_bin, notes, load0, rts):
    rts += runtimes(a, work, state, urunc_bin, fake, notes)
    busybox_rootfs(f"{work}/floor-bundle")
    floor = Floor(floor_bin, f"{work}/floor-bundle/rootfs", cgroup_hierarchies())
    names = [r.name for r in rts] + ["floor"]
    t_start = time.time()
    res = phases.lifecycle_rounds(rts + [floor], a.runs, work, rng, a.tag)
    rows = lifecycle_rows(res, names)

    mixed = lambda: rng.sample(rts, len(rts))  # every phase in its own random order too
    mem = {r.name: phases.memory_left(r, a.mem, f"{a.tag}-m", work) for r in mixed()}
    for j, what in ((0, "processes"), (1, "Pss (KiB)"), (2, "private clean+dirty (KiB)"), (3, "Private_Dirty (KiB)")):
        target = "urunc <= 1024 KiB" if j == 2 else "report"
        rows.append((f"left running per started container ({a.mem} running): {what}",
                     {n: v[j] for n, v in mem.items()}, target, True))
    rows.append((f"`list` with {a.list} created containers (ms)",
                 {r.name: tuple(x * 1e3 for x in phases.list_time(r, a.list, f"{a.tag}-l", work)) for r in mixed()},
                 "<= 0.5x crun"))
    dens = {r.name: phases.density(r, a.density, f"{a.tag}-d", work) for r in mixed()}
    rows.append((f"{a.density} created+started concurrently, wall (ms)",
                 {n: v[0] * 1e3 for n, v in dens.items()}, "report"))
    rows.append((f"{a.density} up and down concurrently, CPU user+sys (ms)",
                 {n: v[2] * 1e3 for n, v in dens.items()}, "report"))
    t_wall = time.time() - t_start

    vg = shutil.which("valgrind") is not None
    if not vg:
        notes.append("instruction counts: skipped (no valgrind: apt-get install valgrind)")
    counts = {r.name: phases.instructions(r, f"{a.tag}-i", work) for r in rts} if vg else {}
    base = hostns.extra_mounts(a.mounts)
    try:
        res_m = phases.lifecycle_rounds(rts + [floor], a.mount_runs, work, rng, f"{a.tag}-x")
        counts_m = {r.name: phases.instructions(r, f"{a.tag}-ix", work, reps=1) for r in rts} if vg else {}
    finally:
        hostns.drop_mounts(base)
    rows_m = lifecycle_rows(res_m, names, f", {a.mounts} extra mounts")

    gq_cfg = f"{work}/config-qemu.toml"
    open(gq_cfg, "w").write('[monitors.qemu]\naccel = "tcg"\n')
    gq = Runtime("urunc", urunc_bin, f"{state}/urunc-guest", dict(os.environ, URUNC_CONFIG=gq_cfg))
    rts.append(gq)
    try:
        g = guest.guest_boot(gq, os.path.join(ROOT, "assets"), work, a.guest_runs)
        if g is None:
            notes.append("real guest: skipped (--guest-runs 0, or no assets/vmlinux: run "
                         "scripts/prepare-assets.sh assets)")
    except RuntimeError as e:
        g = None
        notes.append(f"real guest: failed: {e}")
    feats = guest_features(a, gq, work, notes)
    leftovers = check_leftovers(a.tag)
    load1 = open("/proc/loadavg").read().split()[:3]
    return lambda: render(a, names, rows, rows_m, counts, counts_m, g, notes, leftovers, load0, load1,
                          t_wall, feats)


def guest_features(a, gq, work, notes):
    """exec and network-mode figures with a real guest (scripts/bench/features.py)."""
    try:
        ex = features.exec_figures(gq, os.path.join(ROOT, "assets"), work, a.exec_runs, a.exec_mib)
    except (RuntimeError, subprocess.SubprocessError) as e:
        ex = None
        notes.append(f"exec: failed: {e}")
    modes = None
    if not a.no_net_modes:
        modes, why = features.network_modes()
        if why:
            notes.append(why)
    return features.render(ex, modes, a.exec_runs, a.exec_mib)


def check_leftovers(tag):
    """Cgroups or processes any runtime (or the floor) left behind; removed, and reported."""
    left = []
    for h in cgroup_hierarchies():
        for dp, dirs, _ in os.walk(h):
            for d in dirs:
                if tag in d or "urunc-bench-floor" in d:
                    left.append(f"{dp}/{d}")
                    try:
                        os.rmdir(f"{dp}/{d}")
                    except OSError:
                        pass
    reap_all()
    return left


def render(a, names, rows, rows_m, counts, counts_m, g, notes, leftovers, load0, load1, t_wall, feats):
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    rev = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                         text=True).stdout.strip()
    head = [f"# Benchmark results\n",
            f"Measured {when} at {rev} on {os.cpu_count()} cores by `scripts/bench.py` (seed {a.seed}; "
            f"load average {' '.join(load0)} at the start, {' '.join(load1)} at the end).",
            f"",
            f"**Wall-clock and CPU figures depend on the machine's load** (the load averages above; "
            f"{'the machine was busy with other work' if float(load0[0]) >= 1.0 else 'the machine was otherwise idle at the start'}): "
            f"compare them within a row only (the runtimes ran interleaved, in a new random order every "
            f"round, so all of them saw the same load); instruction counts are load-independent.",
            f"",
            f"urunc drives the fake monitor (the tests' fakevmm) for a Linux-guest bundle; runc, crun and "
            f"youki run busybox (`true`, or `sleep` where containers must stay up) from `runc spec`'s bundle "
            f"with the same namespaces ({', '.join(['pid', 'network', 'ipc', 'uts', 'mount'])}); the peers "
            f"also do the spec's 7 mounts and pivot_root, which a unikernel bundle does not need. The floor "
            f"(scripts/bench/floor.c) makes a cgroup in every hierarchy, clones into the same namespaces, "
            f"joins the cgroups, pivots into the rootfs, mounts /proc, execs busybox `true`, waits and "
            f"removes the cgroups. Cells: median (min–max) over {a.runs} rounds, then urunc's median over "
            f"that column's.", ""]
    body = [report.table(rows, names), "",
            f"With {a.mounts} extra mounts in the benchmark's mount namespace ({a.mount_runs} rounds):", "",
            report.table(rows_m, names), ""]
    if counts:
        body += [
            "Instructions (valgrind, median of 3, one run with the extra mounts; the command process "
            "only: what it forks or execs, such as urunc's supervisor or `runc init`, is in the CPU "
            "figures above, not here):", "",
            report.instructions_table(counts, [n for n in names if n != "floor"], counts_m, a.mounts), ""]
    if g:
        tu, th = guest.summary(g[0]), guest.summary(g[1])
        body += ["Real guest (QEMU, TCG), first output line, " + f"{a.guest_runs} runs each, alternating:", "",
                 report.table([("Linux guest boot, `urunc run` vs QEMU by hand, same argv (ms)",
                                {"urunc run": tuple(x * 1e3 for x in tu), "QEMU by hand": tuple(x * 1e3 for x in th)},
                                "<= 1.05x")], ["urunc run", "QEMU by hand"]), ""]
    else:
        body += ["Real guest: no figure (see the notes).", ""]
    body += feats
    body += sizes() + ["", "Notes:", ""] + [f"- {n}" for n in notes]
    body.append(f"- wall time of the timed phases: {t_wall:.0f} s")
    body.append("- left behind by a runtime: " + (", ".join(leftovers) if leftovers else "nothing (cgroups checked)"))
    return "\n".join(head + body) + "\n"


if __name__ == "__main__":
    main()
