//! docker 20.10 (Debian `docker.io`), a private `dockerd --config-file` instance with a
//! `urunc` runtime entry: `docker run --runtime urunc` of a Linux guest image prints and exits
//! with the guest's status; with bridge networking (docker's prestart hook moves the veth in)
//! the guest answers HTTP on the container IP; `docker exec` runs a process inside it;
//! `docker rm -f` leaves nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use urunc_engines_tests::{self as h, leftovers, Daemon};

const IMAGE: &str = "localhost/urunc-docker-guest:test";

/// The docker client of the daemon's version (a newer one may shadow it in /usr/local/bin).
fn docker_cli() -> &'static str {
    if Path::new("/usr/bin/docker").is_file() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

struct Docker {
    daemon: Daemon,
    sock: PathBuf,
    dir: PathBuf,
    bridge: String,
    parent: String,
    /// dockerd makes /run/docker/plugins whatever its exec-root: removed if it was not there
    run_docker_existed: bool,
}

impl Docker {
    fn start(dir: &Path, urunc: &Path) -> Docker {
        let pid = std::process::id();
        let bridge = format!("urdk{}", pid % 100_000);
        let parent = format!("/urunc-docker-test-{pid}");
        // our own bridge: docker uses it and leaves docker0 and the host alone
        h::del_link(&bridge);
        for a in [
            vec!["link", "add", &bridge, "type", "bridge"],
            vec!["addr", "add", "10.214.88.1/24", "dev", &bridge],
            vec!["link", "set", &bridge, "up"],
        ] {
            h::ok(Command::new("ip").args(a));
        }
        let run_docker_existed = Path::new("/run/docker").exists();
        let sock = dir.join("docker.sock");
        let config = serde_json::json!({
            "data-root": dir.join("data"),
            "exec-root": dir.join("exec"),
            "pidfile": dir.join("docker.pid"),
            "hosts": [format!("unix://{}", sock.display())],
            "runtimes": {"urunc": {"path": urunc}},
            "bridge": bridge,
            "iptables": false,
            "ip-masq": false,
            "ip-forward": false,
            "userland-proxy": false,
            "cgroup-parent": parent,
            "storage-driver": "overlay2",
            // else /etc/docker/key.json
            "deprecated-key-path": dir.join("key.json"),
        });
        std::fs::write(dir.join("daemon.json"), config.to_string()).expect("daemon.json");
        let daemon = Daemon::spawn(
            "dockerd",
            Command::new("dockerd")
                .arg("--config-file")
                .arg(dir.join("daemon.json")),
            dir.join("dockerd.log"),
        );
        let d = Docker {
            daemon,
            sock,
            dir: dir.to_path_buf(),
            bridge,
            parent,
            run_docker_existed,
        };
        let up = h::wait_for(Duration::from_secs(30), || {
            d.cli()
                .arg("version")
                .output()
                .ok()
                .filter(|o| o.status.success())
        });
        assert!(up.is_some(), "dockerd did not start:\n{}", d.daemon.tail());
        d
    }

    fn cli(&self) -> Command {
        let mut c = Command::new(docker_cli());
        c.arg("-H").arg(format!("unix://{}", self.sock.display()));
        c
    }
}

impl Drop for Docker {
    fn drop(&mut self) {
        let ids = self
            .cli()
            .args(["ps", "-aq"])
            .output()
            .map(|o| o.stdout)
            .unwrap_or_default();
        for id in String::from_utf8_lossy(&ids).split_whitespace() {
            let _ = h::run_timeout(self.cli().args(["rm", "-f", id]), Duration::from_secs(30));
        }
        self.daemon.stop();
        h::unmount_under(&self.dir);
        h::del_link(&self.bridge);
        leftovers::remove_cgroup_parent(&self.parent);
        let _ = Command::new("rm")
            .arg("-rf")
            .arg(self.dir.join("data"))
            .status();
        if !self.run_docker_existed {
            let _ = std::fs::remove_dir("/run/docker/plugins");
            let _ = std::fs::remove_dir("/run/docker");
        }
    }
}

#[test]
fn docker_runs_a_linux_guest() {
    let Some(assets) = h::require(&["dockerd", "containerd", "runc"]) else {
        return;
    };
    let urunc = h::urunc_bin();
    let work = h::workdir("dk-");
    // restores and checks the host paths engines write outside their roots (drops last)
    let _host = leftovers::HostGuard::new(&[&std::process::id().to_string()]);
    let taps_before = leftovers::taps();
    let docker = Docker::start(work.path(), &urunc);
    let image = h::guest_image(
        &assets,
        work.path(),
        &h::ImageSpec {
            name: IMAGE,
            format: "docker",
            urunc_json: true,
            cmd: h::HTTP_GUEST,
        },
    );
    h::ok(docker.cli().arg("load").arg("-i").arg(&image));

    // output and exit status; docker keeps the Entrypoint (/urunit) and replaces the Cmd
    let out = h::run_timeout(
        docker
            .cli()
            .args(["run", "--rm", "--runtime", "urunc", IMAGE])
            .args(["/bin/sh", "-c", "echo hello from the guest; exit 3"]),
        Duration::from_secs(120),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("hello from the guest"),
        "{}",
        docker.daemon.tail()
    );
    assert_eq!(out.status.code(), Some(3));

    // bridge networking: the guest answers on the container IP
    let id = h::ok(
        docker
            .cli()
            .args(["run", "-d", "--runtime", "urunc", IMAGE]),
    )
    .trim()
    .to_string();
    let ip = h::ok(
        docker
            .cli()
            .args(["inspect", "-f", "{{.NetworkSettings.IPAddress}}", &id]),
    )
    .trim()
    .to_string();
    assert!(ip.starts_with("10.214.88."), "container IP {ip:?}");
    // docker 20.10 passes `--root <exec-root>/runtime-runc/moby` to every runc-compatible
    // runtime: urunc's state is there while the container runs (so the leftover check below
    // looks where a leftover would be)
    let state = docker.dir.join("exec/runtime-runc/moby").join(&id);
    assert!(
        state.join("state.json").is_file(),
        "no urunc state at {}",
        state.display()
    );
    assert!(
        !leftovers::find(&id, std::slice::from_ref(&state)).is_empty(),
        "the leftover check does not see a running container"
    );
    let answer = h::http_get(&ip, Duration::from_secs(60));
    // docker exec (issue #17): dockerd -> containerd -> the runc-v2 shim -> urunc exec
    // --process --detach; output, the guest's hostname, and the process's status
    let ex = h::run_timeout(
        docker
            .cli()
            .args(["exec", &id, "/bin/sh", "-c"])
            .arg("echo exec-in-$(cat /proc/sys/kernel/hostname); echo exec-err >&2; exit 4"),
        Duration::from_secs(300),
    );
    let logs = h::run_timeout(docker.cli().args(["logs", &id]), Duration::from_secs(30));
    h::ok(docker.cli().args(["rm", "-f", &id]));
    assert!(
        String::from_utf8_lossy(&logs.stdout).contains("serving"),
        "the guest did not start its server"
    );
    assert!(
        String::from_utf8_lossy(&ex.stdout).contains(&format!("exec-in-{}", &id[..12])),
        "docker exec: {}\n{}",
        String::from_utf8_lossy(&ex.stdout),
        String::from_utf8_lossy(&ex.stderr)
    );
    assert!(String::from_utf8_lossy(&ex.stderr).contains("exec-err"));
    assert_eq!(
        ex.status.code(),
        Some(4),
        "docker exec returns the process's status"
    );
    assert!(
        answer.is_some(),
        "the guest did not answer HTTP on the container IP {ip}"
    );
    let left = h::wait_for(Duration::from_secs(10), || {
        let l = leftovers::find(&id, std::slice::from_ref(&state));
        l.is_empty().then_some(())
    });
    assert!(
        left.is_some(),
        "{id} left: {:#?}",
        leftovers::find(&id, &[state])
    );
    assert_eq!(
        leftovers::taps(),
        taps_before,
        "a tap was left in the host netns"
    );
}
