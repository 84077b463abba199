//! `check`: whether this host can run guests, and with which monitors. Probes for real where
//! a probe is cheap: /dev/kvm runs a trivial guest (a /dev/kvm that opens but cannot run one is
//! "present but unusable", as under some nested virtualisation), a tap and a tc redirect are
//! made in a throw-away network namespace. Also reports the monitors and their versions,
//! Landlock, seccomp, cgroups and the delegate runtime.
//!
//! `report()` is the whole finding as one JSON object (`ok` is true when at least one monitor
//! can run guests here); the `check` verb prints it as JSON or as text.

mod host;

use serde_json::{json, Map, Value};
use std::path::Path;

fn kvm_probe() -> Value {
    if !Path::new("/dev/kvm").exists() {
        return json!({"present": false, "usable": false,
            "detail": "no /dev/kvm (no hardware virtualisation, or the kvm module is not loaded)"});
    }
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return json!({"present": true, "usable": false,
            "detail": format!("present but not accessible to this user: {e}")});
    }
    if !cfg!(target_arch = "x86_64") {
        return json!({"present": true, "usable": true,
            "detail": "opens; each monitor is probed below"});
    }
    let (v, _) = crate::accel::probe::dev_kvm();
    json!({"present": true, "usable": v.kvm,
        "detail": if v.kvm { v.reason } else { format!("present but unusable: {}", v.reason) }})
}

/// The accelerator `create` would pick for a found monitor (the same rule, probed afresh), and
/// whether the monitor is usable with it.
fn monitor_accel(
    name: &str,
    configured: &str,
    m: &mut Value,
    seccomp: bool,
) -> (bool, &'static str) {
    let d = crate::accel::declaration(name);
    let needs = match d.support {
        crate::accel::Support::Emulates => "KVM, or TCG (software emulation)",
        crate::accel::Support::KvmOnly => "KVM",
        crate::accel::Support::NoKvm => "seccomp",
    };
    if d.support == crate::accel::Support::NoKvm {
        return (seccomp, needs);
    }
    let path = std::path::PathBuf::from(s(&m["path"]));
    let req = crate::accel::Request {
        monitor: name,
        binary: &path,
        requested: configured,
        arch: crate::plan::Arch::host(),
        cache_root: None,
    };
    match crate::accel::decide(&req, d, || crate::accel::verdict(name, &path, None)) {
        Ok(c) => {
            m["accel"] = json!(match c.accel {
                crate::plan::Accel::Kvm => "kvm",
                crate::plan::Accel::Tcg => "tcg",
            });
            m["accel_reason"] = json!(c.reason);
            (true, needs)
        }
        Err(e) => {
            m["accel_reason"] = json!(e.to_string());
            (false, needs)
        }
    }
}

/// Probes this host and returns the report (see the module's documentation).
pub fn report() -> Value {
    let path = crate::config::Config::path();
    let mut warnings: Vec<String> = Vec::new();
    let (cfg, config) = match crate::config::Config::load() {
        Ok(c) => (c, json!({"path": path, "ok": true})),
        Err(e) => {
            warnings.push(format!("{e}: every container would fail to start"));
            (
                crate::config::Config::default(),
                json!({"path": path, "ok": false, "error": e.to_string()}),
            )
        }
    };
    let config_ok = config["ok"] == true;
    let kvm = kvm_probe();
    let seccomp = host::seccomp();
    let monitors = monitors(&cfg, config_ok, seccomp["available"] == true, &mut warnings);
    let (tun, tc) = host::tun_tc();
    if tun["available"] == false || tc["available"] == false {
        warnings.push("guests cannot be networked: see tun and tc".into());
    }
    let nft = host::nft();
    if nft["available"] == false {
        warnings.push("pod network mode is unavailable: see nft".into());
    }
    let delegate = match crate::delegate::find(&cfg.delegate.runtime) {
        Some(p) => json!({"found": true, "path": p, "version": host::version(&p)}),
        None => {
            warnings.push("no delegate runtime (runc or crun): pods' pause containers and ordinary containers cannot run".into());
            json!({"found": false})
        }
    };
    let landlock = host::landlock();
    if landlock["available"] == false {
        warnings.push(format!(
            "landlock: {}",
            landlock["detail"].as_str().unwrap_or("")
        ));
    }
    let usable: Vec<&str> = monitors
        .iter()
        .filter(|(_, m)| m["usable"] == true)
        .map(|(n, _)| n.as_str())
        .collect();
    let ok = !usable.is_empty();
    let verdict = if ok {
        format!("this host can run guests with {}", usable.join(", "))
    } else if !config_ok {
        "the urunc config file is invalid".to_string()
    } else {
        "no monitor can run guests here: install QEMU (works without KVM) or make /dev/kvm usable"
            .to_string()
    };
    json!({
        "ok": ok,
        "verdict": verdict,
        "arch": std::env::consts::ARCH,
        "config": config,
        "kvm": kvm,
        "monitors": monitors,
        "landlock": landlock,
        "seccomp": seccomp,
        "cgroup": host::cgroups(),
        "tun": tun,
        "tc": tc,
        "nft": nft,
        "delegate": delegate,
        "warnings": warnings,
    })
}

/// Each monitor: found where, which version, usable here with which accelerator.
fn monitors(
    cfg: &crate::config::Config,
    config_ok: bool,
    seccomp: bool,
    warnings: &mut Vec<String>,
) -> Map<String, Value> {
    let arch = crate::plan::Arch::host();
    let mut monitors = Map::new();
    for name in crate::monitor::NAMES {
        let mcfg = cfg.monitor(name);
        let mut m = match crate::monitor::find_binary(name, &mcfg, arch) {
            Ok(p) => json!({"found": true, "path": p, "version": host::version(&p)}),
            Err(e) => json!({"found": false, "detail": e.to_string()}),
        };
        let found = m["found"] == true;
        let (usable, needs) = if found {
            monitor_accel(name, &mcfg.accel, &mut m, seccomp)
        } else {
            (false, "")
        };
        let emulates = crate::monitor::declaration(name).support == crate::accel::Support::Emulates;
        if emulates && m["accel"] == "tcg" && mcfg.accel.is_empty() {
            warnings.push(format!(
                "QEMU guests run under TCG (software emulation, slow): {}",
                s(&m["accel_reason"])
            ));
        }
        m["usable"] = json!(usable && config_ok);
        m["needs"] = json!(needs);
        monitors.insert(name.to_string(), m);
    }
    monitors
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}
