//! `pause` and `resume`: freeze and thaw the container's cgroup.

use super::Ctx;
use crate::container::Status;
use crate::error::{Error, Result};

pub fn run(ctx: &Ctx, id: &str, freeze: bool) -> Result<i32> {
    let st = ctx.load(id)?;
    let status = st.status();
    match (freeze, status) {
        (true, Status::Running | Status::Created) | (false, Status::Paused) => {}
        (true, Status::Paused) => return Err(Error::Msg("container already paused".into())),
        (false, Status::Running | Status::Created) => {
            return Err(Error::Msg("container not paused".into()))
        }
        (_, Status::Stopped) => return Err(Error::Msg("container not running".into())),
    }
    let cg = st
        .cgroup()
        .ok_or_else(|| Error::Msg("container has no cgroup to freeze".into()))?;
    cg.set_frozen(freeze)?;
    Ok(0)
}
