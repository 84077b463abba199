"""The benchmark's private mount namespace: nothing mounted here is seen by the host, and all of
it goes away with the benchmark's process."""
import ctypes, os, tempfile, time

CLONE_NEWNS = 0x00020000
MS_RDONLY, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 32, 4096, 16384, 1 << 18
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(rc, what):
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def mount(src, target, fstype, flags=0, data=None):
    _check(_libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None,
                       flags, data.encode() if data else None), f"mount {target}")


def umount(target):
    _check(_libc.umount2(target.encode(), MNT_DETACH), f"umount {target}")


def enter_private():
    """A mount namespace of our own, with no propagation back to the host."""
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    mount(None, "/", None, MS_REC | MS_PRIVATE)


def private_tmpfs(prefix):
    """A fresh tmpfs on a new directory: every runtime's state root lives on one, as under
    containerd (/run/containerd/runc/...), whatever backs /run or /tmp on this host."""
    d = tempfile.mkdtemp(prefix=prefix)
    mount("tmpfs", d, "tmpfs", 0, "mode=0700")
    return d


def hugetlb_bound_to_v2():
    for line in open("/proc/cgroups"):
        f = line.split()
        if f and f[0] == "hugetlb":
            return f[1] == "0"
    return False


def cgroups_for_crun():
    """crun 1.8 refuses a hybrid layout whose cgroup2 holds a controller ("cgroups in hybrid mode
    not supported"; test-machine.md); here cgroup2 holds hugetlb. Inside this namespace only, lay
    a new tmpfs over /sys/fs/cgroup with the same hierarchies bound back, plus a v1 hugetlb
    hierarchy: the kernel then unbinds hugetlb from cgroup2 until that mount goes away with
    this namespace. Every runtime (and the floor) sees the same layout. Returns what was done."""
    if not hugetlb_bound_to_v2():
        return "hugetlb already outside cgroup2: layout unchanged"
    if os.path.exists("/sys/fs/cgroup/hugetlb"):
        return "a hugetlb directory exists already: layout unchanged"
    keep = tempfile.mkdtemp(prefix="urunc-bench-cg-")
    mount("/sys/fs/cgroup", keep, None, MS_BIND | MS_REC)
    mount("tmpfs", "/sys/fs/cgroup", "tmpfs", 0, "mode=0755")
    for e in sorted(os.listdir(keep)):
        src = f"{keep}/{e}"
        if os.path.islink(src):
            os.symlink(os.readlink(src), f"/sys/fs/cgroup/{e}")
        elif os.path.isdir(src):
            os.mkdir(f"/sys/fs/cgroup/{e}")
            mount(src, f"/sys/fs/cgroup/{e}", None, MS_BIND | MS_REC)
    umount(keep)
    os.rmdir(keep)
    os.mkdir("/sys/fs/cgroup/hugetlb")
    mount("cgroup", "/sys/fs/cgroup/hugetlb", "cgroup", 0, "hugetlb")
    global _moved_hugetlb
    _moved_hugetlb = True
    return "hugetlb moved from cgroup2 to a v1 hierarchy inside the benchmark's mount namespace"


_moved_hugetlb = False


def _hugetlb_cgroups():
    for line in open("/proc/cgroups"):
        f = line.split()
        if f and f[0] == "hugetlb":
            return int(f[1]), int(f[2])
    return 0, 0


def _wait(cond, seconds):
    for _ in range(int(seconds * 10)):
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def restore_hugetlb():
    """Gives hugetlb back to cgroup2, as the host had it. The kernel destroys a v1 hierarchy
    when its last mount goes only if it has no child cgroup then, dying ones included (a
    container's, just removed, can still be dying): otherwise the hierarchy outlives every
    mount and keeps hugetlb away from cgroup2 (seen here). So: wait for the children to be
    gone, unmount, and if the hierarchy is still there, mount and unmount it once more."""
    if not _moved_hugetlb:
        return "hugetlb: nothing to restore"
    _wait(lambda: _hugetlb_cgroups()[1] <= 1, 30)
    umount("/sys/fs/cgroup/hugetlb")
    for _ in range(3):
        if _wait(lambda: _hugetlb_cgroups()[0] == 0, 5):
            return "hugetlb: back in cgroup2 after the run (checked in /proc/cgroups)"
        d = tempfile.mkdtemp(prefix="urunc-bench-hugetlb-")
        try:
            mount("cgroup", d, "cgroup", 0, "hugetlb")
            _wait(lambda: _hugetlb_cgroups()[1] <= 1, 10)
            umount(d)
        finally:
            os.rmdir(d)
    raise OSError("hugetlb stays in a v1 hierarchy after the run: mount it (mount -t cgroup -o hugetlb "
                  "cgroup DIR) in a private mount namespace and unmount it once it has no child cgroup")


def extra_mounts(n):
    """n tmpfs mounts under one parent (all in this namespace); returns the parent to drop."""
    base = tempfile.mkdtemp(prefix="urunc-bench-mounts-")
    try:
        mount("tmpfs", base, "tmpfs", 0, "mode=0700")
        for i in range(n):
            os.mkdir(f"{base}/{i}")
            mount("tmpfs", f"{base}/{i}", "tmpfs", 0, "size=4k")
    except OSError:
        if os.path.ismount(base):
            umount(base)
        os.rmdir(base)
        raise
    return base


def drop_mounts(base):
    umount(base)
    os.rmdir(base)


def ro_copy_for_valgrind(binary, work):
    """crun re-executes itself from a sealed memfd at every start (its CVE-2019-5736 guard),
    which fails under valgrind. Its guard (runc's cloned_binary.c, which crun carries) accepts
    a binary on a read-only mount when _LIBCONTAINER_CLONED_BINARY is set: bind the binary
    read-only in this namespace. Returns (path, extra env). The instructions of the skipped
    re-exec (a second dynamic load) are then not counted: this favours crun, not us."""
    path = f"{work}/{os.path.basename(binary)}-ro"
    open(path, "w").close()
    mount(binary, path, None, MS_BIND)
    mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    return path, {"_LIBCONTAINER_CLONED_BINARY": "1"}
