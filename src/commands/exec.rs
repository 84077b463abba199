//! `exec`: parses, calls `lifecycle::exec`, returns its status. Linux guests whose init is
//! urunit run the process in the guest; unikernels refuse at once (no process to enter);
//! delegated containers go to the delegate (`Ctx::load`).

use super::Ctx;
use crate::error::{Error, Result};
use crate::exec_args::ExecArgs;
use urunc::lifecycle::exec::{check, exec, ExecOptions};
use urunc::spec::Process;

pub fn run(ctx: &Ctx, a: &ExecArgs) -> Result<i32> {
    let st = ctx.load(&a.id)?;
    check(&st).map_err(|e| Error::Msg(e.to_string()))?;
    let process = match &a.process {
        Some(f) => {
            // the shim's process file: a runtime-spec Process, bounded like every input
            let data = urunc::sys::read_regular_capped(std::path::Path::new(f), 4 << 20)
                .map_err(|e| Error::Msg(format!("exec: cannot read --process {f}: {e}")))?;
            serde_json::from_slice::<Process>(&data).map_err(|e| {
                Error::Msg(format!("exec: --process {f} is not a process spec: {e}"))
            })?
        }
        None => command_line_process(a),
    };
    let opts = ExecOptions {
        process,
        console_socket: a.console_socket.as_ref().map(Into::into),
        detach: a.detach,
        pid_file: a.pid_file.as_ref().map(Into::into),
    };
    exec(&st, &opts).map_err(|e| Error::Msg(e.to_string()))
}

/// runc's plain form: the command, `-e`, `-u`, `--cwd`, `-t`.
fn command_line_process(a: &ExecArgs) -> Process {
    let mut p = Process {
        terminal: a.tty,
        args: a.command.clone(),
        env: a.env.clone(),
        cwd: a.cwd.clone().unwrap_or_else(|| "/".into()),
        ..Default::default()
    };
    if let Some((uid, gid)) = a.user {
        p.user.uid = uid;
        p.user.gid = gid.unwrap_or(0);
    }
    p.user.additional_gids = a.additional_gids.clone();
    p
}
