//! `urunc check`: the JSON report has every section, the exit status matches the verdict, and
//! on a host with QEMU the verdict is that guests can run (QEMU works without KVM).

use std::process::Command;
use urunc_engines_tests as h;

#[test]
fn check_reports_every_section_and_its_verdict() {
    let out = Command::new(h::urunc_bin())
        .args(["check", "--format", "json"])
        .output()
        .expect("urunc check");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("check prints JSON");
    eprintln!("{}", serde_json::to_string_pretty(&r).unwrap());
    for k in [
        "ok", "verdict", "config", "kvm", "monitors", "landlock", "seccomp", "cgroup", "tun", "tc",
        "nft", "delegate", "warnings",
    ] {
        assert!(r.get(k).is_some(), "no {k} in the report");
    }
    for m in ["qemu", "firecracker", "cloud-hypervisor", "hvt", "spt"] {
        assert!(r["monitors"][m]["found"].is_boolean(), "monitor {m}");
    }
    assert_eq!(out.status.code(), Some(if r["ok"] == true { 0 } else { 1 }));
    if r["monitors"]["qemu"]["found"] == true && r["config"]["ok"] == true {
        assert_eq!(r["ok"], true, "QEMU alone (TCG) makes a usable host");
    }
    if std::path::Path::new("/dev/kvm").exists() {
        assert_eq!(r["kvm"]["present"], true);
        let unusable = r["kvm"]["usable"] == false;
        let detail = r["kvm"]["detail"].as_str().unwrap_or("");
        assert_eq!(unusable, detail.starts_with("present but"), "{detail}");
    }
    // QEMU's accelerator is the one create would choose, backed by a probe of QEMU itself:
    // never "accel kvm" where KVM cannot run QEMU's guests
    let q = &r["monitors"]["qemu"];
    if q["found"] == true {
        let reason = q["accel_reason"].as_str().unwrap_or("");
        match q["accel"].as_str() {
            Some("kvm") => assert!(
                reason.contains("booted urunc's probe guest with -accel kvm")
                    || reason.contains("requested"),
                "{q}"
            ),
            Some("tcg") => assert!(!reason.is_empty(), "{q}"),
            other => panic!("qemu accel {other:?}: {q}"),
        }
    }
    // SAFETY: getuid has no preconditions
    if unsafe { libc::getuid() } == 0 && std::path::Path::new("/dev/net/tun").exists() {
        assert_eq!(r["tun"]["available"], true, "{}", r["tun"]);
        // this kernel has nf_tables NAT and the socket expression (test-machine.md)
        assert_eq!(r["nft"]["available"], true, "{}", r["nft"]);
    }
    let text = Command::new(h::urunc_bin())
        .arg("check")
        .output()
        .expect("urunc check");
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.lines().any(|l| l.starts_with("verdict")), "{text}");
}
