//! Nothing a local user plants steers a root file operation (issue 12, items 1 and 2): the
//! container's uid races `create` with symlinks in its work directory, and an image's
//! `/urunc.json` is read as the kernel would read it (inside the rootfs, regular files only,
//! bounded). Runs as root (the harness's requirement for every lifecycle test).

mod common;

use common::{unique, Env};
use serde_json::json;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The container's uid (and the attacker's): an unprivileged id no test process runs as.
const UID: u32 = 65534;

/// Names root generates in the work directory (`storage::materialize`, `storage::prepare`,
/// `initrd::assemble`, Firecracker's config) plus `canary`, which urunc never writes: its
/// presence proves the planting loop reached the directory while `create` ran.
const NAMES: &str = "urunit.conf initrd.img kernel boot.cpio fc.json canary";

fn attacker(work: &Path, target: &Path) -> std::process::Child {
    // perl-base is essential on Debian: a tight loop with no fork per attempt
    let script =
        r#"my ($w, $t, @n) = @ARGV; while (1) { for my $n (@n) { symlink($t, "$w/$n"); } }"#;
    let mut c = Command::new("perl");
    c.arg("-e").arg(script).arg(work).arg(target);
    c.args(NAMES.split(' '));
    std::os::unix::process::CommandExt::uid(&mut c, UID);
    std::os::unix::process::CommandExt::gid(&mut c, UID);
    c.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c.spawn().expect("spawn the planting loop")
}

#[test]
fn symlinks_planted_in_the_work_dir_are_never_followed() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    // the attacker must reach <root>/<id>/work as the container's uid, as on a real host
    std::fs::set_permissions(env.dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let target = env.dir.path().join("root-only");
    std::fs::write(&target, b"root's file\n").unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::metadata(&target).unwrap();
    let user = |s: &mut serde_json::Value| {
        s["process"]["user"] = json!({"uid": UID, "gid": UID});
    };
    let plain = env.bundle_with("plain", "exit 0", user);
    // an image initrd: urunit.conf goes into a copy assembled in the work dir
    let with_initrd = env.bundle_with("initrd", "exit 0", |s| {
        user(s);
        s["annotations"]["com.urunc.unikernel.initrd"] = json!("/initrd");
    });
    std::fs::write(with_initrd.join("rootfs/initrd"), b"base").unwrap();
    // Firecracker reads its configuration from work/fc.json (KVM asked per container: the
    // fake monitor never uses it)
    let fc = env.bundle_with("fc", "exit 0", |s| {
        user(s);
        s["annotations"]["com.urunc.unikernel.unikernelType"] = json!("unikraft");
        s["annotations"]["com.urunc.unikernel.hypervisor"] = json!("firecracker");
        s["annotations"]["com.urunc.unikernel.accel"] = json!("kvm");
    });
    let bundles = [&plain, &with_initrd, &fc];
    // without an attacker every bundle is created, its files the container uid's, 0600
    for b in bundles {
        let id = unique("plant");
        let o = env.create(b, &id, &[]);
        assert!(o.status.success(), "create {id}: {}", env.console_text(&id));
        let work = env.root.join(&id).join("work");
        let mut n = 0;
        for e in std::fs::read_dir(&work).unwrap() {
            let m = e.unwrap().metadata().unwrap();
            assert_eq!((m.uid(), m.gid(), m.mode() & 0o777), (UID, UID, 0o600));
            n += 1;
        }
        assert!(n > 0, "nothing generated in {}", work.display());
        assert!(env.urunc(&["delete", "--force", &id]).status.success());
    }
    let (mut reached, mut refused, mut made) = (0, 0, 0);
    for i in 0..42 {
        let bundle = bundles[i % bundles.len()];
        let id = unique("plant");
        let work = env.root.join(&id).join("work");
        let mut a = attacker(&work, &target);
        let o = env.create(bundle, &id, &[]);
        let _ = a.kill();
        let _ = a.wait();
        let text = env.console_text(&id);
        if o.status.success() {
            made += 1;
            if work.join("canary").symlink_metadata().is_ok() {
                reached += 1;
            }
        } else {
            // the only acceptable failure: a planted name refused
            assert!(text.contains("already exists"), "create {id}: {text}");
            refused += 1;
            reached += 1;
        }
        let d = env.urunc(&["delete", "--force", &id]);
        assert!(d.status.success(), "delete {id}: {}", common::stderr(&d));
        let after = std::fs::metadata(&target).unwrap();
        assert_eq!(
            (after.uid(), after.gid(), after.mode(), after.len()),
            (before.uid(), before.gid(), before.mode(), before.len()),
            "iteration {i}: the root-only file was changed through a planted link"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"root's file\n");
    }
    eprintln!("42 creates: loop reached the work dir in {reached}, {made} made, {refused} refused");
    assert!(
        reached > 0,
        "the planting loop never reached a work directory"
    );
}

/// A bundle whose unikernel configuration comes only from `/urunc.json` (`content` written by
/// `plant`, which gets the rootfs path).
fn urunc_json_bundle(env: &Env, name: &str, plant: impl FnOnce(&Path)) -> std::path::PathBuf {
    let b = env.bundle_with(name, "exit 0", |s| {
        s["annotations"] = json!({});
    });
    plant(&b.join("rootfs"));
    b
}

fn create_fails(env: &Env, bundle: &Path, want: &str) {
    let id = unique("uj");
    env.track(&id);
    let mut c = env.cmd();
    c.args(["create", "--bundle"]).arg(bundle).arg(&id);
    // a guard against a hang (a FIFO): create answers at once when it reads like the kernel
    let o = common::output_within(c, Duration::from_secs(120), "create reading /urunc.json");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "create accepted it: {err}");
    assert!(err.contains(want), "wanted {want:?} in: {err}");
}

#[test]
fn urunc_json_is_read_inside_the_rootfs_and_bounded() {
    // a delegate that cannot run: a bundle found not to be a unikernel fails naming it
    let env = Env::with_config("[delegate]\nruntime = \"/nonexistent/delegate-runtime\"\n");
    // a host file with a valid configuration: a link to it must not become the container's
    let host = env.dir.path().join("host.json");
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    std::fs::write(
        &host,
        json!({
            "com.urunc.unikernel.unikernelType": b64("linux"),
            "com.urunc.unikernel.hypervisor": b64("qemu"),
            "com.urunc.unikernel.binary": b64("/kernel"),
        })
        .to_string(),
    )
    .unwrap();
    let b = urunc_json_bundle(&env, "abs", |r| {
        std::os::unix::fs::symlink(&host, r.join("urunc.json")).unwrap()
    });
    // resolved inside the rootfs, the link names nothing: not a unikernel, handed to the
    // delegate runtime (which the test config does not have)
    let o = env
        .cmd()
        .args(["create", "--bundle"])
        .arg(&b)
        .arg(unique("uj"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("is not a unikernel"), "not delegated: {err}");
    let b = urunc_json_bundle(&env, "shadow", |r| {
        std::os::unix::fs::symlink("../../../../../../../../etc/shadow", r.join("urunc.json"))
            .unwrap()
    });
    let o = env
        .cmd()
        .args(["create", "--bundle"])
        .arg(&b)
        .arg(unique("uj"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("is not a unikernel"), "not delegated: {err}");
    let b = urunc_json_bundle(&env, "fifo", |r| {
        nix::unistd::mkfifo(&r.join("urunc.json"), nix::sys::stat::Mode::S_IRWXU).unwrap()
    });
    create_fails(&env, &b, "not a regular file");
    let b = urunc_json_bundle(&env, "zero", |r| {
        std::fs::create_dir_all(r.join("dev")).unwrap();
        nix::sys::stat::mknod(
            &r.join("dev/zero"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::from_bits_truncate(0o666),
            nix::sys::stat::makedev(1, 5),
        )
        .unwrap();
        std::os::unix::fs::symlink("/dev/zero", r.join("urunc.json")).unwrap()
    });
    create_fails(&env, &b, "not a regular file");
    let b = urunc_json_bundle(&env, "big", |r| {
        let f = std::fs::File::create(r.join("urunc.json")).unwrap();
        f.set_len(1 << 30).unwrap(); // sparse: nothing is written
    });
    create_fails(&env, &b, "larger than");
}

#[test]
fn an_image_block_reaches_qemu_as_an_fd_of_the_checked_file() {
    let env = Env::new();
    let b = env.bundle_with("blk", "exit 0", |s| {
        s["annotations"]["com.urunc.unikernel.block"] = json!("/disk.img");
        s["annotations"]["com.urunc.unikernel.blkMntPoint"] = json!("/data");
    });
    std::fs::write(b.join("rootfs/disk.img"), vec![0u8; 4096]).unwrap();
    let id = unique("blk");
    let o = env.create(&b, &id, &[]);
    assert!(o.status.success(), "create {id}: {}", env.console_text(&id));
    // the plan is written only with --debug
    assert!(!env.root.join(&id).join("plan.json").exists());
    assert!(env.urunc(&["delete", "--force", &id]).status.success());
    let id = unique("blk");
    let o = env.create_debug(&b, &id);
    assert!(o.status.success(), "create {id}: {}", env.console_text(&id));
    // the plan hands QEMU an fd (opened by root through the resolved handle), not the path
    let plan = std::fs::read_to_string(env.root.join(&id).join("plan.json")).unwrap();
    let plan: serde_json::Value = serde_json::from_str(&plan).unwrap();
    let argv: Vec<&str> = plan["argv"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert!(
        argv.iter()
            .any(|a| a.contains("/dev/fdset/") || a.contains("fd=")),
        "{argv:?}"
    );
    assert!(!argv.iter().any(|a| a.contains("disk.img")), "{argv:?}");
    assert!(env.urunc(&["delete", "--force", &id]).status.success());
    // a block image that is a link out of the rootfs is not found inside it
    std::fs::remove_file(b.join("rootfs/disk.img")).unwrap();
    std::os::unix::fs::symlink("/etc/shadow", b.join("rootfs/disk.img")).unwrap();
    let id = unique("blk");
    let o = env.create(&b, &id, &[]);
    assert!(!o.status.success());
    assert!(
        env.console_text(&id).contains("block image"),
        "{}",
        env.console_text(&id)
    );
}
