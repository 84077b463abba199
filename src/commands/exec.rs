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
    let (process, console_size) = match &a.process {
        Some(f) => {
            // the shim's process file: a runtime-spec Process, bounded like every input
            let data = urunc::sys::read_regular_capped(std::path::Path::new(f), 4 << 20)
                .map_err(|e| Error::Msg(format!("exec: cannot read --process {f}: {e}")))?;
            let bad = |e: serde_json::Error| {
                Error::Msg(format!("exec: --process {f} is not a process spec: {e}"))
            };
            let v: serde_json::Value = serde_json::from_slice(&data).map_err(bad)?;
            let size = console_size(&v);
            (serde_json::from_value::<Process>(v).map_err(bad)?, size)
        }
        None => (command_line_process(a, &st.bundle), None),
    };
    let opts = ExecOptions {
        process,
        console_size,
        console_socket: a.console_socket.as_ref().map(Into::into),
        detach: a.detach,
        pid_file: a.pid_file.as_ref().map(Into::into),
    };
    exec(&st, &opts).map_err(|e| Error::Msg(e.to_string()))
}

/// runc's plain form: the container's own process (its user, cwd and environment, from the
/// bundle's config.json when it is still readable) with the command, `-e` (added after the
/// container's variables), `-u`, `--cwd`, `--additional-gids`, `-t`.
fn command_line_process(a: &ExecArgs, bundle: &std::path::Path) -> Process {
    let mut p = urunc::spec::Spec::load(bundle)
        .ok()
        .and_then(|s| s.process().ok().cloned())
        .unwrap_or_default();
    p.terminal = a.tty;
    p.args = a.command.clone();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or_default();
        p.env.retain(|old| old.split('=').next() != Some(key));
        p.env.push(e.clone());
    }
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    if let Some((uid, gid)) = a.user {
        p.user.uid = uid;
        p.user.gid = gid.unwrap_or(0);
        p.user.additional_gids.clear();
    }
    if !a.additional_gids.is_empty() {
        p.user.additional_gids = a.additional_gids.clone();
    }
    p
}

/// `consoleSize` {height, width} of a process spec, when both fit a terminal's u16.
fn console_size(v: &serde_json::Value) -> Option<(u16, u16)> {
    let dim = |k: &str| u16::try_from(v["consoleSize"][k].as_u64()?).ok();
    Some((dim("height")?, dim("width")?)).filter(|(h, w)| *h > 0 && *w > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn console_size_is_read_when_it_fits() {
        let v = serde_json::json!({"consoleSize": {"height": 33, "width": 99}});
        assert_eq!(super::console_size(&v), Some((33, 99)));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"consoleSize": {"height": 70000, "width": 99}}),
            serde_json::json!({"consoleSize": {"height": 0, "width": 99}}),
            serde_json::json!({"consoleSize": {"height": "33", "width": 99}}),
        ] {
            assert_eq!(super::console_size(&bad), None, "{bad}");
        }
    }
}
