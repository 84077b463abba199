//! `scripts/install.sh --root DIR`: installs the binary and configures containerd, k3s, docker
//! and podman under DIR; containerd accepts the result (its runc runtime kept, urunc added);
//! urunc accepts its config; a second run changes nothing.

use std::process::Command;
use urunc_engines_tests as h;

fn snapshot(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut v = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                v.push((
                    e.path().display().to_string(),
                    std::fs::read(e.path()).unwrap(),
                ));
            }
        }
    }
    v.sort();
    v
}

#[test]
fn install_configures_every_engine_idempotently() {
    let root = h::workdir("install-");
    let install = || {
        h::ok(
            Command::new(h::repo().join("scripts/install.sh"))
                .arg("--root")
                .arg(root.path())
                .arg("--binary")
                .arg(h::urunc_bin())
                .args(["--tcg", "containerd", "k3s", "docker", "podman"]),
        )
    };
    let has_containerd = Command::new("containerd").arg("--version").output().is_ok();
    if !has_containerd {
        // without containerd there is no default config to start from
        std::fs::create_dir_all(root.path().join("etc/containerd")).unwrap();
        std::fs::write(
            root.path().join("etc/containerd/config.toml"),
            "version = 2\n",
        )
        .unwrap();
    }
    install();
    let first = snapshot(root.path());
    install();
    assert_eq!(snapshot(root.path()), first, "a second run changed files");
    let p = root.path();
    assert!(p.join("usr/local/bin/urunc").is_file());
    let docker = std::fs::read_to_string(p.join("etc/docker/daemon.json")).unwrap();
    let docker: serde_json::Value = serde_json::from_str(&docker).unwrap();
    assert_eq!(docker["runtimes"]["urunc"]["path"], "/usr/local/bin/urunc");
    let tmpl = std::fs::read_to_string(
        p.join("var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl"),
    )
    .unwrap();
    assert!(tmpl.starts_with("{{ template \"base\" . }}") && tmpl.contains("runtimes.urunc]"));
    let podman =
        std::fs::read_to_string(p.join("etc/containers/containers.conf.d/50-urunc.conf")).unwrap();
    assert!(podman.contains("urunc = [\"/usr/local/bin/urunc\"]"));
    let check = Command::new(h::urunc_bin())
        .env("URUNC_CONFIG", p.join("etc/urunc/config.toml"))
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    let check: serde_json::Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(check["config"]["ok"], true, "{}", check["config"]);
    if has_containerd {
        let dump = h::ok(
            Command::new("containerd")
                .arg("--config")
                .arg(p.join("etc/containerd/config.toml"))
                .args(["config", "dump"]),
        );
        assert!(dump.contains("containerd.runtimes.urunc]"), "{dump}");
        assert!(
            dump.contains("containerd.runtimes.runc]"),
            "runc runtime lost"
        );
        assert!(dump.contains("BinaryName = \"/usr/local/bin/urunc\""));
    }
}
