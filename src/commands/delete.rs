//! `delete`: runc's semantics. Stopped: clean up. Created: kill, clean up. Running: refuse
//! without `--force`. Missing with `--force`: success. Half-made (a create of ours that failed
//! or was killed before `state.json`, recognised by its journal): remove what the journal
//! names; a create still running is killed first with `--force`, refused without. The work is
//! the engine's (`lifecycle::delete`).

use super::Ctx;
use crate::container::StateError;
use crate::error::{Error, Result};
use urunc::lifecycle::{self, HalfMade};

pub use urunc::lifecycle::destroy;

pub fn run(ctx: &Ctx, id: &str, force: bool) -> Result<i32> {
    let st = match ctx.load(id) {
        Ok(s) => s,
        Err(Error::State(StateError::NotExist)) if force => {
            // a create killed before its state directory was in place left a temp directory
            // that names no id: every one whose create is dead goes
            crate::container::sweep_temp_dirs(&ctx.root);
            return Ok(0);
        }
        Err(Error::State(StateError::Incomplete)) => {
            return match lifecycle::delete_half_made(&ctx.root, id, force)? {
                HalfMade::Removed => Ok(0),
                // it recorded the container meanwhile: the ordinary path removes it
                HalfMade::Recorded => run(ctx, id, force),
            };
        }
        Err(e) => return Err(e),
    };
    lifecycle::delete(&st, force)?;
    Ok(0)
}
