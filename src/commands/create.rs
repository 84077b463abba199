//! `create`: validate everything that can be validated, fork the container process, record
//! state and the pid file, run prestart/createRuntime hooks, and exit 0 only once the container
//! process reports that it is ready to start.

use super::create_input::plan_input;
use super::Ctx;
use crate::cli::CreateArgs;
use crate::config::Config;
use crate::container::{self, State, BARRIER};
use crate::error::{io, sys, Error, Result};
use crate::plan::ProcessParams;
use crate::sandbox::{cgroups, namespaces, rootless, userns};
use crate::spec::Spec;
use crate::supervisor::{
    self, Setup, MSG_ERROR, MSG_GO, MSG_MAPPED, MSG_NS_READY, MSG_READY, MSG_USERNS,
};
use crate::timestamps as ts;
use crate::unikernel::UnikernelConfig;
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::{ForkResult, Pid};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// A container `create` made; `run` waits on its pid.
pub struct Created {
    pub pid: Pid,
    pub state: State,
}

/// Undoes a half-made container when create fails: kill, cgroup, state directory.
struct Undo {
    /// Block devices taken from the host (mounted back), their fds.
    storage: Option<crate::storage::Prepared>,
    dir: Option<PathBuf>,
    cgroup: Option<cgroups::Cgroup>,
    child: Option<Pid>,
}

impl Drop for Undo {
    fn drop(&mut self) {
        if let Some(pid) = self.child {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        if let Some(cg) = &self.cgroup {
            cg.remove();
        }
        if let Some(s) = self.storage.as_mut() {
            s.undo();
        }
        if let Some(d) = &self.dir {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

fn absolute(p: &Path, what: &str) -> Result<PathBuf> {
    let p = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(io("current directory"))?
            .join(p)
    };
    std::fs::canonicalize(&p).map_err(io(format!("{what} {}", p.display())))
}

pub fn run(ctx: &Ctx, a: &CreateArgs) -> Result<i32> {
    create(ctx, a)?;
    Ok(0)
}

pub fn create(ctx: &Ctx, a: &CreateArgs) -> Result<Created> {
    let t0 = std::time::SystemTime::now();
    container::validate_id(&a.id)?;
    let bundle = absolute(&a.bundle, "bundle")?;
    let spec = Spec::load(&bundle)?;
    let cfg = Config::load()?;
    ts::init(&cfg.timestamps, &a.id);
    ts::capture_at(0, t0);
    let rootfs = absolute(
        &spec.rootfs(&bundle)?,
        "container rootfs (root.path of config.json)",
    )?;
    let Some(uk) = UnikernelConfig::detect(&spec.annotations, &rootfs)? else {
        return Err(crate::delegate::exec(&cfg.delegate.runtime).into());
    };
    let process = spec.process()?.clone();
    let linux = spec.linux()?.clone();
    let ns = namespaces::Plan::new(&linux.namespaces, &linux.uid_mappings, &linux.gid_mappings)?;
    // rootless: not real root on the host (also root inside rootless podman's user namespace)
    let rootless = ctx.rootless() || rootless::in_user_namespace();
    rootless::check(&ns)?;
    let (mut input, pending) = plan_input(&a.id, &uk, &cfg, &spec, &rootfs, &bundle, &ctx.root)?;
    if process.terminal && a.console_socket.is_none() {
        return Err(Error::Msg(
            "process.terminal is true but no --console-socket was given".into(),
        ));
    }

    ts::capture(1);
    let dir = State::create_dir(&ctx.root, &a.id)?;
    let mut undo = Undo {
        storage: None,
        dir: Some(dir.clone()),
        cgroup: None,
        child: None,
    };
    input.work_dir = work_dir(&dir, &input.process)?;
    // before the container's mount namespace copies the host's: see storage::takeover
    undo.storage = Some(crate::storage::prepare(&mut input, pending, &dir).map_err(Error::Msg)?);
    nix::unistd::mkfifo(
        &dir.join(BARRIER),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(sys("create the start barrier"))?;
    let cg_path =
        cgroups::resolve_path(linux.cgroups_path.as_deref(), ctx.g.systemd_cgroup, &a.id)?;
    let cg = cgroups::Cgroup::new(cg_path);
    cg.create(rootless)?;
    undo.cgroup = Some(cg.clone());
    if let Some(r) = &linux.resources {
        cg.apply_checked(r, rootless)?;
    }

    let mut state = State {
        oci_version: if spec.oci_version.is_empty() {
            "1.2.0".into()
        } else {
            spec.oci_version.clone()
        },
        id: a.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: bundle.clone(),
        rootfs: rootfs.clone(),
        created: crate::log::rfc3339_now(),
        annotations: spec.annotations.clone(),
        owner: String::new(),
        urunc: container::Extra {
            unikernel: uk,
            config: cfg,
            cgroup: Some(cg),
            pid_ns: ns.new_pid(),
            netns: None,
            tap: None,
            hooks: spec.hooks(),
        },
        dir: dir.clone(),
    };
    state.urunc.netns = ns.path_of("network").map(PathBuf::from);

    let tty = match &a.console_socket {
        Some(sock) if process.terminal => Some(send_console(sock)?),
        _ => None,
    };
    let (parent_end, child_end) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("socketpair"))?;
    let mut setup = Setup {
        state: state.clone(),
        ns,
        hostname: spec.hostname.clone(),
        rootfs_propagation: linux.rootfs_propagation.clone(),
        rootless,
        plan_input: input,
        tty,
        preserve_fds: a.preserve_fds,
    };
    ts::capture(2);
    let own_userns = !nix::unistd::geteuid().is_root() && setup.ns.user_maps().is_some();
    if own_userns {
        // an unprivileged caller cannot make the PID namespace outside the user namespace
        setup.ns.enter_user_here()?;
    }
    let user_maps = setup.ns.user_maps().cloned();
    let own_pidns = setup.ns.enter_pid_for_children()?;
    ts::capture(3);
    let fork = crate::sys::fork().map_err(sys("fork the container process"));
    if let Ok(ForkResult::Child) = fork {
        drop(parent_end);
        drop(own_pidns);
        std::mem::forget(undo);
        supervisor::container_main(setup, supervisor::datagram_from(child_end));
    }
    if let Some(own) = own_pidns {
        // from inside a user namespace (its own, or rootless podman's), create may not rejoin
        // the initial PID namespace: its hooks then run in the container's (rootless only)
        if !own_userns && !rootless::in_user_namespace() {
            namespaces::restore_pid(own)?;
        }
    }
    let ForkResult::Parent { child } = fork? else {
        unreachable!("the child never returns")
    };
    undo.child = Some(child);
    drop(child_end);
    drop(setup);
    let sync = supervisor::datagram_from(parent_end);
    if let Some(maps) = &user_maps {
        expect(&sync, MSG_USERNS)?;
        maps.write(child).map_err(namespaces::NsError::from)?;
        sync.send(MSG_MAPPED)
            .map_err(io("sync with the container process"))?;
    }
    expect(&sync, MSG_NS_READY)?;
    ts::capture(6);

    state.pid = child.as_raw();
    state.pid_start = container::process_start_time(child.as_raw())
        .ok_or_else(|| Error::Msg("the container process exited during create".into()))?;
    if state.urunc.netns.is_none() {
        state.urunc.netns = Some(PathBuf::from(format!("/proc/{}/ns/net", child.as_raw())));
    }
    state.save()?;
    if let Some(maps) = &user_maps {
        userns::chown_dir(&dir, maps).map_err(namespaces::NsError::from)?;
    }
    if let Some(pf) = &a.pid_file {
        let pf = if pf.is_absolute() {
            pf.clone()
        } else {
            std::env::current_dir().map_err(io("cwd"))?.join(pf)
        };
        container::write_atomic(&pf, child.as_raw().to_string().as_bytes(), 0o644)?;
    }
    let hooks = &state.urunc.hooks;
    crate::hooks::run("prestart", &hooks.prestart, &state.oci("creating"))?;
    crate::hooks::run(
        "createRuntime",
        &hooks.create_runtime,
        &state.oci("creating"),
    )?;
    ts::capture(7);
    sync.send(MSG_GO)
        .map_err(io("sync with the container process"))?;
    ts::capture(8);
    expect(&sync, MSG_READY)?;
    undo.child = None;
    undo.cgroup = None;
    undo.dir = None;
    // the container process holds the devices' fds now
    undo.storage = None;
    // The container process saved the state with what it learnt (tap, netns).
    let state = State::load(&ctx.root, &a.id)?;
    Ok(Created { pid: child, state })
}

fn expect(sync: &std::os::unix::net::UnixDatagram, want: &[u8]) -> Result<()> {
    let mut buf = vec![0u8; 65536];
    let n = sync
        .recv(&mut buf)
        .map_err(io("sync with the container process"))?;
    let got = &buf[..n];
    if got == want {
        return Ok(());
    }
    if let Some(msg) = got.strip_prefix(MSG_ERROR) {
        return Err(Error::Msg(String::from_utf8_lossy(msg).into_owned()));
    }
    Err(Error::Msg(
        "the container process exited during create".into(),
    ))
}

/// The private directory for the monitor's generated files (Firecracker's config, urunit's),
/// inside the state directory so that `delete` removes it, owned by the monitor's user. Made
/// and chowned through fds (`storage::workdir`): the state directory is root's, so the uid
/// cannot put a link in its place.
fn work_dir(dir: &Path, p: &ProcessParams) -> Result<PathBuf> {
    crate::storage::workdir::Dir::open(dir)
        .and_then(|d| d.make_dir("work", 0o700, p.uid, p.gid))
        .map_err(io("create the work directory"))?;
    Ok(dir.join("work"))
}

/// Opens a pty, sends its master over the console socket, returns the slave.
fn send_console(sock: &Path) -> Result<OwnedFd> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let pty = nix::pty::openpty(None, None).map_err(sys("openpty"))?;
    let stream = std::os::unix::net::UnixStream::connect(sock)
        .map_err(io(format!("connect to console socket {}", sock.display())))?;
    let fds = [pty.master.as_raw_fd()];
    let name = b"/dev/ptmx";
    let iov = [std::io::IoSlice::new(name)];
    sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(sys("send the console to --console-socket"))?;
    Ok(pty.slave)
}
