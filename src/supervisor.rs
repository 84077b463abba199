//! The container process: after `create` forks it, it enters the container's namespaces and
//! cgroup, finishes the setup `create` waits for, blocks on the create/start barrier, then runs
//! the monitor, forwards signals to it, reaps, and exits with the workload's status.

mod dhcp_socket;
mod event_loop;
pub mod exec_server;
pub mod outbox;
mod qmp;
mod status;
pub mod sync;

use crate::container::{State, BARRIER};
use crate::fault;
use crate::plan::{LaunchPlan, PlanInput};
use crate::sandbox::{namespaces, Filters};
use crate::sys;
use crate::timestamps as ts;
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;

/// Everything the container process needs, prepared by `create` before the fork.
pub struct Setup {
    pub state: State,
    pub ns: namespaces::Plan,
    pub hostname: Option<String>,
    pub rootfs_propagation: Option<String>,
    pub rootless: bool,
    pub plan_input: PlanInput,
    /// The pty slave when `process.terminal` is set.
    pub tty: Option<OwnedFd>,
    /// `--preserve-fds N`: fds 3..3+N pass through to the monitor.
    pub preserve_fds: u32,
}

/// Entry point of the forked container process. Never returns.
pub fn container_main(setup: Setup, sync: UnixDatagram) -> ! {
    close_inherited(&setup);
    ts::capture(4);
    crate::proctitle::set(&["urunc", "supervisor", &setup.plan_input.id]);
    let code = match run(setup, &sync) {
        Ok(code) => code,
        Err(e) => {
            let _ = sync::send(&sync, &sync::Sync::Error(e.to_string()));
            1
        }
    };
    std::process::exit(code)
}

/// Closes the fds the caller of `create` let us inherit, as runc does: they would stay open for
/// the container's whole life (a shim's pipe would never see EOF). Everything urunc opens is
/// close-on-exec, so an fd without the flag is the caller's, unless it is passed on purpose:
/// `--preserve-fds` (3..3+N) and the console's pty.
fn close_inherited(s: &Setup) {
    use nix::fcntl::{fcntl, FcntlArg, FdFlag};
    let tty = s.tty.as_ref().map(|t| t.as_raw_fd());
    let preserved = 3..RawFd::try_from(s.preserve_fds).map_or(RawFd::MAX, |n| n.saturating_add(3));
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for fd in fds {
        if fd < 3 || preserved.contains(&fd) || Some(fd) == tty {
            continue;
        }
        // the directory's own fd is gone by now (EBADF), and it was close-on-exec anyway
        match fcntl(fd, FcntlArg::F_GETFD) {
            Ok(flags) if !FdFlag::from_bits_truncate(flags).contains(FdFlag::FD_CLOEXEC) => {
                let _ = nix::unistd::close(fd);
            }
            _ => {}
        }
    }
}

fn send(sock: &UnixDatagram, msg: sync::Sync) -> crate::error::Result<()> {
    sync::send(sock, &msg).map_err(crate::error::io("sync with create"))
}

fn recv(sock: &UnixDatagram) -> crate::error::Result<Option<sync::Sync>> {
    sync::recv(sock).map_err(crate::error::io("sync with create"))
}

fn run(mut s: Setup, sync: &UnixDatagram) -> crate::error::Result<i32> {
    use crate::error::sys as sys_err;
    fault::point("container:begin")?;
    if let Some(tty) = &s.tty {
        nix::unistd::setsid().map_err(sys_err("setsid"))?;
        sys::set_controlling_tty(tty.as_raw_fd()).map_err(sys_err("set controlling terminal"))?;
        for fd in 0..3 {
            nix::unistd::dup2(tty.as_raw_fd(), fd).map_err(sys_err("dup2 terminal"))?;
        }
    }
    drop(s.tty.take());
    if let Some(cg) = s.state.cgroup() {
        cg.enter_self(s.rootless)?;
    }
    fault::point("container:cgroup")?;
    s.ns.enter_others(|| {
        send(sync, sync::Sync::UserNs)?;
        match recv(sync)? {
            Some(sync::Sync::Mapped) => Ok(()),
            _ => Err(crate::error::Error::Msg(
                "create did not map the user namespace".into(),
            )),
        }
    })?;
    fault::point("container:namespaces")?;
    let own_mount_ns = s.ns.has("mount") && s.ns.path_of("mount").is_none();
    if own_mount_ns {
        make_root_private(s.rootfs_propagation.as_deref())?;
    }
    // bind mounts inside a rootfs shared with the guest, in the container's namespace only
    crate::storage::share(&s.plan_input, own_mount_ns).map_err(crate::error::Error::Msg)?;
    fault::point("container:mounts")?;
    if let Some(h) = s.hostname.as_deref().filter(|h| !h.is_empty()) {
        if s.ns.has("uts") {
            nix::unistd::sethostname(h).map_err(sys_err("sethostname"))?;
        }
    }
    fault::point("container:hostname")?;
    ts::capture(5);
    send(sync, sync::Sync::NsReady)?;
    if recv(sync)? != Some(sync::Sync::Go) {
        return Ok(1);
    }
    fault::point("container:go")?;
    ts::capture(9);
    // create recorded our pid in the state file meanwhile
    s.state.reload()?;
    let hooks = s.state.urunc.hooks.clone();
    crate::hooks::run(
        "createContainer",
        &hooks.create_container,
        &s.state.oci("creating"),
    )?;
    fault::point("container:create-container")?;
    ts::capture(10);
    ts::capture(15);
    // Network discovery runs after the hooks: docker moves its veth in from a prestart hook.
    s.plan_input.net = crate::net::setup(&mut s.state, &s.plan_input)?;
    ts::capture(16);
    // create fails from here on, so no delete follows: every error takes the tap and the
    // redirect down (a tap and filters left behind would blackhole the pod)
    let (plan, mut links) =
        after_network(&mut s, sync).inspect_err(|_| crate::net::teardown_own(&s.state))?;

    // The barrier: blocks until `start` opens the fifo for reading.
    let fifo_path = s.state.dir.join(BARRIER);
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo_path)
        .map_err(crate::error::io("open the start barrier"))?;
    ts::capture(14);
    let _ = std::fs::remove_file(&fifo_path);
    let started = launch(&s, &plan);
    let monitor = match started {
        Ok(pid) => {
            let _ = fifo.write_all(b"ok");
            pid
        }
        Err(e) => {
            let _ = fifo.write_all(e.to_string().as_bytes());
            return Ok(1);
        }
    };
    drop(fifo);
    links.close_monitor_ends();
    // No network teardown here: the confined supervisor holds no capability. The tap (not
    // persistent) goes with the monitor's fd; `delete` removes the redirect rules.
    Ok(event_loop::run(monitor, &plan, &mut links))
}

/// The setup after the network is wired, up to telling `create` the container is ready.
fn after_network(
    s: &mut Setup,
    sync: &UnixDatagram,
) -> crate::error::Result<(LaunchPlan, event_loop::Links)> {
    use crate::error::sys as sys_err;
    fault::point("container:network")?;
    // urunit's channel and QEMU's monitor, when the plan may use them (event_loop::Links)
    let mut links = event_loop::Links::new(&mut s.plan_input)
        .map_err(crate::error::io("create the guest channel"))?;
    fault::point("container:channel")?;
    let plan = crate::launch::build(&s.plan_input)
        .map(|p| crate::sandbox::plan_for_view(p, &s.plan_input.rootfs))?;
    crate::sandbox::check_available(&s.state.urunc.config.sandbox, plan.seccomp)
        .map_err(|e| crate::error::Error::Msg(e.to_string()))?;
    links.keep_used(&plan);
    links
        .open_exec(&s.state.dir)
        .map_err(crate::error::io("open the exec socket"))?;
    links
        .open_dhcp(&plan, &s.plan_input)
        .map_err(|e| crate::error::Error::Msg(e.to_string()))?;
    fault::point("container:plan")?;
    crate::storage::materialize(&plan, s.plan_input.process.uid, s.plan_input.process.gid)
        .map_err(crate::error::io("prepare the guest's files"))?;
    fault::point("container:materialize")?;
    ts::capture(17);
    log::debug!("launch plan: {:?}", plan.argv);
    let plan_json = serde_json::to_vec_pretty(&plan).unwrap_or_default();
    crate::container::write_atomic(&s.state.dir.join("plan.json"), &plan_json, 0o600)?;
    fault::point("container:plan-json")?;
    s.state.save()?;
    fault::point("container:state")?;
    sys::exit_on_signals().map_err(sys_err("install signal handlers"))?;
    fault::point("container:ready")?;
    send(sync, sync::Sync::Ready)?;
    Ok((plan, links))
}

fn make_root_private(propagation: Option<&str>) -> crate::error::Result<()> {
    use nix::mount::{mount, MsFlags};
    let flags = match propagation.unwrap_or("rslave") {
        "rslave" | "" => MsFlags::MS_SLAVE | MsFlags::MS_REC,
        "slave" => MsFlags::MS_SLAVE,
        "rprivate" => MsFlags::MS_PRIVATE | MsFlags::MS_REC,
        "private" => MsFlags::MS_PRIVATE,
        "rshared" => MsFlags::MS_SHARED | MsFlags::MS_REC,
        "shared" => MsFlags::MS_SHARED,
        "runbindable" => MsFlags::MS_UNBINDABLE | MsFlags::MS_REC,
        "unbindable" => MsFlags::MS_UNBINDABLE,
        other => {
            return Err(crate::error::Error::Msg(format!(
                "rootfsPropagation={other} is not supported"
            )))
        }
    };
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(crate::error::sys("set mount propagation of /"))
}

/// Runs startContainer hooks and forks the monitor; returns its pid once execve succeeded.
fn start_monitor(s: &Setup, plan: &LaunchPlan, deny: &Filters) -> crate::error::Result<Pid> {
    use crate::error::{sys as sys_err, Error};
    let hooks = &s.state.urunc.hooks;
    crate::hooks::run(
        "startContainer",
        &hooks.start_container,
        &s.state.oci("created"),
    )?;
    // Block the forwarded signals before forking so none is lost; the child unblocks them.
    let mut mask = SigSet::empty();
    for sig in sys::FORWARDED.iter().chain([Signal::SIGCHLD].iter()) {
        mask.add(*sig);
    }
    mask.thread_block().map_err(sys_err("block signals"))?;
    let host_uid = crate::sandbox::monitor_host_uid(
        plan,
        &s.plan_input.process,
        &s.state.urunc.config.sandbox,
        &s.state.dir.to_string_lossy(),
    )
    .map_err(|e| Error::Msg(format!("cannot confine the monitor: {e}")))?;
    ts::capture(18);
    let (rd, wr) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(sys_err("pipe"))?;
    let me = nix::unistd::getpid();
    match sys::fork().map_err(sys_err("fork monitor"))? {
        ForkResult::Child => {
            drop(rd);
            let err = exec_monitor(s, plan, me, host_uid, deny);
            let mut w = std::fs::File::from(wr);
            let _ = w.write_all(err.as_bytes());
            // SAFETY: _exit in the forked child skips the parent's atexit state.
            unsafe { libc::_exit(127) }
        }
        ForkResult::Parent { child } => {
            drop(wr);
            let mut msg = String::new();
            let _ = std::fs::File::from(rd).read_to_string(&mut msg);
            if msg.is_empty() {
                Ok(child)
            } else {
                let _ = waitpid(child, None);
                Err(Error::Msg(msg))
            }
        }
    }
}

/// Starts the monitor and confines the supervisor. The seccomp filter is compiled once, before
/// the fork: the monitor (deny-list plans) and the supervisor install the same one.
fn launch(s: &Setup, plan: &LaunchPlan) -> crate::error::Result<Pid> {
    let deny = crate::sandbox::supervisor_filters()
        .map_err(|e| crate::error::Error::Msg(format!("cannot compile the seccomp filter: {e}")))?;
    let monitor = start_monitor(s, plan, &deny)?;
    confine_self(s, monitor, &deny)
}

/// Once the monitor runs, the supervisor drops to its user and confines itself
/// (`sandbox::confine_supervisor`); on failure the monitor is killed and `start` fails.
fn confine_self(s: &Setup, monitor: Pid, deny: &Filters) -> crate::error::Result<Pid> {
    if let Err(e) = crate::sandbox::confine_supervisor(&s.plan_input.process, deny) {
        let _ = kill(monitor, Signal::SIGKILL);
        let _ = waitpid(monitor, None);
        return Err(crate::error::Error::Msg(format!(
            "cannot confine the supervisor: {e}"
        )));
    }
    Ok(monitor)
}

/// In the forked monitor process: confine, then execve. Returns only the error text.
fn exec_monitor(
    s: &Setup,
    plan: &LaunchPlan,
    supervisor: Pid,
    host_uid: Option<u32>,
    deny: &Filters,
) -> String {
    sys::reset_signals();
    if let Err(e) = sys::cloexec_from(3) {
        return format!("cannot mark fds close-on-exec: {e}");
    }
    let preserved = 3..3 + s.preserve_fds as i32;
    for fd in plan.keep_fds.iter().copied().chain(preserved) {
        let _ = nix::fcntl::fcntl(
            fd as RawFd,
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
        );
    }
    let confined = crate::sandbox::confine_monitor(
        plan,
        &s.plan_input,
        &s.state.dir,
        &s.state.urunc.config.sandbox,
        host_uid,
        deny,
    );
    let seccomp = match confined {
        Ok(pending) => pending,
        Err(e) => return format!("cannot confine the monitor: {e}"),
    };
    match sys::set_pdeathsig(Signal::SIGKILL, supervisor) {
        Ok(false) => {}
        Ok(true) => return "the supervisor exited before the monitor started".into(),
        Err(e) => return format!("cannot set the parent-death signal: {e}"),
    }
    let c = |v: &str| std::ffi::CString::new(v).unwrap_or_default();
    let argv: Vec<std::ffi::CString> = plan.argv.iter().map(|a| c(a)).collect();
    let env: Vec<std::ffi::CString> = plan.env.iter().map(|a| c(a)).collect();
    let prog = c(&plan.program.to_string_lossy());
    if let Err(e) = seccomp.finish() {
        return format!("cannot confine the monitor: {e}");
    }
    match nix::unistd::execve(&prog, &argv, &env) {
        Err(e) => format!("cannot execute the monitor {}: {e}", plan.program.display()),
        Ok(never) => match never {},
    }
}

/// Without an event loop: waits for the monitor alone (QEMU's status, no guest report).
fn wait_plain(monitor: Pid) -> i32 {
    loop {
        match waitpid(monitor, None) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => continue,
            Err(nix::Error::EINTR) => continue,
            Err(_) => return 1,
        }
    }
}

/// Helper for create: wraps a raw fd from socketpair.
pub fn datagram_from(fd: OwnedFd) -> UnixDatagram {
    // SAFETY: `fd` is a freshly created, owned unix socket.
    unsafe { UnixDatagram::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(fd)) }
}
