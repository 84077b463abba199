//! `start`: the engine's `lifecycle::start` on the recorded container.

use super::Ctx;
use crate::error::Result;

pub fn run(ctx: &Ctx, id: &str) -> Result<i32> {
    let t0 = std::time::SystemTime::now();
    let st = ctx.load(id)?;
    urunc::lifecycle::start(&st, t0)?;
    Ok(0)
}
