//! `check`: whether this host can run guests, and with which monitors. Probes for real where
//! a probe is cheap: /dev/kvm runs a trivial guest (a /dev/kvm that opens but cannot run one is
//! "present but unusable", as under some nested virtualisation), a tap and a tc redirect are
//! made in a throw-away network namespace. Also reports the monitors and their versions,
//! Landlock, seccomp, cgroups and the delegate runtime.
//!
//! Exit status: 0 when at least one monitor can run guests here (possibly with warnings),
//! 1 when none can. `--format json` prints one JSON object for scripts.

mod host;

use crate::error::Result;
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

pub fn run(as_json: bool) -> Result<i32> {
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
    let arch = crate::plan::Arch::host();
    let kvm = kvm_probe();
    let seccomp = host::seccomp();
    let mut monitors = Map::new();
    for name in crate::monitor::NAMES {
        let mcfg = cfg.monitor(name);
        let mut m = match crate::monitor::find_binary(name, &mcfg, arch) {
            Ok(p) => json!({"found": true, "path": p, "version": host::version(&p)}),
            Err(e) => json!({"found": false, "detail": e.to_string()}),
        };
        let found = m["found"] == true;
        let (usable, needs) = if found {
            monitor_accel(name, &mcfg.accel, &mut m, seccomp["available"] == true)
        } else {
            (false, "")
        };
        if *name == "qemu" && m["accel"] == "tcg" && mcfg.accel.is_empty() {
            warnings.push(format!(
                "QEMU guests run under TCG (software emulation, slow): {}",
                s(&m["accel_reason"])
            ));
        }
        m["usable"] = json!(usable && config_ok);
        m["needs"] = json!(needs);
        monitors.insert(name.to_string(), m);
    }
    let (tun, tc) = host::tun_tc();
    if tun["available"] == false || tc["available"] == false {
        warnings.push("guests cannot be networked: see tun and tc".into());
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
    let report = json!({
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
        "delegate": delegate,
        "warnings": warnings,
    });
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", text(&report));
    }
    Ok(if ok { 0 } else { 1 })
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        v => v.to_string(),
    }
}

fn yes(v: &Value, yes: &str, no: &str) -> String {
    if *v == true { yes } else { no }.to_string()
}

/// The human-readable report.
fn text(r: &Value) -> String {
    let mut out = String::new();
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<18} {v}\n"));
    line(
        "config",
        match r["config"]["ok"] == true {
            true if Path::new(&s(&r["config"]["path"])).exists() => s(&r["config"]["path"]),
            true => format!("{} absent: defaults", s(&r["config"]["path"])),
            false => s(&r["config"]["error"]),
        },
    );
    let k = &r["kvm"];
    line("kvm", yes(&k["usable"], "usable: ", "") + &s(&k["detail"]));
    for (name, m) in r["monitors"].as_object().into_iter().flatten() {
        let v = if m["found"] == true {
            let mut v = format!("{} ({})", s(&m["path"]), s(&m["version"]));
            v += &yes(
                &m["usable"],
                ": usable",
                &format!(": not usable here (needs {})", s(&m["needs"])),
            );
            if m["accel"].is_string() {
                v += &format!(", accel {}", s(&m["accel"]));
            }
            if m["accel_reason"].is_string() {
                v += &format!(" ({})", s(&m["accel_reason"]));
            }
            v
        } else {
            format!("not found: {}", s(&m["detail"]))
        };
        line(&format!("monitor {name}"), v);
    }
    let l = &r["landlock"];
    line(
        "landlock",
        if l["available"] == true {
            format!("ABI {}", s(&l["abi"]))
        } else {
            s(&l["detail"])
        },
    );
    let sc = &r["seccomp"];
    line(
        "seccomp",
        if sc["available"] == true {
            let a: Vec<String> = sc["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .map(s)
                .collect();
            format!("filters available ({})", a.join(" "))
        } else {
            s(&sc["detail"])
        },
    );
    let c = &r["cgroup"];
    let ctrls: Vec<String> = c["controllers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(s)
        .collect();
    line(
        "cgroup",
        format!(
            "{} [{}]; {}",
            s(&c["version"]),
            ctrls.join(" "),
            s(&c["detail"])
        ),
    );
    for key in ["tun", "tc"] {
        let t = &r[key];
        let mut v = match &t["available"] {
            Value::Bool(true) => "ok".to_string(),
            Value::Bool(false) => "NOT AVAILABLE".to_string(),
            _ => "unknown".to_string(),
        };
        if t["detail"].is_string() {
            v += &format!(": {}", s(&t["detail"]));
        }
        line(key, v);
    }
    let d = &r["delegate"];
    line(
        "delegate runtime",
        if d["found"] == true {
            format!("{} ({})", s(&d["path"]), s(&d["version"]))
        } else {
            "none (install runc or crun)".into()
        },
    );
    for w in r["warnings"].as_array().into_iter().flatten() {
        line("warning", s(w));
    }
    line(
        "verdict",
        format!("{}: {}", yes(&r["ok"], "OK", "FAIL"), s(&r["verdict"])),
    );
    out
}
