//! The guest test assets (`scripts/prepare-assets.sh`), shared by the tests that boot guests.
#![allow(dead_code)] // each test crate that includes it uses part of it

use std::path::{Path, PathBuf};
use std::process::Command;

/// The assets directory (`$URUNC_TEST_ASSETS`, else `assets/`) when it holds `files`, QEMU is
/// installed and we are root. Otherwise the test is SKIPPED, or fails when `CI` is set.
pub fn guest_assets(files: &[&str]) -> Option<PathBuf> {
    guest_assets_for("qemu-system-x86_64", files)
}

/// The config file's `[monitors.qemu]` section (`qemu`: its keys) and a `[sandbox]` section
/// that keeps the monitor uid leases in `dir` (not in the host's /run/urunc).
pub fn config_toml(dir: &Path, qemu: &str) -> String {
    format!(
        "[monitors.qemu]\n{qemu}[sandbox]\nmonitor_uid_registry = \"{}\"\n",
        dir.join("monitor-uids").display()
    )
}

/// The assets directory (`$URUNC_TEST_ASSETS`, else `assets/`).
pub fn assets_dir() -> PathBuf {
    std::env::var_os("URUNC_TEST_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"))
}

/// `guest_assets` for guests that the QEMU binary `qemu` runs.
pub fn guest_assets_for(qemu: &str, files: &[&str]) -> Option<PathBuf> {
    let dir = assets_dir();
    let mut missing: Vec<String> = files
        .iter()
        .filter(|f| !dir.join(f).exists())
        .map(|f| dir.join(f).display().to_string())
        .collect();
    if Command::new(qemu).arg("--version").output().is_err() {
        missing.push(qemu.into());
    }
    if !nix::unistd::geteuid().is_root() {
        missing.push("root".into());
    }
    if missing.is_empty() {
        return Some(dir);
    }
    let msg = format!(
        "guest tests need {} (run scripts/prepare-assets.sh as root)",
        missing.join(", ")
    );
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    assert!(!ci, "{msg}");
    eprintln!("SKIPPED: {msg}");
    None
}
