"""Runtimes under test, their bundles and one timed container lifecycle."""
import json, os, resource, shutil, subprocess, sys, tempfile, time

NAMESPACES = ["pid", "network", "ipc", "uts", "mount"]  # `runc spec`'s default set


def sh(*args, **kw):
    return subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def reap_all():
    """Reaps every exited child (we are a subreaper: containers are reparented to us)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def wait_pid(pid, timeout=120):
    """Waits for a process reparented to us; a guard against hangs, not a timing assumption."""
    deadline = time.monotonic() + timeout
    try:
        os.waitpid(pid, 0)
        return
    except ChildProcessError:
        pass
    while os.path.exists(f"/proc/{pid}"):
        if time.monotonic() > deadline:
            sys.exit(f"process {pid} still runs after {timeout} s: the workload did not exit")
        time.sleep(0.001)


class Runtime:
    def __init__(self, name, binary, root, env=None, bundles=None):
        self.name, self.binary, self.root, self.env = name, binary, root, env
        self.bundles = bundles or {}  # "true" / "sleep" -> bundle dir
        # what valgrind runs, with which environment and inherited fds (see hostns.ro_copy_for_valgrind
        # and sealed_copy_for_valgrind)
        self.cg_binary, self.cg_env, self.cg_fds = binary, env, ()

    def argv(self, *args):
        return [self.binary, "--root", self.root, *args]

    def cmd(self, *args, check=True):
        # the container inherits create's stdio: a pipe would stay open while it runs, so
        # errors go to a file
        with tempfile.TemporaryFile() as err:
            r = subprocess.run(self.argv(*args), env=self.env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=err)
            if check and r.returncode != 0:
                err.seek(0)
                msg = err.read().decode(errors="replace").strip()
                sys.exit(f"{self.name} {' '.join(args)} failed: {msg}")
            return r.returncode

    def create(self, kind, cid, pidfile):
        self.cmd("create", "--bundle", self.bundles[kind], "--pid-file", pidfile, cid)

    def lifecycle(self, cid, tmp):
        """create + start (the runtime's overhead: no `state` call in between; the pid comes
        from --pid-file), then wait for the workload, delete. Returns (create+start wall,
        lifecycle wall, lifecycle CPU of every process run, reaped through the subreaper)."""
        pidfile = f"{tmp}/{self.name}-{cid}.pid"
        c0, t0 = cpu_children(), time.perf_counter()
        self.create("true", cid, pidfile)
        self.cmd("start", cid)
        t1 = time.perf_counter()
        wait_pid(int(open(pidfile).read()))
        self.cmd("delete", cid)
        reap_all()
        t2 = time.perf_counter()
        os.unlink(pidfile)
        return t1 - t0, t2 - t0, cpu_children() - c0


class Floor:
    """The floor program (floor.c) as a runtime with a lifecycle only."""
    name = "floor"

    def __init__(self, binary, rootfs, hierarchies):
        self.binary, self.rootfs, self.hierarchies = binary, rootfs, hierarchies

    def lifecycle(self, cid, tmp):
        dirs = [f"{h}/urunc-bench-floor-{os.getpid()}-{cid}" for h in self.hierarchies]
        argv = [self.binary, self.rootfs, ",".join(NAMESPACES), *dirs, "--", "/bin/busybox", "true"]
        c0, t0 = cpu_children(), time.perf_counter()
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        t1 = time.perf_counter()
        reap_all()
        if r.returncode != 0:
            sys.exit(f"floor failed: {r.stderr.decode(errors='replace').strip()}")
        # create and start are one step here: the first figure is the whole lifecycle
        return t1 - t0, t1 - t0, cpu_children() - c0


def build_floor(src, out):
    sh("cc", "-O2", "-Wall", "-o", out, src)
    return out


def cgroup_hierarchies():
    """One directory per mounted v1 hierarchy (what runc creates a cgroup in), plus cgroup2."""
    out = []
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        sep = f.index("-")
        if f[sep + 1] in ("cgroup", "cgroup2") and f[4] not in out:
            out.append(f[4])
    return out


def busybox_rootfs(d):
    os.makedirs(f"{d}/rootfs/bin", exist_ok=True)
    os.makedirs(f"{d}/rootfs/proc", exist_ok=True)
    shutil.copy("/bin/busybox", f"{d}/rootfs/bin/busybox")


def busybox_bundle(d, args, rlimits=True):
    """runc spec's bundle running busybox `args`. rlimits=False drops process.rlimits (for
    create under valgrind, which refuses any change of the NOFILE hard limit with EPERM; only
    the forked container process sets them, and it is not counted)."""
    busybox_rootfs(d)
    sh("runc", "spec", "--bundle", d)
    spec = json.load(open(f"{d}/config.json"))
    spec["process"]["terminal"] = False
    spec["process"]["args"] = args
    if not rlimits:
        spec["process"].pop("rlimits", None)
    assert [n["type"] for n in spec["linux"]["namespaces"]] == NAMESPACES, spec["linux"]["namespaces"]
    json.dump(spec, open(f"{d}/config.json", "w"))
    return d


def fake_bundle(d, script):
    """A Linux-guest bundle whose "monitor" is the tests' fakevmm running `script`."""
    os.makedirs(f"{d}/rootfs", exist_ok=True)
    open(f"{d}/rootfs/kernel", "w").write("#fakevmm\n" + script + "\n")
    spec = {
        "ociVersion": "1.2.0",
        "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": ["/urunit", "/bin/true"], "cwd": "/"},
        "root": {"path": "rootfs"},
        "annotations": {"com.urunc.unikernel.unikernelType": "linux",
                        "com.urunc.unikernel.hypervisor": "qemu",
                        "com.urunc.unikernel.binary": "/kernel"},
        "linux": {"namespaces": [{"type": t} for t in NAMESPACES],
                  "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}},
    }
    json.dump(spec, open(f"{d}/config.json", "w"))
    return d


def sealed_copy_for_valgrind(binary):
    """youki re-executes itself from a sealed memfd unless /proc/self/exe already is one (the
    pentacle crate); under valgrind that exec leaves valgrind, and nothing is counted. Running
    valgrind on a sealed memfd copy makes that check pass. Returns (path, fd to pass on); the
    copy (work youki would do itself) is not counted: this favours youki, not us."""
    import fcntl
    fd = os.memfd_create(os.path.basename(binary), os.MFD_ALLOW_SEALING)
    with open(binary, "rb") as f:
        data = f.read()
    off = 0
    while off < len(data):
        off += os.write(fd, data[off:])
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS,
                fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    return f"/proc/self/fd/{fd}", fd
