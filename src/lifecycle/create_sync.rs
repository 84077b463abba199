//! `create`'s side of the sync socket with the container process (`supervisor::sync`).

use super::LifecycleError;
use crate::container::{NetIntent, State};
use crate::error::{io, Result};
use crate::fault;
use crate::sandbox::{namespaces, userns};
use crate::supervisor::sync::{self as msg, Sync};
use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
use nix::unistd::Pid;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;

/// The socket pair `create` and the container process talk over, one message per datagram.
pub(super) fn sync_pair() -> Result<(OwnedFd, OwnedFd)> {
    socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(crate::error::sys("socketpair"))
}

/// Maps the container process's user namespace (when it has one to map) and, unless `Go` goes
/// up front (`early_go`), waits until it is in its namespaces.
pub(super) fn wait_namespaces(
    sync: &UnixDatagram,
    child: Pid,
    user_maps: Option<&userns::Mappings>,
    early_go: bool,
) -> Result<()> {
    if let Some(maps) = user_maps {
        expect(sync, |m| (m == Sync::UserNs).then_some(()))?;
        maps.write(child).map_err(namespaces::NsError::from)?;
        msg::send(sync, &Sync::Mapped).map_err(io("sync with the container process"))?;
        fault::point("create:userns-mapped")?;
    }
    if !early_go {
        expect(sync, |m| (m == Sync::NsReady).then_some(()))?;
        fault::point("create:ns-ready")?;
    }
    Ok(())
}

/// The network the container process will wire in its own namespace, for the journal.
pub(super) fn net_intent(state: &State, child: Pid) -> NetIntent {
    let netns = state.urunc.netns.clone();
    NetIntent {
        netns: netns.unwrap_or_else(|| format!("/proc/{}/ns/net", child.as_raw()).into()),
        tap: crate::net::tap_name(&state.id),
        static_mode: crate::net::static_mode_wanted(&state.annotations),
    }
}

/// Why the container process is gone: the error it sent, if any. With `early_go`, create hears
/// nothing from it before `Ready`, so a failure in its first steps is read here. The process
/// has exited (its end of the socket is closed), so the read cannot block.
pub(super) fn gone(sync: &UnixDatagram) -> crate::error::Error {
    match msg::recv(sync) {
        Ok(Some(Sync::Error(e))) => LifecycleError::ContainerProcess(e).into(),
        _ => LifecycleError::ExitedDuringCreate.into(),
    }
}

/// What `want` takes from the next message; an error when it is another one.
pub(super) fn expect<T>(sync: &UnixDatagram, want: impl FnOnce(Sync) -> Option<T>) -> Result<T> {
    let exited = || LifecycleError::ExitedDuringCreate.into();
    match msg::recv(sync).map_err(io("sync with the container process"))? {
        Some(Sync::Error(e)) => Err(LifecycleError::ContainerProcess(e).into()),
        Some(got) => want(got).ok_or_else(exited),
        None => Err(exited()),
    }
}
