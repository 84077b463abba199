//! `exec`: parses, calls `lifecycle::exec`, returns its status. Linux guests whose init is
//! urunit run the process in the guest; unikernels refuse at once (no process to enter);
//! delegated containers go to the delegate (`Ctx::load`).

use super::Ctx;
use crate::error::{Error, Result};
use crate::exec_args::ExecArgs;
use urunc::lifecycle::exec::{check, exec, ExecOptions};
use urunc::lifecycle::exec_process::{from_command_line, from_file, CommandLine};

pub fn run(ctx: &Ctx, a: &ExecArgs) -> Result<i32> {
    let st = ctx.load(&a.id)?;
    let msg = |e: urunc::lifecycle::exec::ExecError| Error::Msg(e.to_string());
    check(&st).map_err(msg)?;
    let (process, console_size) = match &a.process {
        Some(f) => from_file(std::path::Path::new(f)).map_err(msg)?,
        None => {
            let cl = CommandLine {
                command: a.command.clone(),
                tty: a.tty,
                env: a.env.clone(),
                cwd: a.cwd.clone(),
                user: a.user,
                additional_gids: a.additional_gids.clone(),
            };
            (from_command_line(&cl, &st.bundle), None)
        }
    };
    let opts = ExecOptions {
        process,
        console_size,
        console_socket: a.console_socket.as_ref().map(Into::into),
        detach: a.detach,
        pid_file: a.pid_file.as_ref().map(Into::into),
    };
    exec(&st, &opts).map_err(msg)
}
