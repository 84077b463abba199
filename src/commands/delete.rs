//! `delete`: runc's semantics. Stopped: clean up. Created: kill, clean up. Running: refuse
//! without `--force`. Missing with `--force`: success.

use super::Ctx;
use crate::container::{State, StateError, Status};
use crate::error::{Error, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::Duration;

pub fn run(ctx: &Ctx, id: &str, force: bool) -> Result<i32> {
    let st = match ctx.load(id) {
        Ok(s) => s,
        Err(Error::State(StateError::NotExist)) if force => {
            return Ok(0);
        }
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

/// Removes everything the container made, then runs poststop hooks.
pub fn destroy(st: &State) {
    crate::net::cleanup(st);
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
