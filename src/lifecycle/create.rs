//! `create`: validate everything that can be validated, fork the container process, record
//! state and the pid file, run prestart/createRuntime hooks, and exit 0 only once the container
//! process reports that it is ready to start.

use super::create_input::plan_input;
use super::create_sync::{expect, gone, net_intent, sync_pair, wait_namespaces};
use super::create_undo::Undo;
use super::{CreateOptions, LifecycleError};
use crate::config::Config;
use crate::container::{self, State, BARRIER};
use crate::error::{io, sys, Result};
use crate::fault;
use crate::plan::{PlanInput, ProcessParams};
use crate::sandbox::{cgroups, namespaces, rootless, userns};
use crate::spec::Spec;
use crate::storage::mountinfo;
use crate::supervisor::{
    self,
    sync::{self as msg, Sync},
    Setup,
};
use crate::timestamps as ts;
use crate::unikernel::UnikernelConfig;
use nix::unistd::{ForkResult, Pid};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// A container `create` made; `run` waits on its pid.
pub struct Created {
    pub pid: Pid,
    pub state: State,
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

/// Everything `create` decides before it leaves anything on the host.
struct Checked {
    bundle: PathBuf,
    rootfs: PathBuf,
    spec: Spec,
    cfg: Config,
    linux: crate::spec::Linux,
    terminal: bool,
    ns: namespaces::Plan,
    rootless: bool,
    /// Whether create runs in a user namespace other than the initial one (read once).
    in_userns: bool,
    input: PlanInput,
    pending: crate::storage::Pending,
    mounts: mountinfo::Table,
}

fn check(a: &CreateOptions, t0: std::time::SystemTime) -> Result<Checked> {
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
    let terminal = spec.process()?.terminal;
    let linux = spec.linux()?.clone();
    let ns = namespaces::Plan::new(&linux.namespaces, &linux.uid_mappings, &linux.gid_mappings)?;
    // rootless: not real root on the host (also root inside rootless podman's user namespace)
    let in_userns = rootless::in_user_namespace();
    let rootless = a.rootless || in_userns;
    rootless::check(&ns)?;
    // read at most once per create, and only when needed: storage, then the cgroup hierarchies
    let mounts = mountinfo::Table::lazy();
    let (input, pending) = plan_input(&a.id, &uk, &cfg, &spec, &rootfs, &bundle, &a.root, &mounts)?;
    if terminal && a.console_socket.is_none() {
        return Err(LifecycleError::TerminalWithoutSocket.into());
    }
    fault::point("create:checked")?;
    Ok(Checked {
        bundle,
        rootfs,
        spec,
        cfg,
        linux,
        terminal,
        ns,
        rootless,
        in_userns,
        input,
        pending,
        mounts,
    })
}

/// Creates the container `a.id` from its bundle; on any failure, nothing is left behind.
pub fn create(a: &CreateOptions) -> Result<Created> {
    let t0 = std::time::SystemTime::now();
    fault::set_creator();
    let mut c = check(a, t0)?;
    ts::capture(1);
    let mut undo = Undo::begin(&a.root, &a.id)?;
    fault::point("create:journal")?;
    let dir = undo.dir.clone();
    c.input.work_dir = work_dir(&dir, &c.input.process)?;
    fault::point("create:work-dir")?;
    // before the container's mount namespace copies the host's: see storage::takeover
    let pending = std::mem::take(&mut c.pending);
    let prepared = crate::storage::prepare(&c.input, pending, &dir)?;
    prepared.fill(&mut c.input);
    undo.storage = Some(prepared);
    fault::point("create:storage")?;
    nix::unistd::mkfifo(
        &dir.join(BARRIER),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .map_err(sys("create the start barrier"))?;
    fault::point("create:barrier")?;
    let cg = cgroup(a, &c, &mut undo)?;
    let state = new_state(a, &c, cg, &dir);
    // the container process wires the network only in a network namespace of its own
    let own_netns = c.ns.has("network");
    let (child, sync, user_maps) = fork_container(a, c, state.clone(), &mut undo)?;
    let forked = Forked {
        child,
        sync,
        user_maps,
        own_netns,
    };
    let state = finish(a, state, &forked, &mut undo)?;
    fault::point("create:done")?;
    undo.armed = false;
    Ok(Created { pid: child, state })
}

/// Notes the cgroup in the journal, then makes it and applies the limits.
fn cgroup(a: &CreateOptions, c: &Checked, undo: &mut Undo) -> Result<cgroups::Cgroup> {
    let cg_path = cgroups::resolve_path(c.linux.cgroups_path.as_deref(), a.systemd_cgroup, &a.id)?;
    // a host whose mount table cannot be read has no cgroup mounts to find
    let hierarchies = mountinfo::containing(c.mounts.text().unwrap_or(""), " - cgroup")
        .filter(|m| cgroups::is_cgroup_fs(m.fstype))
        .map(|m| {
            let e = m.to_entry();
            (e.fstype, e.super_options, e.mount_point)
        })
        .collect();
    let cg = cgroups::Cgroup::new(cg_path, hierarchies);
    undo.journal.cgroup = Some(cg.clone());
    undo.note()?;
    fault::point("create:cgroup-noted")?;
    cg.create(c.rootless)?;
    fault::point("create:cgroup")?;
    if let Some(r) = &c.linux.resources {
        cg.apply_checked(r, c.rootless)?;
    }
    fault::point("create:resources")?;
    Ok(cg)
}

fn new_state(a: &CreateOptions, c: &Checked, cg: cgroups::Cgroup, dir: &Path) -> State {
    State {
        state_version: container::STATE_VERSION,
        oci_version: if c.spec.oci_version.is_empty() {
            "1.2.0".into()
        } else {
            c.spec.oci_version.clone()
        },
        id: a.id.clone(),
        pid: 0,
        pid_start: 0,
        bundle: c.bundle.clone(),
        rootfs: c.rootfs.clone(),
        created: crate::log::rfc3339_now(),
        annotations: c.spec.annotations.clone(),
        owner: String::new(),
        urunc: container::Extra {
            guest: c.input.unikernel.unikernel_type.clone(),
            timestamps: c.cfg.timestamps.clone(),
            cgroup: Some(cg),
            netns: c.ns.path_of("network").map(PathBuf::from),
            tap: None,
            hooks: c.spec.hooks(),
        },
        dir: dir.to_path_buf(),
    }
}

struct Forked {
    child: Pid,
    sync: UnixDatagram,
    user_maps: Option<userns::Mappings>,
    own_netns: bool,
}

/// Forks the container process (noted in the journal at once) and waits until it is in its
/// namespaces.
fn fork_container(
    a: &CreateOptions,
    c: Checked,
    state: State,
    undo: &mut Undo,
) -> Result<(Pid, UnixDatagram, Option<userns::Mappings>)> {
    let tty = match &a.console_socket {
        Some(sock) if c.terminal => Some(send_console(sock)?),
        _ => None,
    };
    fault::point("create:console")?;
    let (parent_end, child_end) = sync_pair()?;
    let mut setup = Setup {
        state,
        ns: c.ns,
        hostname: c.spec.hostname.clone(),
        rootfs_propagation: c.linux.rootfs_propagation.clone(),
        rootless: c.rootless,
        sandbox: c.cfg.sandbox,
        network: c.cfg.network,
        plan_input: c.input,
        tty,
        preserve_fds: a.preserve_fds,
        early_go: false,
    };
    ts::capture(2);
    let own_userns = !nix::unistd::geteuid().is_root() && setup.ns.user_maps().is_some();
    if own_userns {
        // an unprivileged caller cannot make the PID namespace outside the user namespace
        setup.ns.enter_user_here()?;
    }
    let user_maps = setup.ns.user_maps().cloned();
    let hooks = &setup.state.urunc.hooks;
    // nothing for create to do between the namespaces and `Go`: one hand-off instead of three
    setup.early_go =
        user_maps.is_none() && hooks.prestart.is_empty() && hooks.create_runtime.is_empty();
    let early_go = setup.early_go;
    let own_pidns = setup.ns.enter_pid_for_children()?;
    fault::point("create:namespaces")?;
    ts::capture(3);
    let fork = crate::sys::fork().map_err(sys("fork the container process"));
    if let Ok(ForkResult::Child) = fork {
        drop(parent_end);
        drop(own_pidns);
        // the parent undoes; container_main never returns (no destructor runs here)
        undo.armed = false;
        supervisor::container_main(setup, supervisor::datagram_from(child_end));
    }
    let forked = fork.map(|f| match f {
        ForkResult::Parent { child } => child,
        ForkResult::Child => unreachable!("the child never returns"),
    });
    if let Ok(child) = forked {
        undo.child = Some(child);
        undo.journal.child = container::Proc::of(child.as_raw());
        if early_go && setup.ns.has("network") {
            // one journal write for both: nothing runs between them when no hook does
            undo.journal.net = Some(net_intent(&setup.state, child));
        }
        undo.note()?;
    }
    if let Some(own) = own_pidns {
        // from inside a user namespace (its own, or rootless podman's), create may not rejoin
        // the initial PID namespace: its hooks then run in the container's (rootless only)
        if !own_userns && !c.in_userns {
            namespaces::restore_pid(own)?;
        }
    }
    let child = forked?;
    fault::point("create:forked")?;
    drop(child_end);
    drop(setup);
    let sync = supervisor::datagram_from(parent_end);
    wait_namespaces(&sync, child, user_maps.as_ref(), early_go)?;
    ts::capture(6);
    Ok((child, sync, user_maps))
}

/// Writes the pid file, notes the network the container process will wire, runs the hooks,
/// lets the container process finish its setup, and records the state (`state.json`, written
/// once, from what the container process reported). Until then the journal names everything.
fn finish(a: &CreateOptions, mut state: State, f: &Forked, undo: &mut Undo) -> Result<State> {
    let (child, sync) = (f.child, &f.sync);
    state.pid = child.as_raw();
    // read once, when the journal noted the child (`None`: it was gone already)
    let noted = undo
        .journal
        .child
        .as_ref()
        .filter(|p| p.pid == child.as_raw());
    state.pid_start = noted.map(|p| p.start).ok_or_else(|| gone(sync))?;
    if state.urunc.netns.is_none() {
        state.urunc.netns = Some(PathBuf::from(format!("/proc/{}/ns/net", child.as_raw())));
    }
    if let Some(maps) = &f.user_maps {
        userns::chown_dir(&state.dir, maps).map_err(namespaces::NsError::from)?;
        fault::point("create:chown")?;
    }
    if let Some(pf) = &a.pid_file {
        let pf = if pf.is_absolute() {
            pf.clone()
        } else {
            std::env::current_dir().map_err(io("cwd"))?.join(pf)
        };
        // a pid is void after a crash (the process dies with the host): atomic, never fsynced
        let pid = child.as_raw().to_string();
        container::write_atomic_as(&pf, pid.as_bytes(), 0o644, container::Durability::Volatile)?;
    }
    fault::point("create:pid-file")?;
    let hooks = &state.urunc.hooks;
    crate::hooks::run("prestart", &hooks.prestart, &state.oci("creating"))?;
    fault::point("create:prestart")?;
    crate::hooks::run(
        "createRuntime",
        &hooks.create_runtime,
        &state.oci("creating"),
    )?;
    fault::point("create:create-runtime")?;
    ts::capture(7);
    if f.own_netns && undo.journal.net.is_none() {
        undo.journal.net = Some(net_intent(&state, child));
        undo.note()?;
        fault::point("create:net-noted")?;
    }
    let go = Sync::Go {
        pid: state.pid,
        start: state.pid_start,
    };
    msg::send(sync, &go).map_err(|_| gone(sync))?;
    fault::point("create:go")?;
    ts::capture(8);
    let tap = expect(sync, |m| match m {
        Sync::Ready { tap } => Some(tap),
        _ => None,
    })?;
    fault::point("create:ready")?;
    state.urunc.tap = tap;
    state.save()?;
    fault::point("create:state")?;
    // the container process holds the devices' fds now
    undo.storage = None;
    Ok(state)
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
