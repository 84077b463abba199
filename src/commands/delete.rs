//! `delete`: runc's semantics. Stopped: clean up. Created: kill, clean up. Running: refuse
//! without `--force`. Missing with `--force`: success. Half-made (a create of ours that failed
//! or was killed before `state.json`, recognised by its journal): remove what the journal
//! names; a create still running is killed first with `--force`, refused without.

use super::Ctx;
use crate::container::{Journal, State, StateError, Status};
use crate::error::{Error, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;
use urunc::lifecycle::remains;

pub fn run(ctx: &Ctx, id: &str, force: bool) -> Result<i32> {
    let st = match ctx.load(id) {
        Ok(s) => s,
        Err(Error::State(StateError::NotExist)) if force => {
            return Ok(0);
        }
        Err(Error::State(StateError::Incomplete)) => return half_made(ctx, id, force),
        Err(e) => return Err(e),
    };
    match st.status() {
        Status::Stopped => {}
        Status::Created => stop(&st)?,
        s if force => {
            let _ = s;
            stop(&st)?
        }
        s => {
            return Err(Error::Msg(format!(
                "cannot delete container {id} that is not stopped: {}",
                s.as_str()
            )));
        }
    }
    destroy(&st);
    Ok(0)
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
    if !super::wait_gone(st, Duration::from_secs(10)) {
        return Err(Error::Msg(format!(
            "timeout waiting for pid {} to die",
            st.pid
        )));
    }
    Ok(())
}

/// A state directory with a journal and no `state.json`: its create did not get far enough to
/// record the container. Nothing ran its hooks, so none run here.
fn half_made(ctx: &Ctx, id: &str, force: bool) -> Result<i32> {
    let dir = crate::container::dir(&ctx.root, id);
    let Some(j) = Journal::load(&dir)? else {
        return Err(StateError::Foreign.into());
    };
    if j.creator.alive() {
        if !force {
            return Err(Error::Msg(format!(
                "container {id} is still being created (create is pid {}): wait for it, or use delete --force",
                j.creator.pid
            )));
        }
        remains::kill_proc(&j.creator);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while j.creator.alive() {
            if std::time::Instant::now() > deadline {
                return Err(Error::Msg(format!(
                    "timeout waiting for the create of {id} (pid {}) to die",
                    j.creator.pid
                )));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    // the create may have got further before it died: re-read what it noted
    let j = Journal::load(&dir)?.unwrap_or(j);
    if dir.join(crate::container::STATE_FILE).exists() {
        // it recorded the container meanwhile: the ordinary path removes it
        return run(ctx, id, force);
    }
    remains::remove(&dir, &j).map_err(|e| Error::Msg(e.to_string()))?;
    Ok(0)
}

/// Removes everything the container made, then runs poststop hooks.
pub fn destroy(st: &State) {
    crate::net::cleanup(st);
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
    if let Err(e) = std::fs::remove_dir_all(&st.dir) {
        log::warn!("cannot remove {}: {e}", st.dir.display());
    }
    if let Err(e) = crate::hooks::run("poststop", &st.urunc.hooks.poststop, &st.oci("stopped")) {
        log::warn!("{e}");
    }
}
