//! `kill`: deliver a signal to the container (every process of its cgroup with `--all`).

use super::Ctx;
use crate::container::Status;
use crate::error::{Error, Result};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

pub fn parse_signal(s: &str) -> Result<Signal> {
    let bad = || Error::Msg(format!("unknown signal {s:?}"));
    if let Ok(n) = s.parse::<i32>() {
        return Signal::try_from(n).map_err(|_| bad());
    }
    let up = s.to_ascii_uppercase();
    let name = if up.starts_with("SIG") {
        up
    } else {
        format!("SIG{up}")
    };
    name.parse::<Signal>().map_err(|_| bad())
}

pub fn run(ctx: &Ctx, id: &str, signal: &str, all: bool) -> Result<i32> {
    let st = ctx.load(id)?;
    let sig = parse_signal(signal)?;
    if st.status() == Status::Stopped {
        if all {
            return Ok(0);
        }
        return Err(Error::Msg("container not running".into()));
    }
    if all {
        if let Some(cg) = st.cgroup() {
            for pid in cg.procs() {
                let _ = kill(Pid::from_raw(pid), sig);
            }
        }
    }
    match kill(Pid::from_raw(st.pid), sig) {
        Ok(()) => Ok(0),
        Err(nix::Error::ESRCH) if all => Ok(0),
        Err(nix::Error::ESRCH) => Err(Error::Msg("container not running: no such process".into())),
        Err(e) => Err(crate::error::sys("kill")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_forms() {
        for s in ["9", "KILL", "SIGKILL", "kill", "sigkill"] {
            assert_eq!(parse_signal(s).unwrap(), Signal::SIGKILL, "{s}");
        }
        assert_eq!(parse_signal("15").unwrap(), Signal::SIGTERM);
        assert_eq!(parse_signal("TERM").unwrap(), Signal::SIGTERM);
        assert!(parse_signal("NOPE")
            .unwrap_err()
            .to_string()
            .contains("unknown signal"));
        assert!(parse_signal("999").is_err());
    }
}
