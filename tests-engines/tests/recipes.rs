//! The engine recipes of docs/engines.md ("Starting an engine on a host without systemd"),
//! run as written: each ```sh block whose first line is `# recipe: NAME` runs under
//! `bash -euo pipefail` with `DIR` (a scratch directory) and `URUNC` (the binary under test)
//! set, from a directory holding the repository's `scripts/` and the guest `assets/`. A recipe
//! passes when it exits 0 and the guest's greeting reached its output.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use urunc_engines_tests::{self as h, leftovers};

/// The recipe `name` from docs/engines.md.
fn recipe(name: &str) -> String {
    let doc = std::fs::read_to_string(h::repo().join("docs/engines.md")).expect("engines.md");
    let head = format!("```sh\n# recipe: {name}\n");
    let start = doc
        .find(&head)
        .unwrap_or_else(|| panic!("no recipe {name} in docs/engines.md"))
        + "```sh\n".len();
    let len = doc[start..].find("\n```").expect("end of the recipe block");
    doc[start..start + len].to_string()
}

/// Stops what a recipe started (the pids it wrote under DIR) and removes DIR, also when the
/// recipe failed half-way.
struct Scratch {
    dir: tempfile::TempDir,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for f in ["containerd.pid", "docker.pid"] {
            let Ok(pid) = std::fs::read_to_string(self.dir.path().join(f)) else {
                continue;
            };
            let Ok(pid) = pid.trim().parse::<i32>() else {
                continue;
            };
            // SAFETY: kill(2) on the pid the recipe's daemon wrote; at worst it is gone
            unsafe { libc::kill(pid, libc::SIGTERM) };
            let gone = h::wait_for(Duration::from_secs(30), || {
                // SAFETY: signal 0 only checks for existence
                (unsafe { libc::kill(pid, 0) } != 0).then_some(())
            });
            if gone.is_none() {
                // SAFETY: as above
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        h::unmount_under(self.dir.path());
        let _ = h::run_timeout(
            Command::new("rm")
                .arg("-rf")
                .arg(self.dir.path().join("docker")),
            Duration::from_secs(60),
        );
        let _ = h::run_timeout(
            Command::new("rm")
                .arg("-rf")
                .arg(self.dir.path().join("containerd")),
            Duration::from_secs(60),
        );
        let _ = h::run_timeout(
            Command::new("rm")
                .arg("-rf")
                .arg(self.dir.path().join("podman")),
            Duration::from_secs(60),
        );
    }
}

fn run_recipe(name: &str, assets: &Path) {
    let script = recipe(name);
    let scratch = Scratch {
        dir: h::workdir("rcp-"),
    };
    let dir = scratch.dir.path();
    // the working directory a reader has: scripts/ and assets/ side by side
    let cwd = dir.join("repo");
    std::fs::create_dir_all(&cwd).unwrap();
    std::os::unix::fs::symlink(h::repo().join("scripts"), cwd.join("scripts")).unwrap();
    std::os::unix::fs::symlink(assets, cwd.join("assets")).unwrap();
    let out = h::run_timeout(
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .env("DIR", dir.join("e"))
            .env("URUNC", h::urunc_bin())
            .current_dir(&cwd),
        Duration::from_secs(600),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let logs: String = ["containerd.log", "dockerd.log"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(dir.join("e").join(f)).ok())
        .map(|l| l.lines().rev().take(20).collect::<Vec<_>>().join("\n"))
        .collect();
    assert!(
        out.status.success(),
        "recipe {name} failed: {}\n{stdout}\n{logs}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("hello from the guest"),
        "recipe {name}: no greeting in {stdout}"
    );
    drop(scratch);
}

/// One engine at a time: their host-path guards must not see each other's daemons.
static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn assets_or_skip(commands: &[&str]) -> Option<PathBuf> {
    h::require(commands)
}

#[test]
fn the_containerd_recipe_runs_as_written() {
    let Some(assets) = assets_or_skip(&["containerd", "ctr", "containerd-shim-runc-v2", "runc"])
    else {
        return;
    };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let _host = leftovers::HostGuard::new(&["hello-ctr"]);
    run_recipe("containerd", &assets);
}

#[test]
fn the_docker_recipe_runs_as_written() {
    let Some(assets) = assets_or_skip(&["dockerd", "containerd", "runc"]) else {
        return;
    };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let _host = leftovers::HostGuard::new(&["hello"]);
    run_recipe("docker", &assets);
}

#[test]
fn the_podman_recipe_runs_as_written() {
    let Some(assets) = assets_or_skip(&["podman", "conmon", "runc"]) else {
        return;
    };
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
    let _host = leftovers::HostGuard::new(&["hello"]);
    run_recipe("podman", &assets);
}
