//! `run`: create + start; without `--detach`, wait for the workload, delete the container and
//! return its exit status.

use super::Ctx;
use crate::cli::CreateArgs;
use crate::error::Result;
use nix::sys::wait::{waitpid, WaitStatus};

pub fn run(ctx: &Ctx, a: &CreateArgs) -> Result<i32> {
    let created = super::create::create(ctx, a)?;
    if let Err(e) = super::start::run(ctx, &a.id) {
        let _ = super::delete::run(ctx, &a.id, true);
        return Err(e);
    }
    if a.detach {
        return Ok(0);
    }
    // The container process is our child: forward the usual signals to it while waiting.
    let code = loop {
        match waitpid(created.pid, None) {
            Ok(WaitStatus::Exited(_, c)) => break c,
            Ok(WaitStatus::Signaled(_, s, _)) => break 128 + s as i32,
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(crate::error::sys("wait for the container")(e)),
        }
    };
    super::delete::destroy(&created.state);
    Ok(code)
}
