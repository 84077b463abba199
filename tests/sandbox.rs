//! The monitor sandbox, through the real lifecycle: the fake monitor reports from inside what
//! it runs as (ids, capabilities, no_new_privs, seccomp, Landlock, cgroup, namespaces), and
//! probes each layer. Each test fails when its layer is removed. Needs root.

mod common;

use common::{report, stderr, unique, Env};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::time::Duration;

const T: Duration = Duration::from_secs(20);

/// Lets a non-root monitor traverse the test's temp dir (tempfile makes it 0700).
fn open_up(env: &Env) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod tempdir");
}

/// create + start `bundle` as `id`; panics with urunc's error otherwise.
fn run(env: &Env, bundle: &Path, id: &str) {
    let o = env.create(bundle, id, &[]);
    assert!(o.status.success(), "create {id}: {}", env.console_text(id));
    let o = env.urunc(&["start", id]);
    assert!(o.status.success(), "start {id}: {}", stderr(&o));
}

/// Runs `script` to completion and returns the console text.
fn run_script(env: &Env, name: &str, script: &str, tweak: impl FnOnce(&mut Value)) -> String {
    let id = unique(name);
    let b = env.bundle_with(&id, script, tweak);
    run(env, &b, &id);
    env.wait_status(&id, "stopped", T);
    env.console_text(&id)
}

fn set_user(spec: &mut Value, uid: u32, gid: u32, extra: &[u32]) {
    spec["process"]["user"] = json!({"uid": uid, "gid": gid, "additionalGids": extra});
}

/// `Uid:`/`Gid:` fields of /proc/<pid>/status: real, effective, saved, fs.
fn ids(field: &Value) -> Vec<u32> {
    field
        .as_str()
        .unwrap_or("")
        .split_whitespace()
        .map(|s| s.parse().expect("id"))
        .collect()
}

fn caps_zero(r: &Value) {
    for k in ["cap_eff", "cap_prm", "cap_inh", "cap_bnd", "cap_amb"] {
        assert_eq!(r[k], "0000000000000000", "{k} in {r}");
    }
}

fn line_with<'a>(console: &'a str, prefix: &str) -> &'a str {
    console
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in:\n{console}"))
}

#[test]
fn root_monitor_keeps_no_capability() {
    let env = Env::new();
    let c = run_script(&env, "sb-root", "report", |_| {});
    let r = report(&c);
    assert_eq!(ids(&r["uid"]), [0, 0, 0, 0]);
    assert_eq!(ids(&r["gid"]), [0, 0, 0, 0]);
    assert_eq!(r["groups"], "");
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["seccomp"], "2");
}

#[test]
fn monitor_runs_as_the_spec_user_and_groups() {
    let env = Env::new();
    open_up(&env);
    let c = run_script(&env, "sb-user", "report", |s| {
        set_user(s, 1000, 1001, &[2001, 2000])
    });
    let r = report(&c);
    assert_eq!(ids(&r["uid"]), [1000; 4]);
    assert_eq!(ids(&r["gid"]), [1001; 4]);
    assert_eq!(ids(&r["groups"]), [2000, 2001]);
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
}

#[test]
fn kvm_group_is_added_only_when_the_monitor_needs_kvm() {
    let with_kvm = |accel: &str| {
        let env = Env::with_config("");
        // the harness makes every monitor tcg; rewrite qemu's section
        let cfg = std::fs::read_to_string(&env.config).unwrap().replacen(
            "accel = \"tcg\"",
            &format!("accel = \"{accel}\"\nkvm_group = \"4321\""),
            1,
        );
        std::fs::write(&env.config, cfg).unwrap();
        open_up(&env);
        let c = run_script(&env, "sb-kvm", "report", |s| {
            set_user(s, 1000, 1000, &[2000])
        });
        ids(&report(&c)["groups"])
    };
    assert_eq!(with_kvm("kvm"), [2000, 4321]);
    assert_eq!(with_kvm("tcg"), [2000]);
}

#[test]
fn seccomp_denies_what_no_monitor_needs() {
    let env = Env::new();
    let c = run_script(
        &env,
        "sb-seccomp",
        "report\nsyscall unshare\nsyscall getpid\nsyscall ptrace",
        |_| {},
    );
    assert_eq!(report(&c)["seccomp"], "2");
    // an unprivileged process may create a user namespace here; only the filter refuses it
    assert!(
        line_with(&c, "FAKEVMM-SYSCALL unshare").ends_with("(os error 1)"),
        "{c}"
    );
    assert_eq!(
        line_with(&c, "FAKEVMM-SYSCALL getpid"),
        "FAKEVMM-SYSCALL getpid ok"
    );
    assert!(
        line_with(&c, "FAKEVMM-SYSCALL ptrace").contains("os error 1"),
        "{c}"
    );
    assert!(report(&c)["argv"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a.as_str().unwrap_or("").starts_with("on,obsolete=deny")));
}

#[test]
fn no_linux_seccomp_means_no_monitor_filter() {
    let env = Env::new();
    let c = run_script(&env, "sb-noseccomp", "report\nsyscall unshare", |s| {
        s["linux"].as_object_mut().unwrap().remove("seccomp");
    });
    let r = report(&c);
    assert_eq!(r["seccomp"], "0");
    assert_eq!(
        line_with(&c, "FAKEVMM-SYSCALL unshare"),
        "FAKEVMM-SYSCALL unshare ok"
    );
    assert!(!r["argv"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "-sandbox"));
    // the other layers stay
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
}

#[test]
fn landlock_allows_only_the_monitors_files() {
    let env = Env::new();
    let id = unique("sb-landlock");
    let rootfs = env.dir.path().join(&id).join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    std::fs::write(rootfs.join("secret"), "s").unwrap();
    let outside = env.dir.path().join("outside");
    std::fs::write(&outside, "o").unwrap();
    let script = format!(
        "read {k}\nread {s}\nread /etc/hostname\nread {o}\nwrite {o}\nread /proc/self/status",
        k = rootfs.join("kernel").display(),
        s = rootfs.join("secret").display(),
        o = outside.display(),
    );
    let b = env.bundle_with(&id, &script, |_| {});
    run(&env, &b, &id);
    env.wait_status(&id, "stopped", T);
    let c = env.console_text(&id);
    let probe = |what: &str, p: &Path| {
        line_with(&c, &format!("FAKEVMM-{what} {} ", p.display()))
            .rsplit_once(' ')
            .map(|(_, r)| r.to_string())
            .unwrap()
    };
    assert_eq!(probe("READ", &rootfs.join("kernel")), "ok", "{c}");
    assert_eq!(probe("READ", Path::new("/proc/self/status")), "ok", "{c}");
    let denied = "13)"; // EACCES from Landlock: root would pass DAC
    assert!(
        probe("READ", &rootfs.join("secret")).ends_with(denied),
        "{c}"
    );
    assert!(
        probe("READ", Path::new("/etc/hostname")).ends_with(denied),
        "{c}"
    );
    assert!(probe("READ", &outside).ends_with(denied), "{c}");
    assert!(probe("WRITE", &outside).ends_with(denied), "{c}");
}

/// A network namespace made with `ip netns add`, removed on drop.
struct NetNs(String);

impl NetNs {
    fn new() -> NetNs {
        let name = unique("urunc-sb");
        let st = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("ip netns add");
        assert!(st.success());
        NetNs(name)
    }
    fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.0)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

fn ns_inode(path: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino().to_string()
}

#[test]
fn monitor_sits_in_the_containers_cgroup_and_namespaces() {
    let env = Env::new();
    let netns = NetNs::new();
    let cg = format!("/urunc-test/{}", unique("sb-cg"));
    let c = run_script(&env, "sb-ns", "report", |s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["linux"]["namespaces"] = json!([
            {"type": "pid"}, {"type": "mount"}, {"type": "ipc"}, {"type": "uts"},
            {"type": "network", "path": netns.path()}
        ]);
    });
    let r = report(&c);
    let link = |n: &str| r["ns"][n].as_str().unwrap_or("").to_string();
    assert_eq!(link("net"), format!("net:[{}]", ns_inode(&netns.path())));
    for n in ["pid", "mnt", "ipc", "uts"] {
        let ours = std::fs::read_link(format!("/proc/self/ns/{n}")).unwrap();
        assert_ne!(link(n), ours.display().to_string(), "{n} namespace not new");
    }
    let cgroups = r["cgroup"].as_str().unwrap();
    assert!(
        cgroups.lines().any(|l| l.ends_with(&format!(":{cg}"))),
        "{cgroups}"
    );
    // the supervisor is PID 1 of the new PID namespace, the monitor its child
    assert_eq!(r["pid"], 2, "{r}");
    let _ = std::fs::remove_dir_all("/sys/fs/cgroup/pids/urunc-test");
}

#[test]
fn memory_limit_is_enforced_on_the_monitor() {
    let env = Env::new();
    let mib = 64i64 << 20;
    let c = run_script(
        &env,
        "sb-mem",
        "alloc 16\nprint after-16\nalloc 128\nprint after-128",
        |s| s["linux"]["resources"] = json!({"memory": {"limit": mib, "swap": mib}}),
    );
    assert!(c.contains("FAKEVMM-ALLOC 16 ok"), "{c}");
    assert!(!c.contains("after-128"), "allocated past the limit:\n{c}");
}

#[test]
fn pids_limit_is_enforced_on_the_whole_sandbox() {
    let env = Env::new();
    // supervisor + monitor + 2 children fit; the rest must be refused
    let c = run_script(&env, "sb-pids", "fork 2\nfork 8", |s| {
        s["linux"]["resources"] = json!({"pids": {"limit": 4}})
    });
    let forks: Vec<&str> = c
        .lines()
        .filter(|l| l.starts_with("FAKEVMM-FORK"))
        .collect();
    assert_eq!(forks.len(), 2, "{c}");
    assert_eq!(forks[0], "FAKEVMM-FORK ok", "{c}");
    assert!(forks[1].contains("os error 11"), "{c}");
}

fn cgroup_file(rel: &str, file: &str) -> Option<String> {
    common::cgroup_dirs(rel)
        .into_iter()
        .map(|d| d.join(file))
        .find(|f| f.exists())
        .and_then(|f| std::fs::read_to_string(f).ok())
        .map(|s| s.trim().to_string())
}

#[test]
fn update_changes_limits_live_and_delete_removes_the_cgroup() {
    let env = Env::new();
    let id = unique("sb-update");
    let cg = format!("/urunc-test/{id}");
    let b = env.bundle_with(&id, "tick 50", |s| {
        s["linux"]["cgroupsPath"] = json!(cg);
        s["linux"]["resources"] = json!({"memory": {"limit": 256i64 << 20}, "pids": {"limit": 50}});
    });
    run(&env, &b, &id);
    assert_eq!(cgroup_file(&cg, "pids.max").as_deref(), Some("50"));
    let o = env.urunc(&["update", "--memory", "134217728", "--pids-limit", "20", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cgroup_file(&cg, "pids.max").as_deref(), Some("20"));
    assert_eq!(
        cgroup_file(&cg, "memory.limit_in_bytes")
            .or_else(|| cgroup_file(&cg, "memory.max"))
            .as_deref(),
        Some("134217728")
    );
    let res = env.dir.path().join("res.json");
    std::fs::write(&res, r#"{"pids": {"limit": 7}}"#).unwrap();
    let o = env.urunc(&["update", "--resources", res.to_str().unwrap(), &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(cgroup_file(&cg, "pids.max").as_deref(), Some("7"));
    let o = env.urunc(&["delete", "--force", &id]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(common::cgroup_dirs(&cg).iter().all(|d| !d.exists()));
}

fn proc_status(pid: i64) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap()
}

fn field<'a>(status: &'a str, key: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or("")
        .trim()
}

#[test]
fn supervisor_is_confined_after_start() {
    let env = Env::new();
    open_up(&env);
    let id = unique("sb-sup");
    let b = env.bundle_with(&id, "tick 50", |s| set_user(s, 1000, 1000, &[]));
    run(&env, &b, &id);
    env.wait_console(&id, "FAKEVMM-TICK", T);
    let pid = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let st = proc_status(pid);
    for k in ["CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"] {
        assert_eq!(field(&st, k), "0000000000000000", "{k}:\n{st}");
    }
    assert_eq!(field(&st, "NoNewPrivs"), "1");
    assert_eq!(field(&st, "Seccomp"), "2");
    assert_eq!(
        field(&st, "Uid").split_whitespace().collect::<Vec<_>>(),
        ["1000"; 4]
    );
    // still in charge: SIGTERM reaches the monitor, which exits
    let o = env.urunc(&["kill", &id, "TERM"]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.wait_status(&id, "stopped", T);
    assert!(env.console_text(&id).contains("FAKEVMM-TERM"));
}

/// A tiny Multiboot kernel: prints `msg` on the serial port, then powers the machine off
/// (ACPI PM1a_CNT at SeaBIOS's 0x604, SLP_EN with type 0 = soft off) or halts forever.
fn multiboot_kernel(msg: &str, poweroff: bool) -> Vec<u8> {
    const BASE: u32 = 0x0010_0000;
    let mut code: Vec<u8> = vec![0x66, 0xBA, 0xF8, 0x03, 0xBE, 0, 0, 0, 0]; // mov dx,0x3f8; mov esi,msg
    code.extend([0xAC, 0x84, 0xC0, 0x74, 0x03, 0xEE, 0xEB, 0xF8]); // lodsb; test; jz; out; jmp
    if poweroff {
        code.extend([0x66, 0xBA, 0x04, 0x06, 0x66, 0xB8, 0x00, 0x20, 0x66, 0xEF]);
    }
    code.extend([0xF4, 0xEB, 0xFD]); // hlt; jmp hlt
    let entry = BASE + 32;
    let msg_addr = entry + code.len() as u32;
    code[5..9].copy_from_slice(&msg_addr.to_le_bytes());
    let (magic, flags) = (0x1BAD_B002u32, 0x0001_0000u32);
    let mut k = Vec::new();
    for v in [
        magic,
        flags,
        0u32.wrapping_sub(magic.wrapping_add(flags)),
        BASE,
        BASE,
        0,
        0,
        entry,
    ] {
        k.extend(v.to_le_bytes());
    }
    k.extend(code);
    k.extend(msg.as_bytes());
    k.push(0);
    k
}

/// An env whose qemu monitor is the real QEMU (under TCG); `None` when it is not installed.
fn qemu_env() -> Option<Env> {
    let qemu = Path::new("/usr/bin/qemu-system-x86_64");
    if !qemu.exists() {
        eprintln!("skipped: {} is not installed", qemu.display());
        return None;
    }
    let env = Env::new();
    let cfg = std::fs::read_to_string(&env.config).unwrap();
    let fake = common::fakevmm_bin().display().to_string();
    std::fs::write(
        &env.config,
        cfg.replacen(&fake, &qemu.display().to_string(), 1),
    )
    .unwrap();
    open_up(&env);
    Some(env)
}

fn qemu_bundle(env: &Env, id: &str, kernel: &[u8]) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let b = env.bundle_with(id, "", |s| set_user(s, 65534, 65534, &[]));
    let k = b.join("rootfs/kernel");
    std::fs::write(&k, kernel).unwrap();
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
    b
}

#[test]
fn qemu_runs_a_guest_under_the_full_sandbox() {
    let Some(env) = qemu_env() else { return };
    let id = unique("sb-qemu");
    let b = qemu_bundle(&env, &id, &multiboot_kernel("URUNC-GUEST-UP\n", false));
    run(&env, &b, &id);
    env.wait_console(&id, "URUNC-GUEST-UP", Duration::from_secs(60));
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let children = std::fs::read_to_string(format!("/proc/{sup}/task/{sup}/children")).unwrap();
    let qemu: i64 = children.split_whitespace().next().unwrap().parse().unwrap();
    let st = proc_status(qemu);
    assert!(field(&st, "Name").starts_with("qemu-system"), "{st}");
    assert_eq!(
        field(&st, "Uid").split_whitespace().collect::<Vec<_>>(),
        ["65534"; 4]
    );
    for k in ["CapEff", "CapPrm", "CapBnd", "CapAmb"] {
        assert_eq!(field(&st, k), "0000000000000000", "{k}");
    }
    assert_eq!(field(&st, "NoNewPrivs"), "1");
    assert_eq!(field(&st, "Seccomp"), "2");
    // urunc's two filters, and QEMU's own `-sandbox on` stacked on top
    let filters: u32 = field(&st, "Seccomp_filters").parse().unwrap();
    assert!(
        filters > 2,
        "Seccomp_filters {filters}: QEMU's -sandbox did not stack"
    );
    let o = env.urunc(&["kill", &id, "KILL"]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.wait_status(&id, "stopped", T);
}

#[test]
fn qemu_guest_powers_off_cleanly_under_the_sandbox() {
    let Some(env) = qemu_env() else { return };
    let id = unique("sb-qemu-off");
    let b = qemu_bundle(&env, &id, &multiboot_kernel("URUNC-GUEST-BYE\n", true));
    run(&env, &b, &id);
    env.wait_status(&id, "stopped", Duration::from_secs(60));
    let c = env.console_text(&id);
    assert!(c.contains("URUNC-GUEST-BYE"), "{c}");
    assert!(!c.contains("qemu-system"), "QEMU complained:\n{c}");
}

/// A static x86-64 ELF that writes `msg` to stdout and powers the machine off (it runs as the
/// guest's PID 1, which may call reboot(2)).
fn poweroff_init(msg: &str) -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    let mut code: Vec<u8> = vec![0xB8, 1, 0, 0, 0, 0xBF, 1, 0, 0, 0]; // write(1,
    code.extend([0x48, 0x8D, 0x35, 31, 0, 0, 0]); // lea rsi, [rip + 31] (msg after the code)
    code.extend([0xBA]); // mov edx, len
    code.extend((msg.len() as u32).to_le_bytes());
    code.extend([0x0F, 0x05]); // syscall
    code.extend([0xB8, 169, 0, 0, 0]); // reboot(MAGIC1, MAGIC2, POWER_OFF)
    code.extend([0xBF, 0xAD, 0xDE, 0xE1, 0xFE, 0xBE, 0x69, 0x19, 0x12, 0x28]);
    code.extend([0xBA, 0xDC, 0xFE, 0x21, 0x43, 0x0F, 0x05, 0xEB, 0xFE]);
    assert_eq!(code.len(), 48);
    code.extend(msg.as_bytes());
    let total = (64 + 56 + code.len()) as u64;
    let mut e = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    e.extend(2u16.to_le_bytes()); // ET_EXEC
    e.extend(0x3eu16.to_le_bytes()); // x86-64
    e.extend(1u32.to_le_bytes());
    e.extend((BASE + 120).to_le_bytes()); // entry
    e.extend(64u64.to_le_bytes()); // phoff
    e.extend(0u64.to_le_bytes()); // shoff
    e.extend(0u32.to_le_bytes());
    for v in [64u16, 56, 1, 0, 0, 0] {
        e.extend(v.to_le_bytes());
    }
    e.extend(1u32.to_le_bytes()); // PT_LOAD
    e.extend(5u32.to_le_bytes()); // R+X
    for v in [0, BASE, BASE, total, total, 0x1000] {
        e.extend(v.to_le_bytes());
    }
    e.extend(code);
    e
}

/// A newc cpio archive: `/dev/console` (5:1) and `/init`.
fn initrd(init: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut entry = |ino: u32, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]| {
        let hdr = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0, 0, 1, 0, data.len(), 0, 0, rdev.0, rdev.1, name.len() + 1, 0
        );
        out.extend(hdr.as_bytes());
        out.extend(name.as_bytes());
        out.push(0);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out.extend(data);
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    entry(1, "dev", 0o040755, (0, 0), b"");
    entry(2, "dev/console", 0o020600, (5, 1), b"");
    entry(3, "init", 0o100755, (0, 0), init);
    entry(4, "TRAILER!!!", 0, (0, 0), b"");
    out
}

/// A Debian kernel for the Linux boot test: `$URUNC_TEST_KERNEL`, else where the test-asset
/// preparation puts it (`apt-get download linux-image-<abi>-cloud-amd64`, `dpkg-deb -x`).
fn test_kernel() -> Option<PathBuf> {
    let p = std::env::var_os("URUNC_TEST_KERNEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/urunc-assets/vmlinuz"));
    p.exists().then_some(p)
}

#[test]
fn qemu_boots_a_linux_guest_under_the_full_sandbox() {
    let Some(kernel) = test_kernel() else {
        eprintln!("skipped: no test kernel (set URUNC_TEST_KERNEL)");
        return;
    };
    let Some(env) = qemu_env() else { return };
    let id = unique("sb-linux");
    let b = qemu_bundle(&env, &id, &std::fs::read(&kernel).unwrap());
    std::fs::write(
        b.join("rootfs/initrd"),
        initrd(&poweroff_init("URUNC-LINUX-INIT\n")),
    )
    .unwrap();
    let mut spec: Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    spec["annotations"]["com.urunc.unikernel.initrd"] = json!("/initrd");
    std::fs::write(b.join("config.json"), serde_json::to_vec(&spec).unwrap()).unwrap();
    run(&env, &b, &id);
    env.wait_status(&id, "stopped", Duration::from_secs(120));
    let c = env.console_text(&id);
    assert!(c.contains("Linux version"), "{c}");
    assert!(c.contains("URUNC-LINUX-INIT"), "{c}");
    assert!(c.contains("reboot: Power down"), "{c}");
}

fn monitor_pid(supervisor: i64) -> i64 {
    let children =
        std::fs::read_to_string(format!("/proc/{supervisor}/task/{supervisor}/children")).unwrap();
    children
        .split_whitespace()
        .next()
        .expect("no monitor")
        .parse()
        .unwrap()
}

#[test]
fn user_namespace_maps_the_container_ids() {
    let env = Env::new();
    open_up(&env);
    let id = unique("sb-userns");
    let b = env.bundle_with(&id, "report\ntick 50", |s| {
        s["linux"]["namespaces"] = json!([
            {"type": "user"}, {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "network"}
        ]);
        let map = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
        set_user(s, 1000, 1000, &[1001]);
    });
    run(&env, &b, &id);
    let c = env.wait_console(&id, "FAKEVMM-TICK", T);
    let r = report(&c);
    // inside, the spec's ids; outside, the mapped ones
    assert_eq!(ids(&r["uid"]), [1000; 4]);
    assert_eq!(ids(&r["groups"]), [1001]);
    caps_zero(&r);
    assert_eq!(r["seccomp"], "2");
    let ours = std::fs::read_link("/proc/self/ns/user").unwrap();
    assert_ne!(r["ns"]["user"], ours.display().to_string());
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let mon = monitor_pid(sup);
    let st = proc_status(mon);
    assert_eq!(
        field(&st, "Uid").split_whitespace().collect::<Vec<_>>(),
        ["101000"; 4]
    );
    assert_eq!(field(&st, "Groups"), "101001");
    let map = std::fs::read_to_string(format!("/proc/{mon}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"]
    );
    let o = env.urunc(&["kill", &id, "TERM"]);
    assert!(o.status.success(), "{}", stderr(&o));
    env.wait_status(&id, "stopped", T);
}

#[test]
fn user_namespace_without_mappings_is_refused_at_create() {
    let env = Env::new();
    let id = unique("sb-userns-bad");
    let b = env.bundle_with(&id, "report", |s| {
        s["linux"]["namespaces"] = json!([{"type": "user"}, {"type": "pid"}]);
    });
    let o = env.create(&b, &id, &[]);
    assert!(!o.status.success());
    assert!(
        env.console_text(&id).contains("uidMappings"),
        "{}",
        env.console_text(&id)
    );
}

/// Runs urunc as uid/gid 1000 without `--root`: state goes under `$XDG_RUNTIME_DIR/urunc`.
fn rootless_cmd(env: &Env, xdg: &Path) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(common::urunc_bin());
    c.env("URUNC_CONFIG", &env.config)
        .env("XDG_RUNTIME_DIR", xdg)
        .uid(1000)
        .gid(1000)
        .stdin(std::process::Stdio::null());
    c
}

/// Kills and removes a rootless container even when the test fails.
struct RootlessGuard(PathBuf, String);

impl Drop for RootlessGuard {
    fn drop(&mut self) {
        let _ = std::process::Command::new(common::urunc_bin())
            .arg("--root")
            .arg(&self.0)
            .args(["delete", "--force", &self.1])
            .output();
    }
}

#[test]
fn rootless_runtime_runs_a_sandboxed_monitor() {
    let env = Env::new();
    open_up(&env);
    let id = unique("sb-rootless");
    let b = env.bundle_with(&id, "report\nread /etc/hostname\ntick 50", |s| {
        s["linux"]["namespaces"] = json!([
            {"type": "user"}, {"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
            {"type": "uts"}, {"type": "network"}
        ]);
        let map = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
        s["linux"]["uidMappings"] = map.clone();
        s["linux"]["gidMappings"] = map;
    });
    let xdg = env.dir.path().join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    for p in [&xdg, &env.config] {
        nix::unistd::chown(p.as_path(), Some(1000.into()), Some(1000.into())).unwrap();
    }
    let _guard = RootlessGuard(xdg.join("urunc"), id.clone());
    let console = std::fs::File::create(env.console(&id)).unwrap();
    let o = rootless_cmd(&env, &xdg)
        .args(["create", "--bundle", b.to_str().unwrap(), &id])
        .stdout(console.try_clone().unwrap())
        .stderr(console)
        .output()
        .unwrap();
    assert!(o.status.success(), "create: {}", env.console_text(&id));
    assert!(xdg.join("urunc").join(&id).join("state.json").exists());
    let o = rootless_cmd(&env, &xdg)
        .args(["start", &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "start: {}", stderr(&o));
    let c = env.wait_console(&id, "FAKEVMM-TICK", T);
    let r = report(&c);
    assert_eq!(ids(&r["uid"]), [0; 4]);
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["seccomp"], "2");
    // uid 1000 may read /etc/hostname; Landlock refuses it
    assert!(
        line_with(&c, "FAKEVMM-READ /etc/hostname").ends_with("13)"),
        "{c}"
    );
    let o = rootless_cmd(&env, &xdg)
        .args(["state", &id])
        .output()
        .unwrap();
    let st: Value = serde_json::from_slice(&o.stdout).expect("state JSON");
    let sup = st["pid"].as_i64().unwrap();
    let mon = monitor_pid(sup);
    for pid in [sup, mon] {
        let s = proc_status(pid);
        assert_eq!(
            field(&s, "Uid").split_whitespace().collect::<Vec<_>>(),
            ["1000"; 4]
        );
        assert_eq!(field(&s, "CapEff"), "0000000000000000");
        assert_eq!(field(&s, "Seccomp"), "2");
    }
    let o = rootless_cmd(&env, &xdg)
        .args(["kill", &id, "TERM"])
        .output()
        .unwrap();
    assert!(o.status.success(), "kill: {}", stderr(&o));
    let deadline = std::time::Instant::now() + T;
    while !env.console_text(&id).contains("FAKEVMM-TERM") {
        assert!(std::time::Instant::now() < deadline, "no FAKEVMM-TERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    common::wait_dead(sup, T);
    let o = rootless_cmd(&env, &xdg)
        .args(["delete", &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "delete: {}", stderr(&o));
    assert!(!xdg.join("urunc").join(&id).exists());
}

/// The unprivileged user rootless podman runs as (made here, with a subordinate id range).
const PODMAN_USER: &str = "uruncrl";

fn ensure_podman_user() {
    let exists = std::process::Command::new("id")
        .arg(PODMAN_USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let st = std::process::Command::new("useradd")
            .args(["-m", "-s", "/bin/sh", PODMAN_USER])
            .status()
            .unwrap();
        assert!(st.success(), "useradd {PODMAN_USER}");
    }
    for f in ["/etc/subuid", "/etc/subgid"] {
        let t = std::fs::read_to_string(f).unwrap_or_default();
        if !t.lines().any(|l| l.starts_with(&format!("{PODMAN_USER}:"))) {
            let line = format!("{PODMAN_USER}:300000:65536\n");
            std::fs::write(f, t + &line).unwrap();
        }
    }
}

/// `podman ARGS` as the rootless user, with private runtime dir and engine config.
fn podman(dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new("runuser")
        .args(["-u", PODMAN_USER, "--", "env"])
        .arg(format!("XDG_RUNTIME_DIR={}", dir.join("xdg").display()))
        .arg(format!("HOME=/home/{PODMAN_USER}"))
        .arg(format!(
            "CONTAINERS_CONF={}",
            dir.join("containers.conf").display()
        ))
        .arg("podman")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run podman")
}

#[test]
fn rootless_podman_runs_guests_through_urunc() {
    let tools = [
        "/usr/bin/podman",
        "/usr/bin/newuidmap",
        "/usr/bin/qemu-system-x86_64",
    ];
    if let Some(t) = tools.iter().find(|t| !Path::new(t).exists()) {
        eprintln!("skipped: {t} missing (apt-get install podman uidmap qemu-system-x86)");
        return;
    }
    ensure_podman_user();
    let env = Env::new();
    open_up(&env);
    let d = env.dir.path();
    let xdg = d.join("xdg");
    std::fs::create_dir_all(&xdg).unwrap();
    std::fs::write(
        d.join("containers.conf"),
        "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\n",
    )
    .unwrap();
    // the fake monitor reports from inside; conmon passes no environment, hence a wrapper
    let wrapper = d.join("urunc-fake");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nexport URUNC_CONFIG={}\nexec {} \"$@\"\n",
            env.config.display(),
            common::urunc_bin().display()
        ),
    )
    .unwrap();
    let ctx = d.join("image");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("fake"), "#fakevmm\nreport\nread /etc/hostname\n").unwrap();
    std::fs::write(
        ctx.join("kernel"),
        multiboot_kernel("URUNC-PODMAN-GUEST\n", true),
    )
    .unwrap();
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY fake kernel /\n",
    )
    .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        for f in [
            "urunc-fake",
            "containers.conf",
            "image/fake",
            "image/kernel",
        ] {
            std::fs::set_permissions(d.join(f), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::set_permissions(&env.config, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let st = std::process::Command::new("chown")
        .args([
            "-R",
            &format!("{PODMAN_USER}:"),
            xdg.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let image = format!("localhost/{}", unique("urunc-sb"));
    let o = podman(d, &["build", "-q", "-t", &image, ctx.to_str().unwrap()]);
    assert!(o.status.success(), "podman build: {}", stderr(&o));
    struct Rmi<'a>(&'a Path, &'a str);
    impl Drop for Rmi<'_> {
        fn drop(&mut self) {
            let _ = podman(self.0, &["rmi", "-f", self.1]);
        }
    }
    let _rmi = Rmi(d, &image);
    let run = |runtime: &Path, kernel: &str| {
        let binary = format!("com.urunc.unikernel.binary={kernel}");
        let args = [
            "--runtime",
            runtime.to_str().unwrap(),
            "run",
            "--rm",
            "--network",
            "none",
            "--annotation",
            "com.urunc.unikernel.unikernelType=linux",
            "--annotation",
            "com.urunc.unikernel.hypervisor=qemu",
            "--annotation",
            &binary,
            &image,
            "/init",
        ];
        podman(d, &args)
    };
    // the real QEMU boots the guest and powers off; podman gets exit status 0
    let o = run(&common::urunc_bin(), "/kernel");
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "podman run: {}{out}", stderr(&o));
    assert!(out.contains("URUNC-PODMAN-GUEST"), "{out}");
    // the fake monitor shows the sandbox inside rootless podman's user namespace
    let o = run(&wrapper, "/fake");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "podman run: {}{out}", stderr(&o));
    let r = report(&out);
    caps_zero(&r);
    assert_eq!(r["no_new_privs"], "1");
    assert_eq!(r["seccomp"], "2");
    assert!(
        line_with(&out, "FAKEVMM-READ /etc/hostname").ends_with("13)"),
        "{out}"
    );
}

#[test]
fn monitor_dies_with_its_confined_supervisor() {
    let env = Env::new();
    open_up(&env);
    let id = unique("sb-pdeath");
    let b = env.bundle_with(&id, "tick 50", |s| {
        set_user(s, 1000, 1000, &[]);
        // no PID namespace: only PDEATHSIG (set after the identity change) can end the monitor
        s["linux"]["namespaces"] = json!([{"type": "mount"}, {"type": "ipc"}, {"type": "uts"}]);
    });
    run(&env, &b, &id);
    env.wait_console(&id, "FAKEVMM-TICK", T);
    let sup = env.state(&id).unwrap()["pid"].as_i64().unwrap();
    let mon = monitor_pid(sup);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(sup as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        common::wait_dead(mon, T),
        "the monitor outlived its supervisor"
    );
}
