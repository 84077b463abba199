//! `exec`: a unikernel container runs a VM; there is no process to enter. Fail at once (never
//! hang, as Argo users saw with the Go urunc); delegated containers go to the delegate.

use super::Ctx;
use crate::error::{Error, Result};

pub fn run(ctx: &Ctx, id: &str) -> Result<i32> {
    let _st = ctx.load(id)?;
    Err(Error::Msg(format!(
        "exec is not supported for unikernel container {id}: its workload runs inside a virtual machine and has no process to exec into"
    )))
}
