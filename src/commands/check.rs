//! `check`: whether this host can run guests, and with which monitors (the probing is the
//! engine's `hostcheck`).
//!
//! Exit status: 0 when at least one monitor can run guests here (possibly with warnings),
//! 1 when none can. `--format json` prints one JSON object for scripts.

use crate::error::Result;
use serde_json::Value;
use std::path::Path;

pub fn run(as_json: bool) -> Result<i32> {
    let report = urunc::hostcheck::report();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        print!("{}", text(&report));
    }
    Ok(if report["ok"] == true { 0 } else { 1 })
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
        line(&format!("monitor {name}"), monitor_line(m));
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
            format!("filters available ({})", words(&sc["actions"]))
        } else {
            s(&sc["detail"])
        },
    );
    let c = &r["cgroup"];
    line(
        "cgroup",
        format!(
            "{} [{}]; {}",
            s(&c["version"]),
            words(&c["controllers"]),
            s(&c["detail"])
        ),
    );
    for key in ["tun", "tc", "nft"] {
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

/// A monitor's line: where it is and its version, whether it is usable here, its accelerator.
fn monitor_line(m: &Value) -> String {
    if m["found"] != true {
        return format!("not found: {}", s(&m["detail"]));
    }
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
}

/// The strings of a JSON array, space-separated.
fn words(a: &Value) -> String {
    let v: Vec<String> = a.as_array().into_iter().flatten().map(s).collect();
    v.join(" ")
}
