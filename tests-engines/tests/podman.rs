//! podman 4.3 rootful with `--runtime <urunc>`: the guest image carries no `/urunc.json`, so
//! its settings must arrive through `--annotation`; the guest prints and exits with its status,
//! `podman exec` (through conmon) runs a process inside a running guest, and nothing is left
//! behind. Private storage, runroot, tmpdir and containers.conf (cgroupfs,
//! file events, ulimits this machine can grant: no CAP_SYS_RESOURCE).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use urunc_engines_tests::{self as h, leftovers};

const IMAGE: &str = "localhost/urunc-podman-guest:test";

struct Podman {
    dir: PathBuf,
    parent: String,
}

impl Podman {
    fn new(dir: &Path) -> Podman {
        let conf = format!(
            r#"[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{}/events.log"
"#,
            dir.display()
        );
        std::fs::write(dir.join("containers.conf"), conf).expect("containers.conf");
        Podman {
            dir: dir.to_path_buf(),
            parent: format!("/urunc-podman-test-{}", std::process::id()),
        }
    }

    fn cmd(&self) -> Command {
        let mut c = Command::new("podman");
        c.env("CONTAINERS_CONF", self.dir.join("containers.conf"))
            .arg("--root")
            .arg(self.dir.join("storage"))
            .arg("--runroot")
            .arg(self.dir.join("run"))
            .arg("--tmpdir")
            .arg(self.dir.join("tmp"))
            .args(["--cgroup-manager", "cgroupfs", "--events-backend", "file"]);
        c
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = h::run_timeout(
            self.cmd().args(["rm", "-af", "-t", "0"]),
            Duration::from_secs(60),
        );
        h::unmount_under(&self.dir);
        leftovers::remove_cgroup_parent(&self.parent);
        let _ = Command::new("rm")
            .arg("-rf")
            .arg(self.dir.join("storage"))
            .status();
    }
}

#[test]
fn podman_runs_a_linux_guest_from_annotations() {
    let Some(assets) = h::require(&["podman", "conmon", "runc"]) else {
        return;
    };
    let urunc = h::urunc_bin();
    let work = h::workdir("pm-");
    // restores and checks the host paths engines write outside their roots (drops last)
    let _host = leftovers::HostGuard::new(&[&std::process::id().to_string()]);
    let podman = Podman::new(work.path());
    let image = h::guest_image(
        &assets,
        work.path(),
        &h::ImageSpec {
            name: IMAGE,
            format: "oci",
            urunc_json: false,
            cmd: &["/bin/sh", "-c", "echo hello"],
        },
    );
    h::ok(podman.cmd().arg("load").arg("-i").arg(&image));

    let name = format!("urunc-podman-{}", std::process::id());
    let mut run = podman.cmd();
    run.arg("--runtime")
        .arg(&urunc)
        .args(["run", "--name", &name, "--network", "none"])
        .args(["--cgroup-parent", &podman.parent]);
    for (k, v) in h::guest_annotations() {
        run.arg("--annotation").arg(format!("{k}={v}"));
    }
    run.args([IMAGE, "/bin/sh", "-c", "echo hello from podman; exit 3"]);
    let out = h::run_timeout(&mut run, Duration::from_secs(120));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello from podman"));
    assert_eq!(out.status.code(), Some(3));
    let id = h::ok(podman.cmd().args(["inspect", "-f", "{{.Id}}", &name]))
        .trim()
        .to_string();
    let status = h::ok(
        podman
            .cmd()
            .args(["inspect", "-f", "{{.State.Status}}", &name]),
    );
    assert_eq!(status.trim(), "exited");
    h::ok(podman.cmd().args(["rm", &name]));
    // podman passes no --root: urunc's default root
    let left = leftovers::find(&id, &[PathBuf::from("/run/urunc").join(&id)]);
    assert!(left.is_empty(), "{id} left: {left:#?}");

    // podman exec (issue #17): conmon calls `urunc exec --process --detach --pid-file`
    let name = format!("urunc-podman-exec-{}", std::process::id());
    let mut run = podman.cmd();
    run.arg("--runtime")
        .arg(&urunc)
        .args(["run", "-d", "--name", &name, "--network", "none"])
        .args(["--cgroup-parent", &podman.parent]);
    for (k, v) in h::guest_annotations() {
        run.arg("--annotation").arg(format!("{k}={v}"));
    }
    run.args([IMAGE, "/bin/sh", "-c", "echo ready; exec sleep 600"]);
    h::ok(&mut run);
    let id = h::ok(podman.cmd().args(["inspect", "-f", "{{.Id}}", &name]))
        .trim()
        .to_string();
    let ex = h::run_timeout(
        podman
            .cmd()
            .args(["exec", &name, "/bin/sh", "-c"])
            .arg("echo podman-exec-$((2*21)); echo exec-err >&2; exit 6"),
        Duration::from_secs(300),
    );
    h::ok(podman.cmd().args(["rm", "-f", &name]));
    assert!(
        String::from_utf8_lossy(&ex.stdout).contains("podman-exec-42"),
        "podman exec: {}\n{}",
        String::from_utf8_lossy(&ex.stdout),
        String::from_utf8_lossy(&ex.stderr)
    );
    assert!(String::from_utf8_lossy(&ex.stderr).contains("exec-err"));
    assert_eq!(
        ex.status.code(),
        Some(6),
        "podman exec returns the process's status"
    );
    let left = leftovers::find(&id, &[PathBuf::from("/run/urunc").join(&id)]);
    assert!(left.is_empty(), "{id} left: {left:#?}");
}
