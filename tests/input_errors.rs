//! Input that is wrong gives one clear error naming its cause, and leaves nothing behind
//! (issue 12 item 8, issue 14's annotation errors, issue 13's config compatibility).

mod common;

use common::{stderr, unique, Env};
use serde_json::json;
use std::process::Stdio;
use std::time::Duration;

/// `create` of `bundle` as a fresh id; returns (success, console text) and checks no state dir
/// is left on failure.
fn create(env: &Env, bundle: &std::path::Path) -> (bool, String) {
    let id = unique("in");
    let o = env.create(bundle, &id, &[]);
    let text = env.console_text(&id);
    if !o.status.success() {
        assert!(!env.root.join(&id).exists(), "state left after: {text}");
    } else {
        let _ = env.urunc(&["delete", "--force", &id]);
    }
    (o.status.success(), text)
}

#[test]
fn some_but_not_all_unikernel_keys_name_the_missing_ones() {
    let env = Env::new();
    let b = env.bundle_with("partial", "exit 0", |s| {
        s["annotations"] = json!({"com.urunc.unikernel.unikernelType": "unikraft"});
    });
    let (ok, text) = create(&env, &b);
    assert!(!ok);
    assert!(
        text.contains("com.urunc.unikernel.hypervisor, com.urunc.unikernel.binary missing"),
        "{text}"
    );
    // the same from /urunc.json (base64 values, as upstream urunc writes it)
    let b = env.bundle_with("partial-json", "exit 0", |s| s["annotations"] = json!({}));
    std::fs::write(
        b.join("rootfs/urunc.json"),
        r#"{"com.urunc.unikernel.hypervisor":"cWVtdQ==","com.urunc.unikernel.binary":"L2tlcm5lbA=="}"#,
    )
    .unwrap();
    let (ok, text) = create(&env, &b);
    assert!(!ok);
    assert!(text.contains("set in /urunc.json"), "{text}");
    assert!(
        text.contains("com.urunc.unikernel.unikernelType missing"),
        "{text}"
    );
}

#[test]
fn debug_logs_the_delegation_decision() {
    let env = Env::with_config("[delegate]\nruntime = \"/nonexistent/delegate\"\n");
    let b = env.bundle_with("plain", "exit 0", |s| s["annotations"] = json!({}));
    let log = env.dir.path().join("debug.log");
    let o = env
        .cmd()
        .arg("--debug")
        .arg("--log")
        .arg(&log)
        .args(["create", "--bundle"])
        .arg(&b)
        .arg(unique("dl"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!o.status.success());
    let text = std::fs::read_to_string(&log).unwrap_or_default() + &stderr(&o);
    assert!(
        text.contains(
            "not a unikernel bundle: no com.urunc.unikernel.* annotations and no /urunc.json"
        ),
        "{text}"
    );
}

#[test]
fn bad_values_name_their_annotation_or_config_key() {
    let env = Env::new();
    let b = env.bundle_with("vmm", "exit 0", |s| {
        s["annotations"]["com.urunc.unikernel.hypervisor"] = json!("qemuX");
    });
    let (ok, text) = create(&env, &b);
    assert!(!ok);
    assert!(
        text.contains("annotation com.urunc.unikernel.hypervisor: vmm \"qemuX\" is not supported"),
        "{text}"
    );
    // a value that would reach the kernel command line with a newline
    let b = env.bundle_with("cmd", "exit 0", |s| {
        s["annotations"]["com.urunc.unikernel.cmdline"] = json!("a\ninit=/bin/sh");
    });
    let (ok, text) = create(&env, &b);
    assert!(!ok);
    assert!(
        text.contains("for annotation com.urunc.unikernel.cmdline: control character"),
        "{text}"
    );
    // 2^44 MiB wrapped to "-m 1M" before: now an error naming the key
    let env = Env::with_config("");
    let cfg = std::fs::read_to_string(&env.config).unwrap().replacen(
        "[monitors.qemu]\n",
        "[monitors.qemu]\ndefault_memory_mb = 17592186044416\n",
        1,
    );
    std::fs::write(&env.config, cfg).unwrap();
    let b = env.bundle("mem", "exit 0");
    let (ok, text) = create(&env, &b);
    assert!(!ok);
    assert!(
        text.contains("[monitors.qemu] default_memory_mb = 17592186044416"),
        "{text}"
    );
}

#[test]
fn missing_rootfs_long_id_and_bad_root_say_so() {
    let env = Env::new();
    let b = env.bundle("norootfs", "exit 0");
    std::fs::remove_dir_all(b.join("rootfs")).unwrap();
    let (ok, text) = create(&env, &b);
    assert!(!ok);
    assert!(text.contains("container rootfs"), "{text}");

    let b = env.bundle("id", "exit 0");
    let id = "a".repeat(256);
    let o = env.urunc(&["create", "--bundle", b.to_str().unwrap(), &id]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("at most 255"), "{}", stderr(&o));

    for (what, make) in [
        ("a symlink to a missing directory", 0),
        ("exists and is not a directory", 1),
    ] {
        let root = env.dir.path().join(format!("badroot{make}"));
        if make == 0 {
            std::os::unix::fs::symlink("/nonexistent/urunc-root", &root).unwrap();
        } else {
            std::fs::write(&root, b"").unwrap();
        }
        let o = std::process::Command::new(common::urunc_bin())
            .env("URUNC_CONFIG", &env.config)
            .arg("--root")
            .arg(&root)
            .args(["create", "--bundle", b.to_str().unwrap(), &unique("r")])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(stderr(&o).contains(what), "{}", stderr(&o));
    }
}

#[test]
fn config_file_fifo_unknown_monitor_and_upstream_override() {
    let env = Env::new();
    let b = env.bundle("cfg", "exit 0");
    let run = |var: &str, path: &std::path::Path| {
        let mut c = std::process::Command::new(common::urunc_bin());
        c.env_remove("URUNC_CONFIG")
            .env(var, path)
            .arg("--root")
            .arg(&env.root)
            .args(["create", "--bundle", b.to_str().unwrap(), &unique("c")]);
        // only guards against a hang: reading a FIFO used to block forever
        common::output_within(
            c,
            Duration::from_secs(120),
            "create reading its config file",
        )
    };
    let fifo = env.dir.path().join("fifo.toml");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
    let o = run("URUNC_CONFIG", &fifo);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    let bad = env.dir.path().join("unknown.toml");
    std::fs::write(&bad, "[monitors.qemuX]\npath = \"/usr/bin/qemu\"\n").unwrap();
    // upstream urunc's variable is honoured: the file it names is the one read
    let o = run("URUNC_CONFIG_FILE", &bad);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown section [monitors.qemuX]"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn config_json_that_is_a_fifo_is_refused_without_hanging() {
    let env = Env::new();
    let b = env.dir.path().join("fifo-bundle");
    std::fs::create_dir_all(b.join("rootfs")).unwrap();
    nix::unistd::mkfifo(&b.join("config.json"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    let id = unique("fifo");
    let mut c = env.cmd();
    c.args(["create", "--bundle", b.to_str().unwrap(), &id]);
    // only guards against a hang: reading a FIFO config.json used to block forever
    let o = common::output_within(c, Duration::from_secs(120), "create reading config.json");
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not a regular file"), "{}", stderr(&o));
    assert!(!env.root.join(&id).exists());
}
