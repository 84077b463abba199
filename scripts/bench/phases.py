"""The measurements: lifecycles interleaved in random order, memory left per running container,
`list`, concurrent density and instruction counts."""
import concurrent.futures, os, statistics, subprocess, sys, time

from rt import reap_all, wait_pid


def lifecycle_rounds(runtimes, runs, tmp, rng, tag):
    """runs rounds; in each, every runtime does one lifecycle, in a fresh random order, so none
    always follows the same neighbour (and inherits its netns teardown)."""
    res = {r.name: [] for r in runtimes}
    for i in range(runs):
        order = list(runtimes)
        rng.shuffle(order)
        for r in order:
            res[r.name].append(r.lifecycle(f"{tag}-{i}", tmp))
    return res


def _smaps(pid):
    v = {}
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            p = line.split()
            if len(p) >= 2 and p[0].endswith(":") and p[1].isdigit():
                v[p[0][:-1]] = int(p[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return v


def runtime_processes(binary):
    """Pids of processes still running the runtime's own binary (not the workload)."""
    real, out = os.path.realpath(binary), []
    for e in os.listdir("/proc"):
        if e.isdigit():
            try:
                if os.readlink(f"/proc/{e}/exe") == real:
                    out.append(int(e))
            except OSError:
                pass
    return out


def memory_left(rt, n, tag, tmp):
    """Starts n sleeping containers, then sums the memory of every process still running the
    runtime's binary (urunc: its supervisors; runc, crun and youki leave none once the
    workload runs) and divides by n: the runtime's extra cost per running container.
    Returns (processes per container, Pss KiB, private KiB, Private_Dirty KiB)."""
    before = set(runtime_processes(rt.binary))
    for i in range(n):
        rt.create("sleep", f"{tag}-{i}", f"{tmp}/{tag}-{i}.pid")
        rt.cmd("start", f"{tag}-{i}")
    time.sleep(0.5)  # let every supervisor settle (not a timing assertion: memory only)
    pids = [p for p in runtime_processes(rt.binary) if p not in before]
    tot = [0, 0, 0]
    for p in pids:
        m = _smaps(p)
        if m:
            tot[0] += m.get("Pss", 0)
            tot[1] += m.get("Private_Clean", 0) + m.get("Private_Dirty", 0)
            tot[2] += m.get("Private_Dirty", 0)
    for i in range(n):
        rt.cmd("delete", "--force", f"{tag}-{i}")
    reap_all()
    return len(pids) / n, tot[0] / n, tot[1] / n, tot[2] / n


def list_time(rt, n, tag, tmp, reps=5):
    """Seconds of `list` with n created containers: (min, median, max) over reps."""
    for i in range(n):
        rt.create("sleep", f"{tag}-{i}", f"{tmp}/{tag}-{i}.pid")
    # let the containers' own start-up (urunc's supervisors setting up, crun's init waiting)
    # finish first: `list` is timed against idle containers, not beside 100 busy processes
    time.sleep(1)
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        subprocess.run(rt.argv("list"), env=rt.env, stdout=subprocess.DEVNULL, check=True)
        ts.append(time.perf_counter() - t0)
    for i in range(n):
        rt.cmd("delete", "--force", f"{tag}-{i}")
    reap_all()
    return min(ts), statistics.median(ts), max(ts)


def density(rt, n, tag, tmp):
    """n containers created+started concurrently, then deleted: (up wall, up+down wall, CPU)."""
    from rt import cpu_children
    c0, t0 = cpu_children(), time.perf_counter()

    def up(i):
        rt.create("sleep", f"{tag}-{i}", f"{tmp}/{tag}-{i}.pid")
        rt.cmd("start", f"{tag}-{i}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        list(ex.map(up, range(n)))
    t_up = time.perf_counter() - t0
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        list(ex.map(lambda i: rt.cmd("delete", "--force", f"{tag}-{i}"), range(n)))
    reap_all()
    return t_up, time.perf_counter() - t0, cpu_children() - c0


def _raise_nofile():
    """valgrind keeps some descriptors for itself and gives its client a hard NOFILE limit
    below ours: with a soft limit of 1024, a spec's `RLIMIT_NOFILE 1024` fails with EPERM.
    Raise the soft limit to the hard one for valgrind alone."""
    import resource
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _instructions(rt, outdir, *args):
    """Instructions executed by the runtime's own command process, counted by valgrind
    (repeatable whatever the load). Processes it forks keep running under valgrind but are not
    counted, nor what it execs (the workload). callgrind, except for runtimes with
    rt.counter == "lackey": callgrind aborts on the Go runtime's signal handling (an assertion
    in its threads.c, seen here with runc 1.1.5); lackey counts the same executed guest
    instructions (measured here: crun --version 1,294,603 under callgrind, 1,296,297 under
    lackey)."""
    os.makedirs(outdir, exist_ok=True)
    lackey = getattr(rt, "counter", "callgrind") == "lackey"
    tool = ["--tool=lackey", f"--log-file={outdir}/lk.%p"] if lackey else \
        ["--tool=callgrind", f"--callgrind-out-file={outdir}/cg.%p", f"--log-file={outdir}/log.%p"]
    with open(f"{outdir}/stderr", "ab") as err:
        p = subprocess.Popen(["valgrind", *tool, "--trace-children=no", "--child-silent-after-fork=yes",
                              rt.cg_binary, *rt.argv(*args)[1:]],
                             env=rt.cg_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                             preexec_fn=_raise_nofile, pass_fds=rt.cg_fds)
    rc = p.wait()
    log = f"{outdir}/{'lk' if lackey else 'log'}.{p.pid}"
    if rc != 0:
        tail = (open(log, errors="replace").read() + open(f"{outdir}/stderr", errors="replace").read())[-1500:]
        sys.exit(f"{rt.name} {args[0]} failed under valgrind (exit {rc}); the end of its log:\n{tail}")
    f = log if lackey else f"{outdir}/cg.{p.pid}"
    key = "guest instrs:" if lackey else "summary:"
    for line in open(f):
        if key in line and (lackey or line.startswith(key)):
            n = int(line.split(key)[1].split()[0].replace(",", ""))
            os.unlink(f)
            return n
    sys.exit(f"no instruction total in {f}")


def instructions(rt, tag, tmp, reps=3):
    """Median instructions of create, start, state (running) and delete (stopped). What create
    forks stays under valgrind, where urunc's supervisor cannot work (valgrind 3.19 lacks
    syscalls it needs): the container made under valgrind is deleted, and start, state and
    delete are counted on one created natively, the same way for every runtime."""
    res = {"create": [], "start": [], "state": [], "delete": []}
    out = f"{tmp}/callgrind-{rt.name}"
    for i in range(reps):
        cid = f"{tag}-{i}"
        pidfile = f"{tmp}/{cid}.pid"
        if getattr(rt, "cg_create", True):  # see the notes where it is False
            res["create"].append(_instructions(rt, out, "create", "--bundle", rt.bundles.get("cg", rt.bundles["sleep"]),
                                               "--pid-file", pidfile, f"{cid}v"))
            rt.cmd("delete", "--force", f"{cid}v")
            reap_all()
        rt.create("sleep", cid, pidfile)
        res["start"].append(_instructions(rt, out, "start", cid))
        res["state"].append(_instructions(rt, out, "state", cid))
        rt.cmd("kill", cid, "KILL")
        wait_pid(int(open(pidfile).read()))
        res["delete"].append(_instructions(rt, out, "delete", cid))
        reap_all()
    return {k: statistics.median(v) if v else None for k, v in res.items()}
