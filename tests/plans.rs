//! Launch plans through the real lifecycle: the fake monitor, installed as each monitor's
//! `path`, receives exactly the planned argv (written here by hand) and the generated files.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(10);
const SANDBOX: &str = "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny";

/// An environment where QEMU runs under TCG and the KVM-only monitors under KVM (the fake
/// monitor needs neither).
fn env() -> Env {
    let env = Env::new();
    let fake = fakevmm_bin();
    let mut text = String::new();
    for (m, accel) in [
        ("qemu", "tcg"),
        ("firecracker", "kvm"),
        ("cloud-hypervisor", "kvm"),
        ("hvt", "kvm"),
        ("spt", "tcg"),
    ] {
        text.push_str(&format!(
            "[monitors.{m}]\npath = \"{}\"\naccel = \"{accel}\"\n",
            fake.display()
        ));
    }
    std::fs::write(&env.config, text).unwrap();
    env
}

fn bundle(env: &Env, name: &str, guest: &str, monitor: &str, args: &[&str]) -> PathBuf {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    env.bundle_with(name, "report\nwait-term 0", |s| {
        s["annotations"]["com.urunc.unikernel.unikernelType"] = guest.into();
        s["annotations"]["com.urunc.unikernel.hypervisor"] = monitor.into();
        s["process"]["args"] = args.into();
    })
}

/// Starts the container and returns the argv the fake monitor received.
fn started_argv(env: &Env, b: &Path, id: &str) -> Vec<String> {
    started(env, b, id)["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect()
}

/// Starts the container and returns the fake monitor's report.
fn started(env: &Env, b: &Path, id: &str) -> serde_json::Value {
    let o = env.create(b, id, &[]);
    assert!(o.status.success(), "create: {}", env.console_text(id));
    let o = env.urunc(&["start", id]);
    assert!(o.status.success(), "start: {}", stderr(&o));
    report(&env.wait_console(id, "FAKEVMM-REPORT", T))
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// The kernel as the monitor names it: at its image path (`com.urunc.unikernel.binary`), the
/// path it has inside the monitor's filesystem view (`sandbox::view`), never the host path.
fn kernel(b: &Path) -> String {
    assert!(b.join("rootfs/kernel").is_file());
    "/kernel".into()
}

#[test]
fn qemu_linux_with_urunit_and_a_memory_limit() {
    let env = env();
    let b = env.bundle_with("b", "report\nwait-term 0", |s| {
        s["linux"]["resources"] = serde_json::json!({"memory": {"limit": 512 * 1024 * 1024}});
    });
    let id = unique("qemu");
    let r = started(&env, &b, &id);
    let argv: Vec<String> = serde_json::from_value(r["argv"].clone()).unwrap();
    // urunit's channel: an inherited socket, its number wherever the supervisor had it
    let chardev = argv
        .iter()
        .find(|a| a.starts_with("socket,id=urunit,fd="))
        .expect("urunit channel");
    let fd = chardev.trim_start_matches("socket,id=urunit,fd=");
    assert!(
        r["fds"][fd].as_str().unwrap().starts_with("socket:"),
        "{}",
        r["fds"]
    );
    let work = env.root.join(&id).join("work");
    let fake = fakevmm_bin().display().to_string();
    assert_eq!(
        argv,
        s(&[
            &fake,
            "-M", "pc",
            "-accel", "tcg,tb-size=32", "-cpu", "max",
            "-m", "416M", "-smp", "1",
            "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
            "-sandbox", SANDBOX,
            "-kernel", &kernel(&b),
            // the channel on the guest's ttyS1 (8250, built into stock kernels)
            "-chardev", chardev,
            "-device", "isa-serial,chardev=urunit,index=1",
            "-initrd", &work.join("urunit.conf").display().to_string(),
            "-no-reboot",
            "-append",
            "panic=-1 console=ttyS0 quiet loglevel=2 retain_initrd URUNIT_CONFIG=/sys/firmware/initrd init=/urunit -- /bin/app 'an arg'",
        ])
    );
    // reference 4.6: the legacy sections for upstream's urunit, then the v1 encoding ours reads
    let conf = std::fs::read(work.join("urunit.conf")).unwrap();
    assert!(conf.starts_with(b"UES\nPATH=/bin\nUEE\nUCS\nUID:0\nGID:0\nWD:/\nUCE\nUBS\nUBE\n\0"));
    let c = urunit_proto::Config::decode_file(&conf).unwrap();
    assert_eq!(c.hostname.as_deref(), Some("guest"));
    assert_eq!(
        c.channel,
        Some(urunit_proto::Channel::Serial("ttyS1".into()))
    );
}

#[test]
fn firecracker_reads_its_config_from_the_work_dir() {
    let env = env();
    let b = bundle(
        &env,
        "b",
        "unikraft",
        "firecracker",
        &["hello", "Unikraft FC"],
    );
    let id = unique("fc");
    let argv = started_argv(&env, &b, &id);
    let cfg = env.root.join(&id).join("work/fc.json");
    assert_eq!(
        argv,
        s(&[
            &fakevmm_bin().display().to_string(),
            "--no-api",
            "--config-file",
            &cfg.display().to_string(),
        ])
    );
    assert_eq!(
        std::fs::read_to_string(&cfg).unwrap(),
        format!(
            r#"{{"boot-source":{{"kernel_image_path":"{}","boot_args":"Unikraft env.vars=[ PATH=/bin ] -- hello \"Unikraft FC\""}},"machine-config":{{"vcpu_count":1,"mem_size_mib":256,"smt":false,"track_dirty_pages":false}},"drives":[]}}"#,
            kernel(&b)
        )
    );
}

#[test]
fn cloud_hypervisor_and_solo5_argv() {
    let env = env();
    let fake = fakevmm_bin().display().to_string();
    let b = bundle(&env, "ch", "linux", "cloud-hypervisor", &["/sbin/init"]);
    let id = unique("ch");
    assert_eq!(
        started_argv(&env, &b, &id),
        s(&[
            &fake,
            "--memory",
            "size=256M",
            "--cpus",
            "boot=1",
            "--kernel",
            &kernel(&b),
            "--console",
            "off",
            "--serial",
            "tty",
            "--seccomp",
            "true",
            "--cmdline",
            "panic=-1 console=ttyS0 quiet loglevel=2 PATH=/bin init=/sbin/init",
        ])
    );

    let b = bundle(&env, "spt", "rumprun", "spt", &["hello", "world"]);
    let id = unique("spt");
    assert_eq!(
        started_argv(&env, &b, &id),
        s(&[
            &fake,
            "--mem=256",
            &kernel(&b),
            r#"{"cmdline":"hello world","env":"PATH=/bin"}"#,
        ])
    );

    // hvt gets urunc's tight seccomp allow-list, which the (glibc) fake monitor cannot live
    // with: without linux.seccomp it runs and reports its argv...
    let b = bundle(&env, "hvt", "mirage", "hvt", &["--hello=hola hola"]);
    let mut spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    spec["linux"].as_object_mut().unwrap().remove("seccomp");
    std::fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    let id = unique("hvt");
    assert_eq!(
        started_argv(&env, &b, &id),
        s(&[&fake, "--mem=256", &kernel(&b), "\"--hello=hola hola\""])
    );
    // ...and with it, the allow-list kills it at its first syscall outside the list (SIGSYS)
    let b = bundle(&env, "hvt2", "mirage", "hvt", &["--hello=x"]);
    let id = unique("hvt");
    env.track(&id);
    let o = env
        .cmd()
        .args(["run", "--bundle", b.to_str().unwrap(), &id])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(128 + 31), "{}", stderr(&o));
}

#[test]
fn wrong_guest_or_monitor_fails_at_create_leaving_nothing() {
    let env = env();
    for (name, guest, monitor, want) in [
        (
            "g",
            "ukl",
            "qemu",
            "unikernel type \"ukl\" is not supported",
        ),
        ("m", "unikraft", "hedge", "vmm \"hedge\" is not supported"),
        ("w", "rumprun", "qemu", "cannot run on vmm qemu"),
    ] {
        let b = bundle(&env, name, guest, monitor, &["x"]);
        let id = unique(name);
        let o = env.create(&b, &id, &[]);
        assert!(!o.status.success());
        let text = env.console_text(&id);
        assert!(text.contains(want), "{want:?} not in {text}");
        assert!(!env.root.join(&id).exists());
    }
}
