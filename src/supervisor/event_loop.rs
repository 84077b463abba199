//! The supervisor's event loop: one thread, epoll over the signalfd (forwarded signals and
//! SIGCHLD, which announces the monitor's exit), urunit's channel, which is read as soon
//! as bytes arrive into a fixed buffer, QEMU's monitor, and the guest's DHCP requests on the
//! tap (`dhcp_socket.rs`). Nothing allocates inside the loop but a DHCP answer. Signals go to the
//! guest over the channel once urunit said READY (graceful stop), else to the monitor.

use super::dhcp_socket::DhcpSocket;
use super::exec_server::{ExecServer, CLIENT_BASE, LISTEN};
use super::qmp::Qmp;
use super::status::{self, Ended, Facts};
use crate::guest::urunit_channel::{self, HostChannel};
use crate::plan::{LaunchPlan, PlanInput, Shutdown};
use crate::sys;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use nix::sys::signal::{kill, SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use std::os::fd::AsFd;

const SIGNALS: u64 = 1;
const CHANNEL: u64 = 2;
const QMP: u64 = 3;
const DHCP: u64 = 4;

/// The supervisor's ends of the sockets the monitor inherits: urunit's channel (urunit
/// guests on QEMU) and QEMU's monitor (plans with isa-debug-exit, see `qmp.rs`).
pub struct Links {
    pub channel: Option<HostChannel>,
    pub qmp: Option<Qmp>,
    /// The DHCP server on the tap (plans with `dhcp`), opened by `open_dhcp`.
    pub dhcp: Option<DhcpSocket>,
    /// Exec's listening socket (plans with urunit's channel), opened by `open_exec`.
    pub exec: Option<ExecServer>,
}

impl Links {
    /// Makes the sockets the plan may use (their monitor ends: `monitor_fds`).
    pub fn new(input: &PlanInput) -> std::io::Result<Links> {
        let channel = if urunit_channel::wanted(input) {
            Some(HostChannel::new()?)
        } else {
            None
        };
        // only isa-debug-exit plans keep it (`keep_used`)
        let qmp = if crate::monitor::declaration(&input.unikernel.hypervisor).qmp {
            Some(Qmp::new()?)
        } else {
            None
        };
        Ok(Links {
            channel,
            qmp,
            dhcp: None,
            exec: None,
        })
    }

    /// The fd numbers the monitor inherits: urunit's channel, QEMU's QMP socket.
    pub fn monitor_fds(&self) -> (Option<i32>, Option<i32>) {
        (
            self.channel.as_ref().and_then(|c| c.guest_fd()),
            self.qmp.as_ref().and_then(|q| q.qemu_fd()),
        )
    }

    /// Opens the DHCP server on the tap when the plan asks for one (while still root in the
    /// container's network namespace: the socket outlives the supervisor's confinement).
    pub fn open_dhcp(
        &mut self,
        plan: &LaunchPlan,
        input: &PlanInput,
    ) -> Result<(), super::dhcp_socket::DhcpSocketError> {
        if let Some(net) = input.net.as_ref().filter(|_| plan.dhcp) {
            self.dhcp = Some(DhcpSocket::open(net)?);
        }
        Ok(())
    }

    /// Opens exec's socket under the state directory when the guest has urunit's channel
    /// (while still root: the socket's directory is root's).
    pub fn open_exec(&mut self, state_dir: &std::path::Path) -> std::io::Result<()> {
        if self.channel.is_some() {
            self.exec = Some(super::exec_server::listen(state_dir)?);
        }
        Ok(())
    }

    /// Drops the sockets the plan does not pass to the monitor.
    pub fn keep_used(&mut self, plan: &LaunchPlan) {
        let used = |fd: Option<i32>| fd.is_some_and(|f| plan.keep_fds.contains(&f));
        if !used(self.qmp.as_ref().and_then(|q| q.qemu_fd())) {
            self.qmp = None;
        }
        if !used(self.channel.as_ref().and_then(|c| c.guest_fd())) {
            self.channel = None;
        }
    }

    /// Once the monitor runs, the supervisor no longer needs the monitor's ends.
    pub fn close_monitor_ends(&mut self) {
        if let Some(c) = self.channel.as_mut() {
            c.close_guest_end();
        }
        if let Some(q) = self.qmp.as_mut() {
            q.close_qemu_end();
        }
    }
}

/// Reaps every exited child; returns how the monitor ended once it did.
fn reap(monitor: Pid) -> Option<Ended> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid == monitor => {
                return Some(Ended::Exited(code))
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid == monitor => {
                return Some(Ended::Signaled(sig as i32))
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

/// The signalfd of the forwarded signals and SIGCHLD, and an epoll watching it and every link
/// (exec clients are only served with a guest channel to carry them).
fn watch(links: &Links) -> nix::Result<(SignalFd, Epoll)> {
    let mut mask = SigSet::empty();
    for sig in sys::FORWARDED.iter().chain([Signal::SIGCHLD].iter()) {
        mask.add(*sig);
    }
    let sfd = SignalFd::with_flags(&mask, SfdFlags::SFD_CLOEXEC | SfdFlags::SFD_NONBLOCK)?;
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
    let _ = epoll.add(sfd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, SIGNALS));
    if let Some(c) = links.channel.as_ref() {
        let _ = epoll.add(c.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, CHANNEL));
    }
    if let Some(q) = links.qmp.as_ref() {
        let _ = epoll.add(q.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, QMP));
    }
    if let Some(d) = links.dhcp.as_ref() {
        let _ = epoll.add(d.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, DHCP));
    }
    if let (Some(x), Some(_)) = (links.exec.as_ref(), links.channel.as_ref()) {
        let _ = epoll.add(x.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, LISTEN));
    }
    Ok((sfd, epoll))
}

/// Runs until the monitor exited; returns the workload's status (see `status::decide`).
pub fn run(monitor: Pid, plan: &LaunchPlan, links: &mut Links) -> i32 {
    let (sfd, epoll) = match watch(links) {
        Ok(w) => w,
        Err(e) => {
            log::warn!("supervisor event loop unavailable ({e}): waiting for the monitor only");
            return super::wait_plain(monitor);
        }
    };
    let mut channel = links.channel.as_mut();
    let mut qmp = links.qmp.as_mut();
    let mut dhcp = links.dhcp.as_mut();
    let mut exec = links.exec.as_mut().filter(|_| channel.is_some());
    let mut chan_out = false;
    let mut facts = Facts {
        debug_exit: plan.debug_exit,
        ..Default::default()
    };
    let mut events = [EpollEvent::empty(); 16];
    // the monitor may be gone already (its SIGCHLD is then pending in the signalfd too)
    let mut ended = reap(monitor);
    while ended.is_none() {
        let n = match epoll.wait(&mut events, EpollTimeout::NONE) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => {
                log::warn!("supervisor event loop failed ({e}): waiting for the monitor only");
                return super::wait_plain(monitor);
            }
        };
        for ev in &events[..n] {
            match ev.data() {
                CHANNEL => {
                    if let Some(c) = channel.as_deref_mut() {
                        c.flush();
                    }
                    read_channel(&epoll, channel.as_deref_mut(), exec.as_deref_mut())
                }
                LISTEN => {
                    if let Some(x) = exec.as_deref_mut() {
                        x.on_accept(&epoll);
                    }
                }
                t if t >= CLIENT_BASE => {
                    if let (Some(x), Some(c)) = (exec.as_deref_mut(), channel.as_deref_mut()) {
                        x.on_client((t - CLIENT_BASE) as usize, c);
                    }
                }
                QMP => read_qmp(&epoll, qmp.as_deref_mut()),
                DHCP => {
                    if let Some(d) = dhcp.as_deref_mut() {
                        d.on_readable();
                    }
                }
                _ => on_signals(
                    &sfd,
                    (monitor, plan),
                    channel.as_deref_mut(),
                    &mut facts,
                    &mut ended,
                ),
            }
        }
        if let Some(c) = channel.as_deref_mut() {
            if let Some(x) = exec.as_deref_mut() {
                x.settle(&epoll, c);
            }
            chan_out = want_write(&epoll, c, chan_out);
        }
    }
    drain(links, &mut facts);
    let ended = ended.unwrap_or(Ended::Exited(status::STATUS_UNKNOWN));
    let out = status::decide(ended, &facts);
    if let Some(r) = &out.reason {
        log::warn!("exit status {}: {r}", out.code);
    }
    out.code
}

/// Forwards what the signalfd holds to the monitor (through the guest channel where it takes
/// them) and reaps on SIGCHLD.
fn on_signals(
    sfd: &SignalFd,
    (monitor, plan): (Pid, &LaunchPlan),
    mut channel: Option<&mut HostChannel>,
    facts: &mut Facts,
    ended: &mut Option<Ended>,
) {
    while let Ok(Some(info)) = sfd.read_signal() {
        let Ok(sig) = Signal::try_from(info.ssi_signo as i32) else {
            continue;
        };
        if sig == Signal::SIGCHLD {
            *ended = ended.take().or_else(|| reap(monitor));
        } else {
            forward(sig, monitor, plan, channel.as_deref_mut(), facts);
        }
    }
}

/// Once the monitor is gone: what QEMU wrote last still waits in our sockets (the guest's last
/// frames, QEMU's shutdown event); read it into `facts` and log what each link saw.
fn drain(links: &mut Links, facts: &mut Facts) {
    if let Some(c) = links.channel.as_mut() {
        c.on_readable(&mut |_| {});
        facts.channel = Some(c.state);
        if c.state.rejected > 0 {
            log::info!("guest channel: {} frames rejected", c.state.rejected);
        }
    }
    if let Some(q) = links.qmp.as_mut() {
        q.on_readable();
        facts.started = Some(q.started());
        if let Some(r) = q.shutdown_reason() {
            log::info!("QEMU shut down: {r}");
        }
    }
    if let Some(d) = &links.dhcp {
        log::info!("dhcp: {} answers sent to the guest", d.answered);
    }
}

fn read_channel(epoll: &Epoll, channel: Option<&mut HostChannel>, exec: Option<&mut ExecServer>) {
    let Some(c) = channel else { return };
    match exec {
        Some(x) => c.on_readable(&mut |f| x.from_guest(f)),
        None => c.on_readable(&mut |_| {}),
    }
    if c.eof {
        // a closed stream stays readable: stop watching it
        let _ = epoll.delete(c.as_fd());
    }
}

/// Watches the channel for writability while frames wait for it; returns the new state.
fn want_write(epoll: &Epoll, c: &HostChannel, was: bool) -> bool {
    let now = !c.out.is_empty() && !c.eof;
    if now != was {
        let flags = if now {
            EpollFlags::EPOLLIN | EpollFlags::EPOLLOUT
        } else {
            EpollFlags::EPOLLIN
        };
        let _ = epoll.modify(c.as_fd(), &mut EpollEvent::new(flags, CHANNEL));
    }
    now
}

fn read_qmp(epoll: &Epoll, qmp: Option<&mut Qmp>) {
    let Some(q) = qmp else { return };
    q.on_readable();
    if q.eof {
        let _ = epoll.delete(q.as_fd());
    }
}

fn forward(
    sig: Signal,
    monitor: Pid,
    plan: &LaunchPlan,
    channel: Option<&mut HostChannel>,
    facts: &mut Facts,
) {
    if status::terminates(sig as i32) {
        facts.forwarded = Some(sig as i32);
    }
    match channel {
        Some(c) if plan.shutdown == Shutdown::GuestChannel && c.state.ready && !c.eof => {
            c.send_signal(sig as i32)
        }
        _ => {
            let _ = kill(monitor, sig);
        }
    }
}
