//! `check`: whether this host can run guests, and with which monitors. Probes for real where
//! a probe is cheap: /dev/kvm runs a trivial guest (a /dev/kvm that opens but cannot run one is
//! "present but unusable", as under some nested virtualisation), a tap and a tc redirect are
//! made in a throw-away network namespace. Also reports the monitors and their versions,
//! Landlock, seccomp, cgroups and the delegate runtime.
//!
//! Exit status: 0 when at least one monitor can run guests here (possibly with warnings),
//! 1 when none can. `--format json` prints one JSON object for scripts.

mod host;
mod kvm;

use crate::error::Result;
use serde_json::{json, Map, Value};
use std::path::Path;
use std::time::Duration;

/// A trivial guest slower than this is as good as hung (nested KVM here: seconds per boot).
const KVM_SLOW_MICROS: u128 = 500_000;

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
            "detail": "opens; no trivial-guest probe on this architecture"});
    }
    let r = host::in_child(Duration::from_secs(3), || {
        kvm::run_guest().map(|(w, us)| format!("{w} {us}"))
    });
    let parsed = r.as_ref().ok().and_then(|s| {
        let mut it = s.split(' ').map(|n| n.parse::<u128>().ok());
        Some((it.next()??, it.next()??))
    });
    match (r, parsed) {
        (Ok(_), Some((w, us))) if w == kvm::WRITES as u128 && us < KVM_SLOW_MICROS => {
            json!({"present": true, "usable": true, "guest_micros": us,
                "detail": format!("a trivial guest ran in {} µs", us)})
        }
        (Ok(_), Some((w, us))) => json!({"present": true, "usable": false, "guest_micros": us,
            "detail": format!("present but unusable: a trivial guest took {} ms for {w} exits (nested virtualisation?)", us / 1000)}),
        (Ok(s), None) => json!({"present": true, "usable": false,
            "detail": format!("present but unusable: unexpected probe result {s:?}")}),
        (Err(e), _) => json!({"present": true, "usable": false,
            "detail": format!("present but unusable: a trivial guest {e}")}),
    }
}

/// The accelerator `create` would pick for QEMU (same rule as the runtime).
fn qemu_accel(configured: &str) -> &'static str {
    match configured {
        "tcg" => "tcg",
        "kvm" => "kvm",
        _ if std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/kvm")
            .is_ok() =>
        {
            "kvm"
        }
        _ => "tcg",
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
    let mut kvm = kvm_probe();
    if kvm["usable"] == true {
        // the trivial guest ran: does QEMU get a KVM vCPU the way the runtime asks for one?
        let qemu = crate::monitor::find_binary("qemu", &cfg.monitor("qemu"), arch);
        if let Ok(q) = qemu {
            if let Err(e) = host::qemu_kvm_start(&q) {
                kvm["usable"] = json!(false);
                kvm["detail"] = json!(format!(
                    "present but unusable: {}, but QEMU cannot start a KVM vCPU: {e}",
                    kvm["detail"].as_str().unwrap_or("")
                ));
            }
        }
    }
    let kvm_ok = kvm["usable"] == true;
    let seccomp = host::seccomp();
    let mut monitors = Map::new();
    for name in crate::monitor::NAMES {
        let mcfg = cfg.monitor(name);
        let mut m = match crate::monitor::find_binary(name, &mcfg, arch) {
            Ok(p) => json!({"found": true, "path": p, "version": host::version(&p)}),
            Err(e) => json!({"found": false, "detail": e.to_string()}),
        };
        let found = m["found"] == true;
        let (usable, needs) = match *name {
            "qemu" => (found, "KVM, or TCG (software emulation)"),
            "spt" => (found && seccomp["available"] == true, "seccomp"),
            _ => (found && kvm_ok, "KVM"),
        };
        m["usable"] = json!(usable && config_ok);
        m["needs"] = json!(needs);
        if *name == "qemu" && found {
            let accel = qemu_accel(&mcfg.accel);
            m["accel"] = json!(accel);
            if accel == "kvm" && !kvm_ok {
                warnings.push(format!(
                    "QEMU guests would use KVM, which cannot run guests here: set accel = \"tcg\" under [monitors.qemu] in {}, or give images the annotation com.urunc.unikernel.accel=tcg",
                    path.display()
                ));
            }
        }
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
