//! Networking: the guest takes the container's place on its network.
//!
//! In the container's network namespace, after the createContainer hooks (docker moves its
//! veth in from a prestart hook), [`setup`] finds the interface of the IPv4 default route,
//! creates this container's tap and redirects every frame between the two with tc (dynamic
//! mode), or puts the guest on a private subnet behind the tap (static mode, Knative's
//! `user-container`). The guest reuses the interface's IP, prefix, gateway, MAC and MTU.
//!
//! Ownership: a tap is named from the container id (`tap::name_for`) and its interface alias
//! reads `urunc <pid> <start time> <id>`, naming the container process; each redirect filter's
//! mirred action carries a cookie with the same pid and start time. A tap or filter whose
//! process is gone is stale and removed by the next setup in that namespace; one whose process
//! is alive belongs to a running container and is never touched (a second unikernel in the
//! same namespace is refused). Teardown removes exactly the tap and filters of its own owner.

mod discover;
pub mod dns;
pub mod mode;
mod nft;
mod nft_expr;
mod nl;
mod pod;
mod pod_rules;
pub mod probe;
mod static_mode;
pub mod tap;
mod tc;
mod teardown;

use teardown::remove_own;
pub use teardown::{cleanup, cleanup_intent, teardown_own};

use crate::container::State;
use crate::error::Result;
use crate::plan::{NetParams, PlanInput};
use discover::Iface;
use nl::{Nl, NlError};
use std::os::fd::IntoRawFd;
use tap::Owner;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error(transparent)]
    Netlink(#[from] NlError),
    #[error("cannot create tap {name}: {source}")]
    Tap {
        name: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Fault(#[from] crate::fault::FaultError),
    #[error(transparent)]
    Pod(#[from] pod::PodError),
    #[error(transparent)]
    Mode(#[from] mode::ModeError),
    #[error("unsupported operation: can't spawn multiple unikernels in the same network namespace (tap {tap} belongs to the running container {id})")]
    Busy { tap: String, id: String },
}

impl From<NetError> for crate::error::Error {
    fn from(e: NetError) -> Self {
        crate::error::Error::Module(Box::new(e))
    }
}

/// The name this container's tap has (or would have).
pub fn tap_name(id: &str) -> String {
    tap::name_for(id)
}

/// Whether the guest sits on a private subnet behind the tap (Knative's `user-container`
/// without a `com.urunc.network.mode` annotation).
pub fn static_mode_wanted(annotations: &std::collections::BTreeMap<String, String>) -> bool {
    matches!(mode::of(annotations, "redirect"), Ok(mode::Mode::Static))
}

/// The container's network mode (`mode`), checked by `create` before anything is made.
pub fn mode_of(
    annotations: &std::collections::BTreeMap<String, String>,
    cfg: &crate::config::Config,
) -> std::result::Result<mode::Mode, mode::ModeError> {
    mode::of(annotations, &cfg.network.mode)
}

fn owner_of(state: &State) -> Owner {
    Owner {
        pid: state.pid,
        start: state.pid_start,
    }
}

/// In the container process, after the createContainer hooks: discover the container's network
/// and create this container's tap. `None`: no network (the guest boots without one). What it
/// made is in what it returns (`NetParams::tap`); `state` is only read (the owner, id, bundle).
pub fn setup(
    state: &State,
    input: &PlanInput,
    net_cfg: &crate::config::NetworkConfig,
    monitor_uid: Option<u32>,
) -> Result<Option<NetParams>> {
    let spec = crate::spec::Spec::load(&state.bundle)?;
    let own_netns = spec
        .linux
        .as_ref()
        .is_some_and(|l| l.namespaces.iter().any(|n| n.typ == "network"));
    if !own_netns {
        log::info!("the container shares the host's network namespace: the guest boots without a network (its traffic would take over the host's interface)");
        return Ok(None);
    }
    let mut nl = Nl::open().map_err(NetError::from)?;
    let iface = match discover::container_iface(&mut nl).map_err(NetError::from)? {
        Ok(i) => i,
        Err(why) => {
            log::info!("{why}: the guest boots without a network");
            return Ok(None);
        }
    };
    let dns = dns::for_container(&spec.mounts);
    let owner = owner_of(state);
    let mode = mode::of(&state.annotations, &net_cfg.mode).map_err(NetError::from)?;
    let static_mode = mode == mode::Mode::Static;
    let pod_ports = match &mode {
        mode::Mode::Pod(p) => Some(p),
        _ => None,
    };
    let (name, fd) = make_tap(
        &mut nl,
        (state, input, monitor_uid),
        (owner, &iface),
        pod_ports.is_some(),
    )?;
    let wired = wire(&mut nl, state, owner, &iface, &name, &mode);
    let slot = match wired {
        Ok(s) => s,
        Err(e) => {
            undo_tap(&mut nl, owner, &name);
            return Err(e.into());
        }
    };
    let mut p = NetParams {
        tap: name.clone(),
        tap_fd: fd.map(|f| f.into_raw_fd()),
        ip: iface.ip,
        prefix: iface.prefix,
        gateway: iface.gateway,
        mac: discover::mac_string(&iface.link.mac),
        mtu: iface.link.mtu,
        dns: dns.servers,
        dns_search: dns.search,
        dns_options: dns.options,
        ipv6: iface.ipv6.clone(),
        ipv6_gateway: iface.ipv6_gateway,
    };
    private_link(&mut p, static_mode, slot, &state.id);
    let how = match (&mode, pod_ports) {
        (_, Some(p)) => format!("forwards ports {} of", p.encode()),
        (mode::Mode::Static, _) => "routes for".into(),
        _ => "redirects".into(),
    };
    log::info!(
        "network: tap {name} {how} {} (guest {}/{} gateway {:?} mac {} mtu {} dns {:?} ipv6 {:?})",
        iface.link.name,
        p.ip,
        p.prefix,
        p.gateway,
        p.mac,
        p.mtu,
        p.dns,
        p.ipv6
    );
    Ok(Some(p))
}

/// Creates this container's tap the way its monitor takes it (by fd: the queue stays open for
/// it; by name: persistent and owned by the monitor's uid/gid), after clearing what a previous
/// container of ours left in the namespace. `monitor_uid`: the monitor's leased host uid
/// (`sandbox::monitor_host_uid`), which owns the tap (uid and gid) when it is set.
fn make_tap(
    nl: &mut Nl,
    (state, input, monitor_uid): (&State, &PlanInput, Option<u32>),
    (owner, iface): (Owner, &discover::Iface),
    pod: bool,
) -> Result<(String, Option<std::os::fd::OwnedFd>)> {
    // what the monitor declares: by fd (we keep the queue open for it) or by name
    let spec = crate::monitor::tap_spec(&input.unikernel.hypervisor)?;
    // A monitor attaching by name passes the kernel's owner check (tun_not_capable,
    // drivers/net/tun.c: its euid is the owner and the group among its egid/groups, or it
    // has CAP_NET_ADMIN over the netns) with no capability: in its own user namespace it is
    // uid/gid 0, which are the leased host uid/gid, the kuid/kgid the check compares.
    let (uid, gid) = monitor_uid.map_or((input.process.uid, input.process.gid), |h| (h, h));
    let opts = tap::TapOptions {
        vnet_hdr: spec.vnet_hdr,
        persistent: spec.access == crate::monitor::TapAccess::Name,
        uid,
        gid,
    };
    let name = tap::name_for(&state.id);
    clear_stale(nl, owner, iface, pod)?;
    // A link of that name that survived `clear_stale` is not ours to attach to.
    if discover::links(nl)
        .map_err(NetError::from)?
        .iter()
        .any(|l| l.name == name)
    {
        return Err(NetError::Tap {
            name,
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        }
        .into());
    }
    let fd = tap::create(&name, &opts).map_err(|source| NetError::Tap {
        name: name.clone(),
        source,
    })?;
    Ok((name, fd))
}

/// A setup that failed after creating the tap `name`: remove it (even if its alias was not
/// set yet) and whatever `owner` made.
fn undo_tap(nl: &mut Nl, owner: Owner, name: &str) {
    if let Ok(Some(l)) = discover::links(nl).map(|v| v.into_iter().find(|l| l.name == name)) {
        let _ = tap::delete(nl, l.index);
    }
    remove_own(nl, owner, None);
}

/// Static and pod mode: the guest is on a private link behind the tap, IPv4 only (pod mode:
/// with a MAC of its own, as it no longer stands in for the container interface).
fn private_link(p: &mut NetParams, static_mode: bool, slot: Option<pod::Slot>, id: &str) {
    let (ip, prefix, gateway) = match (static_mode, slot) {
        (_, Some(s)) => (s.guest_ip(), pod::PREFIX, s.tap_ip()),
        (true, None) => (
            static_mode::GUEST_IP,
            static_mode::PREFIX,
            static_mode::TAP_IP,
        ),
        (false, None) => return,
    };
    (p.ip, p.prefix, p.gateway) = (ip, prefix, Some(gateway));
    p.ipv6.clear();
    p.ipv6_gateway = None;
    if slot.is_some() {
        p.mac = pod::guest_mac(id);
    }
}

/// Configures the new tap and connects it to the container interface; in pod mode, returns
/// the guest link's slot.
fn wire(
    nl: &mut Nl,
    state: &State,
    owner: Owner,
    iface: &Iface,
    name: &str,
    mode: &mode::Mode,
) -> std::result::Result<Option<pod::Slot>, NetError> {
    crate::fault::point("net:tap")?;
    let tap = discover::links(nl)?
        .into_iter()
        .find(|l| l.name == name)
        .ok_or_else(|| NetError::Tap {
            name: name.into(),
            source: std::io::Error::from(std::io::ErrorKind::NotFound),
        })?;
    tap::disable_ipv6(name);
    tap::configure(nl, tap.index, iface.link.mtu, &owner.alias(&state.id))?;
    // Another container may have set up in this namespace at the same time: both see the
    // other's tap now, and both refuse, rather than both redirecting the same interface.
    let pod_ports = match mode {
        mode::Mode::Pod(p) => Some(p),
        _ => None,
    };
    clear_stale(nl, owner, iface, pod_ports.is_some())?;
    if let Some(ports) = pod_ports {
        let slot = pod::wire(nl, owner, &state.id, iface, (tap.index, name), ports)?;
        return Ok(Some(slot));
    }
    if *mode == mode::Mode::Static {
        let owner = (owner, state.id.as_str());
        static_mode::setup(nl, (tap.index, name), iface.link.index, owner)?;
        return Ok(None);
    }
    let prio = tap::prio_for(&state.id);
    let cookie = owner.cookie();
    tc::add_ingress(nl, tap.index)?;
    tc::add_ingress(nl, iface.link.index)?;
    tc::add_redirect(nl, iface.link.index, tap.index, prio, &cookie)?;
    crate::fault::point("net:redirect")?;
    tc::add_redirect(nl, tap.index, iface.link.index, prio, &cookie)?;
    if !iface.link.up {
        tap::set_up(nl, iface.link.index)?;
    }
    Ok(None)
}

/// Removes taps and redirect filters of dead containers; refuses when a live one is there
/// (`pod`: live taps are other pod-mode guests, which coexist; a live redirect still refuses).
fn clear_stale(
    nl: &mut Nl,
    me: Owner,
    iface: &Iface,
    pod: bool,
) -> std::result::Result<(), NetError> {
    for l in discover::links(nl)? {
        let Some(alias) = l.alias.as_deref() else {
            continue;
        };
        let Some(o) = Owner::from_alias(alias) else {
            continue;
        };
        if o == me || (pod && o.alive()) {
            continue;
        }
        if o.alive() {
            return Err(NetError::Busy {
                tap: l.name,
                id: alias.splitn(4, ' ').nth(3).unwrap_or("").to_string(),
            });
        }
        log::info!(
            "removing the stale tap {} of a container that is gone ({alias})",
            l.name
        );
        tap::delete(nl, l.index)?;
    }
    for f in tc::filters(nl, iface.link.index)? {
        for o in f.cookies.iter().filter_map(|c| Owner::from_cookie(c)) {
            if o == me {
                continue;
            }
            if o.alive() {
                return Err(NetError::Busy {
                    tap: format!("redirected from {}", iface.link.name),
                    id: format!("with container process {}", o.pid),
                });
            }
            log::info!(
                "removing the stale redirect filter (prio {}) of a container that is gone from {}",
                f.prio,
                iface.link.name
            );
            tc::del_prio(nl, iface.link.index, f.prio)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod ns_tests;
#[cfg(test)]
mod pod_ns_tests;
