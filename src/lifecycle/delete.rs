//! `delete`: runc's semantics. Stopped: clean up. Created: kill, clean up. Running: refuse
//! without `--force`. Missing with `--force`: success. Half-made (a create of ours that failed
//! or was killed before `state.json`, recognised by its journal): remove what the journal
//! names; a create still running is killed first with `--force`, refused without.

use super::{remains, LifecycleError};
use crate::container::{Journal, State, StateError, Status};
use crate::error::Result;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::path::Path;
use std::time::Duration;

/// Deletes the recorded container `st` (stopping it first when `force`, or when only created).
pub fn delete(st: &State, force: bool) -> Result<()> {
    let id = &st.id;
    match st.status() {
        Status::Stopped => {}
        Status::Created => stop(st)?,
        s if force => {
            let _ = s;
            stop(st)?
        }
        s => {
            return Err(LifecycleError::DeleteRunning {
                id: id.clone(),
                status: s.as_str(),
            }
            .into());
        }
    }
    crate::fault::point("delete:stopped")?;
    destroy(st);
    Ok(())
}

/// SIGKILL the container process (and anything left in its cgroup) and wait for it.
pub fn stop(st: &State) -> Result<()> {
    let _ = kill(Pid::from_raw(st.pid), Signal::SIGKILL);
    if let Some(cg) = st.cgroup() {
        for p in cg.procs() {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        // a frozen task only dies once thawed
        if cg.is_frozen() {
            let _ = cg.set_frozen(false);
        }
    }
    if !wait_gone(st, Duration::from_secs(10)) {
        return Err(LifecycleError::KillTimeout(st.pid).into());
    }
    Ok(())
}

/// What `delete_half_made` found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfMade {
    /// Its remains are removed.
    Removed,
    /// Its create recorded the container meanwhile: delete it the ordinary way.
    Recorded,
}

/// A state directory with a journal and no `state.json`: its create did not get far enough to
/// record the container. Nothing ran its hooks, so none run here.
pub fn delete_half_made(root: &Path, id: &str, force: bool) -> Result<HalfMade> {
    let dir = crate::container::dir(root, id);
    let Some(j) = Journal::load(&dir)? else {
        return Err(StateError::Foreign.into());
    };
    if j.creator.alive() {
        if !force {
            return Err(LifecycleError::StillCreating {
                id: id.to_string(),
                pid: j.creator.pid,
            }
            .into());
        }
        remains::kill_proc(&j.creator);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while j.creator.alive() {
            if std::time::Instant::now() > deadline {
                return Err(LifecycleError::CreateKillTimeout {
                    id: id.to_string(),
                    pid: j.creator.pid,
                }
                .into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // the create may have got further before it died: re-read what it noted
    let j = Journal::load(&dir)?.unwrap_or(j);
    if dir.join(crate::container::STATE_FILE).exists() {
        return Ok(HalfMade::Recorded);
    }
    remains::remove(&dir, &j).map_err(LifecycleError::from)?;
    Ok(HalfMade::Removed)
}

/// Removes everything the container made, then runs poststop hooks.
pub fn destroy(st: &State) {
    crate::net::cleanup(st);
    let _ = crate::fault::point("delete:network");
    // the container process may have died wiring the network (its tap not recorded yet)
    if let Ok(Some(j)) = Journal::load(&st.dir) {
        if let (Some(net), None) = (&j.net, &st.urunc.tap) {
            let owner = crate::container::Proc {
                pid: st.pid,
                start: st.pid_start,
            };
            crate::net::cleanup_intent(net, owner, true);
        }
    }
    // block devices the guest took over go back where they were mounted
    crate::storage::release(&st.dir);
    crate::sandbox::monitor_ns::release(&st.dir);
    if let Some(cg) = st.cgroup() {
        for p in cg.procs() {
            let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
        }
        cg.remove();
    }
    let _ = crate::fault::point("delete:cgroup");
    if let Err(e) = remove_state_dir(&st.dir) {
        log::warn!("cannot remove {}: {e}", st.dir.display());
    }
    if let Err(e) = crate::hooks::run("poststop", &st.urunc.hooks.poststop, &st.oci("stopped")) {
        log::warn!("{e}");
    }
}

/// Removes a container's state directory in an order that leaves, wherever a kill stops it,
/// a directory `state` and `delete --force` still recognise: everything else first, then
/// `state.json`, the journal last (alone, it marks a half-made container, whose remains
/// `delete_half_made` removes).
fn remove_state_dir(dir: &Path) -> std::io::Result<()> {
    use crate::container::{JOURNAL, STATE_FILE};
    let gone = |r: std::io::Result<()>| match r {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name();
        if name == STATE_FILE || name == JOURNAL {
            continue;
        }
        // remove_dir_all does not follow links (the work directory is the monitor user's)
        gone(if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(e.path())
        } else {
            std::fs::remove_file(e.path())
        })?;
    }
    let _ = crate::fault::point("delete:files");
    gone(std::fs::remove_file(dir.join(STATE_FILE)))?;
    let _ = crate::fault::point("delete:state-file");
    gone(std::fs::remove_file(dir.join(JOURNAL)))?;
    std::fs::remove_dir(dir)
}

/// Waits until the container process is gone (it may be a zombie of its parent).
pub fn wait_gone(st: &State, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    while st.is_alive() {
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}
