//! Removing what a `create` of ours left when it did not finish (it failed, or was killed), as
//! its journal names it: the container process, everything in its cgroups, the network wiring,
//! block devices taken from the host (mounted back), the monitor uid lease, the cgroups in every
//! hierarchy, and the state directory. Used by a failing `create` and by `delete` of a half-made container.

use crate::container::{Journal, Proc};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum RemainsError {
    #[error("the processes of the half-made container {id} did not die within {secs} s (pids {pids:?}): nothing was removed, try again")]
    Alive {
        id: String,
        secs: u64,
        pids: Vec<i32>,
    },
}

/// How long the container's processes get to die after SIGKILL (a frozen cgroup is thawed).
const DIE_TIMEOUT: Duration = Duration::from_secs(10);

/// SIGKILLs `p` if it is still the process the journal named.
pub fn kill_proc(p: &Proc) {
    if p.alive() {
        let _ = kill(Pid::from_raw(p.pid), Signal::SIGKILL);
    }
}

/// Kills the container process and everything in its cgroups, and waits until they are gone.
fn kill_all(j: &Journal) -> Result<(), RemainsError> {
    let deadline = Instant::now() + DIE_TIMEOUT;
    loop {
        let mut alive = Vec::new();
        if let Some(c) = j.child.filter(|c| c.alive()) {
            let _ = kill(Pid::from_raw(c.pid), Signal::SIGKILL);
            alive.push(c.pid);
        }
        if let Some(cg) = &j.cgroup {
            for p in cg.procs() {
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                alive.push(p);
            }
            // a frozen task only dies once thawed
            if cg.is_frozen() {
                let _ = cg.set_frozen(false);
            }
        }
        // a zombie is dead already (its parent reaps it)
        alive.retain(|p| crate::container::process_start_time(*p).is_some());
        if alive.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(RemainsError::Alive {
                id: j.id.clone(),
                secs: DIE_TIMEOUT.as_secs(),
                pids: alive,
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Removes everything `j` names, and `dir`. The `create` that wrote it must be gone (or be
/// the caller).
pub fn remove(dir: &Path, j: &Journal) -> Result<(), RemainsError> {
    kill_all(j)?;
    if let (Some(net), Some(owner)) = (&j.net, j.child) {
        crate::net::cleanup_intent(net, owner, true);
    }
    // block devices taken from the host go back where they were mounted (storage.json)
    crate::storage::release(dir);
    // the monitor uid leased by the container process (its record is in `dir`)
    crate::sandbox::monitor_ns::release(dir);
    if let Some(cg) = &j.cgroup {
        cg.remove();
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            log::warn!("cannot remove {}: {e}", dir.display());
        }
    }
    Ok(())
}
