"""Figures of features that need a real guest (QEMU, TCG): exec into a Linux guest (latency of
`exec true`, stdout throughput over urunit's channel) and the two network modes side by side
(the pod_net test's measurement: create+start, HTTP latency and throughput, redirect vs pod)."""
import os, statistics, subprocess, time

from guest import linux_bundle
from rt import reap_all

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def exec_figures(ur, assets, work, runs=5, mib=2):
    """(exec latency seconds list, MiB/s list) for a running Linux guest, or None without assets."""
    if runs < 1 or not os.path.exists(f"{assets}/vmlinux"):
        return None
    b = linux_bundle(assets, f"{work}/exec-guest", ["/urunit", "/bin/sh", "-c", "sleep 100000"])
    cid = "exec-bench"
    ur.cmd("create", "--bundle", b, cid)
    try:
        ur.cmd("start", cid)
        # the first exec waits for urunit's READY (the guest's boot): not timed
        subprocess.run(ur.argv("exec", cid, "/bin/true"), env=ur.env, check=True, timeout=600,
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        lat, rate = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            subprocess.run(ur.argv("exec", cid, "/bin/true"), env=ur.env, check=True, timeout=120,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            lat.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = subprocess.run(ur.argv("exec", cid, "/bin/sh", "-c", f"head -c {mib << 20} /dev/zero"),
                                 env=ur.env, check=True, timeout=1200, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE).stdout
            secs = time.perf_counter() - t0
            if len(out) != mib << 20:
                raise RuntimeError(f"exec gave {len(out)} bytes, not {mib << 20}")
            rate.append(mib / secs)
        return lat, rate
    finally:
        ur.cmd("delete", "--force", cid, check=False)
        reap_all()


def network_modes():
    """The pod_net test's side-by-side measurement (its printed table), or a reason it is absent."""
    r = subprocess.run(["cargo", "test", "-q", "-p", "urunc", "--test", "pod_net", "--",
                        "--ignored", "--nocapture", "--test-threads=1", "redirect_versus_pod_mode"],
                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=3600)
    lines = r.stdout.splitlines()
    start = next((i for i, l in enumerate(lines) if l.startswith("busybox httpd guest")), None)
    if r.returncode != 0 or start is None:
        return None, "network modes: the pod_net measurement failed: " + " | ".join(lines[-5:])
    table = []
    for l in lines[start:]:
        if not l.strip() or l.startswith("test "):
            break
        if l.strip(".") == "":  # the libtest progress dots of -q
            continue
        table.append(l)
    return table, None


def render(ex, modes, runs, mib):
    out = []
    if ex:
        lat, rate = ex
        s = lambda v: f"{statistics.median(v):.2f} ({min(v):.2f}–{max(v):.2f})"
        out += [f"exec into a running Linux guest (QEMU TCG, urunit's channel on the second serial "
                f"port), {runs} runs:", "",
                "| figure | median (min–max) |", "|---|---|",
                f"| `urunc exec ID /bin/true`, ms | {s([x * 1e3 for x in lat])} |",
                f"| stdout throughput of `head -c {mib} MiB /dev/zero`, MiB/s | {s(rate)} |", ""]
    if modes:
        out += ["Network modes, the same busybox httpd guest (`tests/pod_net/bench.rs`, debug urunc; "
                "the last column is pod over redirect):", "", "```"] + modes + ["```", ""]
    return out
