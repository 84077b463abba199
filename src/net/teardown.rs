//! Taking a container's network wiring down: its tap (only when its alias names the container
//! process) and every redirect filter carrying that process's cookie, then the ingress qdisc
//! those filters leave empty, and its pod-mode nf_tables table (named by its user data). Used by a failing container process (`teardown_own`), by a
//! failed or killed create and by `delete` (`cleanup`, `cleanup_intent`, from the state file
//! or the create journal).

use super::nl::Nl;
use super::tap::Owner;
use super::{discover, pod, tap, tc};
use crate::container::{NetIntent, Proc, State};
use std::path::Path;

/// Removes `me`'s tap (only if its alias names `me`) and every redirect filter carrying `me`'s
/// cookie, an ingress qdisc left empty by that, and `me`'s nf_tables tables (pod mode's
/// forwarding, static mode's masquerade). Best effort: failures are logged.
pub(super) fn remove_own(nl: &mut Nl, me: Owner, tap_name: Option<&str>) {
    let links = match discover::links(nl) {
        Ok(l) => l,
        Err(e) => {
            log::warn!("network cleanup: {e}");
            return;
        }
    };
    for l in &links {
        let mine = Some(l.name.as_str()) == tap_name
            && l.alias.as_deref().and_then(Owner::from_alias) == Some(me);
        if mine {
            if let Err(e) = tap::delete(nl, l.index) {
                log::warn!("network cleanup: tap {}: {e}", l.name);
            }
        }
    }
    for l in links.iter().filter(|l| !l.loopback) {
        let Ok(fs) = tc::filters(nl, l.index) else {
            continue;
        };
        let mut removed = false;
        for f in &fs {
            if f.cookies.iter().any(|c| Owner::from_cookie(c) == Some(me)) {
                match tc::del_prio(nl, l.index, f.prio) {
                    Ok(()) => removed = true,
                    Err(e) => log::warn!("network cleanup: filter on {}: {e}", l.name),
                }
            }
        }
        if removed && tc::filters(nl, l.index).is_ok_and(|f| f.is_empty()) {
            if let Err(e) = tc::del_ingress(nl, l.index) {
                log::warn!("network cleanup: ingress qdisc of {}: {e}", l.name);
            }
        }
    }
    pod::teardown(me);
}

/// What a setup cut short leaves before its marks are on: a tap of the container's name that
/// no alias claims yet (a persistent one outlives its maker), and an ingress qdisc without
/// filters on the interface the redirect was being added to.
fn remove_unmarked(nl: &mut Nl, tap_name: &str) {
    if let Ok(links) = discover::links(nl) {
        for l in links
            .iter()
            .filter(|l| l.name == tap_name && l.alias.is_none())
        {
            log::info!(
                "removing the unclaimed tap {} of a create that died",
                l.name
            );
            if let Err(e) = tap::delete(nl, l.index) {
                log::warn!("network cleanup: tap {}: {e}", l.name);
            }
        }
    }
    if let Ok(Ok(iface)) = discover::container_iface(nl) {
        let index = iface.link.index;
        if tc::filters(nl, index).is_ok_and(|f| f.is_empty()) {
            // ENOENT/EINVAL: there is no ingress qdisc, nothing to do
            let _ = tc::del_ingress(nl, index);
        }
    }
}

fn remove_own_here(state: &State) {
    match Nl::open() {
        Ok(mut nl) => remove_own(&mut nl, super::owner_of(state), state.urunc.tap.as_deref()),
        Err(e) => log::warn!("network cleanup: {e}"),
    }
}

/// A create that fails after the network was set up (no delete follows): remove this
/// container's tap and redirect rules, from inside the namespace (best effort).
pub fn teardown_own(state: &State) {
    if state.urunc.tap.is_some() {
        remove_own_here(state);
    }
}

/// `delete`: remove this container's tap and redirect rules from its network namespace. A tap
/// missing from the state (the container process died setting it up) is looked for under the
/// name it would have had.
pub fn cleanup(state: &State) {
    let Some(netns) = &state.urunc.netns else {
        return;
    };
    let intent = NetIntent {
        netns: netns.clone(),
        tap: state
            .urunc
            .tap
            .clone()
            .unwrap_or_else(|| tap::name_for(&state.id)),
        static_mode: super::static_mode_wanted(&state.annotations),
    };
    let owner = Proc {
        pid: state.pid,
        start: state.pid_start,
    };
    cleanup_intent(&intent, owner, state.urunc.tap.is_none());
}

/// Removes what the container process `owner` set up (or was about to) in `intent.netns`.
/// `unfinished`: its setup may have been cut short (see `remove_unmarked`).
pub fn cleanup_intent(intent: &NetIntent, owner: Proc, unfinished: bool) {
    // `/proc/<pid>/ns/net` of a private namespace: gone with the container process (and its
    // tap with it); a recycled pid is someone else's namespace.
    if let Some(pid) = proc_pid(&intent.netns) {
        if crate::container::process_start_time(pid) != Some(owner.start) || pid != owner.pid {
            return;
        }
    }
    let me = Owner {
        pid: owner.pid,
        start: owner.start,
    };
    let r = in_netns(&intent.netns, || match Nl::open() {
        Ok(mut nl) => {
            remove_own(&mut nl, me, Some(&intent.tap));
            if unfinished {
                remove_unmarked(&mut nl, &intent.tap);
            }
        }
        Err(e) => log::warn!("network cleanup: {e}"),
    });
    if let Err(e) = r {
        log::debug!("network cleanup: {e}");
    }
}

fn proc_pid(ns: &Path) -> Option<i32> {
    let s = ns.to_str()?;
    s.strip_prefix("/proc/")?
        .strip_suffix("/ns/net")?
        .parse()
        .ok()
}

/// Runs `f` in the network namespace at `path` and comes back. The callers (`delete`, a
/// failing `create`) are single-threaded, so switching the whole process is safe.
fn in_netns(path: &Path, f: impl FnOnce()) -> crate::error::Result<()> {
    use nix::sched::{setns, CloneFlags};
    let target =
        std::fs::File::open(path).map_err(crate::error::io(format!("open {}", path.display())))?;
    let own = std::fs::File::open("/proc/thread-self/ns/net")
        .map_err(crate::error::io("open own network namespace"))?;
    setns(&target, CloneFlags::CLONE_NEWNET)
        .map_err(crate::error::sys(format!("enter {}", path.display())))?;
    f();
    setns(&own, CloneFlags::CLONE_NEWNET)
        .map_err(crate::error::sys("return to own network namespace"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_paths_name_their_pid() {
        assert_eq!(proc_pid(Path::new("/proc/123/ns/net")), Some(123));
        assert_eq!(proc_pid(Path::new("/var/run/netns/x")), None);
    }
}
