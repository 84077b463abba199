//! The container process: after `create` forks it, it enters the container's namespaces and
//! cgroup, finishes the setup `create` waits for, blocks on the create/start barrier, then runs
//! the monitor, forwards signals to it, reaps, and exits with the workload's status.

mod dhcp_socket;
mod error;
mod event_loop;
pub mod exec_server;
mod monitor;
mod qmp;
mod status;
pub mod sync;

pub use error::SupervisorError;

use crate::container::{State, BARRIER};
use crate::fault;
use crate::plan::{LaunchPlan, NetParams, PlanInput};
use crate::sandbox::namespaces;
use crate::sys;
use crate::timestamps as ts;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixDatagram;

/// The launch plan as JSON in the state directory, written with `--debug` only.
pub const PLAN_FILE: &str = "plan.json";

/// Everything the container process needs, prepared by `create` before the fork.
pub struct Setup {
    /// The record `create` will write once the container is ready; the container process
    /// never reads or writes the file (what it learns and makes travels over `sync`).
    pub state: State,
    pub ns: namespaces::Plan,
    pub hostname: Option<String>,
    pub rootfs_propagation: Option<String>,
    pub rootless: bool,
    /// The config file's `[sandbox]` (how the monitor is confined).
    pub sandbox: crate::config::SandboxConfig,
    /// The config file's `[network]` (the default network mode).
    pub network: crate::config::NetworkConfig,
    pub plan_input: PlanInput,
    /// The pty slave when `process.terminal` is set.
    pub tty: Option<OwnedFd>,
    /// `--preserve-fds N`: fds 3..3+N pass through to the monitor.
    pub preserve_fds: u32,
    /// `create` sends `Go` without waiting for `NsReady` (no prestart or createRuntime hook
    /// and no user namespace to map, so it has nothing to do between the two): the container
    /// process then sends no `NsReady`, and `Ready` is the one message `create` waits for.
    pub early_go: bool,
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
    enter(&mut s, sync)?;
    ts::capture(5);
    if !s.early_go {
        send(sync, sync::Sync::NsReady)?;
    }
    let Some(sync::Sync::Go { pid, start }) = recv(sync)? else {
        return Ok(1);
    };
    fault::point("container:go")?;
    ts::capture(9);
    // our pid as the host sees it (we may be pid 1 of our own namespace)
    (s.state.pid, s.state.pid_start) = (pid, start);
    let hooks = s.state.urunc.hooks.clone();
    crate::hooks::run(
        "createContainer",
        &hooks.create_container,
        &s.state.oci("creating"),
    )?;
    fault::point("container:create-container")?;
    ts::capture(10);
    ts::capture(15);
    // The monitor's leased host uid, before the network: a tap opened by name is made its.
    // create fails from here on until `Ready`, so no delete follows: its errors end the lease.
    let host_uid = crate::sandbox::monitor_host_uid(
        &s.plan_input.process,
        &s.sandbox,
        &s.state.dir.to_string_lossy(),
    )
    .map_err(SupervisorError::ConfineMonitor)?;
    let release_lease = |_: &crate::error::Error| crate::sandbox::monitor_ns::release(&s.state.dir);
    // Network discovery runs after the hooks: docker moves its veth in from a prestart hook.
    let net = crate::net::setup(&s.state, &s.plan_input, &s.network, host_uid)
        .inspect_err(release_lease)?;
    // what we made, for our own teardown below; `create` records it from `Ready`
    s.state.urunc.tap = net.as_ref().map(|n| n.tap.clone());
    ts::capture(16);
    // create fails from here on, so no delete follows: every error takes the tap and the
    // redirect down (a tap and filters left behind would blackhole the pod)
    let (plan, mut links) = after_network(&mut s, net, sync).inspect_err(|_| {
        crate::net::teardown_own(&s.state);
        crate::sandbox::monitor_ns::release(&s.state.dir);
    })?;
    // Work for `start` done while nobody waits: create has its answer and exits, and the
    // engine has yet to call start. Its errors are start's verdict.
    let early = monitor::prepare_launch(&s, &plan, host_uid);

    // The barrier: blocks until `start` opens the fifo for reading.
    let fifo_path = s.state.dir.join(BARRIER);
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(&fifo_path)
        .map_err(crate::error::io("open the start barrier"))?;
    ts::capture(14);
    fault::point("container:barrier")?;
    let _ = std::fs::remove_file(&fifo_path);
    let started =
        early.and_then(|(deny, waiting)| monitor::launch(&s, &plan, (&deny, host_uid), waiting));
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
    fault::point("container:started")?;
    links.close_monitor_ends();
    // No network teardown here: the confined supervisor holds no capability. The tap (not
    // persistent) goes with the monitor's fd; `delete` removes the redirect rules.
    Ok(event_loop::run(monitor, &plan, &mut links))
}

/// Takes the terminal, enters the cgroup and the namespaces (the user namespace mapped by
/// `create`), makes the mounts and sets the hostname.
fn enter(s: &mut Setup, sync: &UnixDatagram) -> crate::error::Result<()> {
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
            _ => Err(crate::error::Error::from(SupervisorError::NotMapped)),
        }
    })?;
    fault::point("container:namespaces")?;
    let own_mount_ns = s.ns.has("mount") && s.ns.path_of("mount").is_none();
    if own_mount_ns {
        make_root_private(s.rootfs_propagation.as_deref())?;
    }
    // bind mounts inside a rootfs shared with the guest, in the container's namespace only
    crate::storage::share(&s.plan_input, own_mount_ns)?;
    fault::point("container:mounts")?;
    if let Some(h) = s.hostname.as_deref().filter(|h| !h.is_empty()) {
        if s.ns.has("uts") {
            nix::unistd::sethostname(h).map_err(sys_err("sethostname"))?;
        }
    }
    fault::point("container:hostname")?;
    Ok(())
}

/// The launch input, complete: what `create` prepared (paths, storage, process, limits) with
/// what the container process made, the network and the monitor's ends of the links. The one
/// place the two meet; the plan is built from this.
fn launch_input(base: &PlanInput, net: Option<NetParams>, links: &event_loop::Links) -> PlanInput {
    let (guest_channel_fd, qmp_fd) = links.monitor_fds();
    PlanInput {
        net,
        guest_channel_fd,
        qmp_fd,
        ..base.clone()
    }
}

/// The setup after the network is wired, up to telling `create` the container is ready.
fn after_network(
    s: &mut Setup,
    net: Option<NetParams>,
    sync: &UnixDatagram,
) -> crate::error::Result<(LaunchPlan, event_loop::Links)> {
    use crate::error::sys as sys_err;
    fault::point("container:network")?;
    // urunit's channel and QEMU's monitor, when the plan may use them (event_loop::Links)
    let mut links = event_loop::Links::new(&s.plan_input)
        .map_err(crate::error::io("create the guest channel"))?;
    fault::point("container:channel")?;
    s.plan_input = launch_input(&s.plan_input, net, &links);
    let plan = crate::launch::build(&s.plan_input)
        .map(|p| crate::sandbox::plan_for_view(p, &s.plan_input.rootfs))?;
    crate::sandbox::check_available(&s.sandbox, plan.seccomp)?;
    links.keep_used(&plan);
    links
        .open_exec(&s.state.dir)
        .map_err(crate::error::io("open the exec socket"))?;
    links
        .open_dhcp(&plan, &s.plan_input)
        .map_err(SupervisorError::from)?;
    fault::point("container:plan")?;
    crate::storage::materialize(&plan, s.plan_input.process.uid, s.plan_input.process.gid)
        .map_err(crate::error::io("prepare the guest's files"))?;
    fault::point("container:materialize")?;
    ts::capture(17);
    log::debug!("launch plan: {:?}", plan.argv);
    if log::log_enabled!(log::Level::Debug) {
        // `--debug` only: the plan as built, for a person (and the tests) to read
        let plan_json = serde_json::to_vec_pretty(&plan).unwrap_or_default();
        crate::container::write_atomic(&s.state.dir.join(PLAN_FILE), &plan_json, 0o600)?;
        fault::point("container:plan-json")?;
    }
    sys::exit_on_signals().map_err(sys_err("install signal handlers"))?;
    fault::point("container:ready")?;
    let tap = s.state.urunc.tap.clone();
    send(sync, sync::Sync::Ready { tap })?;
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
        other => return Err(SupervisorError::Propagation(other.to_string()).into()),
    };
    mount(None::<&str>, "/", None::<&str>, flags, None::<&str>)
        .map_err(crate::error::sys("set mount propagation of /"))
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
