use super::*;
use crate::plan::{Accel, Arch};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn req<'a>(monitor: &'a str, requested: &'a str) -> Request<'a> {
    Request {
        monitor,
        binary: Path::new("/nonexistent"),
        requested,
        arch: Arch::host(),
        cache_root: None,
    }
}

fn no(reason: &str) -> Verdict {
    Verdict {
        kvm: false,
        reason: reason.into(),
    }
}

#[test]
fn qemu_falls_back_to_tcg_with_the_reason() {
    let c = decide(&req("qemu", ""), declaration("qemu"), || no("aborted")).unwrap();
    assert_eq!(c.accel, Accel::Tcg);
    assert!(c.reason.contains("aborted"), "{}", c.reason);
    let c = decide(&req("qemu", ""), declaration("qemu"), || Verdict {
        kvm: true,
        reason: "booted".into(),
    })
    .unwrap();
    assert_eq!(c.accel, Accel::Kvm);
}

#[test]
fn kvm_only_monitors_are_never_switched_to_tcg() {
    for m in ["hvt", "firecracker", "cloud-hypervisor"] {
        let e = decide(&req(m, ""), declaration(m), || no("KVM_RUN: EINVAL")).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("KVM_RUN: EINVAL") && msg.contains(m), "{msg}");
        let e = decide(&req(m, "tcg"), declaration(m), || unreachable!()).unwrap_err();
        assert!(matches!(e, AccelError::TcgRequested { .. }), "{e}");
    }
}

#[test]
fn explicit_choices_and_spt_do_not_probe() {
    let probe = || -> Verdict { panic!("probed") };
    let c = decide(&req("qemu", "kvm"), declaration("qemu"), probe).unwrap();
    assert_eq!(c.accel, Accel::Kvm);
    let c = decide(&req("qemu", "tcg"), declaration("qemu"), probe).unwrap();
    assert_eq!(c.accel, Accel::Tcg);
    let c = decide(&req("spt", ""), declaration("spt"), probe).unwrap();
    assert_eq!(c.accel, Accel::Tcg);
    assert!(decide(&req("qemu", "hax"), declaration("qemu"), probe).is_err());
}

#[test]
fn multiboot_header_is_valid() {
    // Multiboot 1 specification, section 3.1.2: magic + flags + checksum == 0 (mod 2^32)
    let img = probe::image(Arch::X86_64);
    let w = |i: usize| u32::from_le_bytes(img[i * 4..i * 4 + 4].try_into().unwrap());
    assert_eq!(w(0), 0x1bad_b002);
    assert_eq!(w(0).wrapping_add(w(1)).wrapping_add(w(2)), 0);
    // entry_addr points at the code right after the 32-byte header
    assert_eq!(w(7) - w(4), 32);
    assert_eq!(img.len(), 40);
}

/// A stand-in for QEMU that counts its KVM runs in `count` and exits with `status`; its TCG
/// runs fail (so no speed comparison is made).
fn fake_qemu(dir: &Path, status: i32, count: &Path) -> PathBuf {
    let p = dir.join("qemu-system-x86_64");
    std::fs::write(
        &p,
        format!(
            "#!/bin/sh\ncase \"$*\" in *'-accel kvm'*) echo run >> {}; exit {status};; esac\nexit 1\n",
            count.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn runs(count: &Path) -> usize {
    std::fs::read_to_string(count).map_or(0, |s| s.lines().count())
}

#[test]
fn verdicts_are_cached_per_binary_and_invalidated_when_it_changes() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let count = t.path().join("count");
    // a QEMU that exits as isa-debug-exit makes it after the probe's write (0x21 << 1 | 1)
    let q = fake_qemu(t.path(), probe::X86_EXIT_STATUS, &count);
    let v = verdict("qemu", &q, Some(&root));
    assert!(v.kvm, "{v:?}");
    eprintln!("{}", std::fs::read_to_string(&count).unwrap());
    assert_eq!(runs(&count), 1);
    let key = cache::Key::new("qemu", &q).unwrap();
    eprintln!(
        "{:?}",
        std::fs::read_dir(root.join(cache::DIR))
            .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
    );
    eprintln!("{:?}", cache::store(&root, &key, &v));
    assert_eq!(verdict("qemu", &q, Some(&root)), v, "a cache hit");
    assert_eq!(runs(&count), 1, "the hit did not run the monitor");
    // the binary changes (an upgrade): probed again, and now it aborts
    std::thread::sleep(std::time::Duration::from_millis(20));
    let q = fake_qemu(t.path(), 134, &count);
    let v2 = verdict("qemu", &q, Some(&root));
    assert!(!v2.kvm && v2.reason.contains("status 134"), "{v2:?}");
    assert_eq!(runs(&count), 2);
    assert_eq!(verdict("qemu", &q, Some(&root)), v2);
    assert_eq!(runs(&count), 2);
}

#[test]
fn a_verdict_of_another_boot_is_ignored() {
    let t = tempfile::tempdir().unwrap();
    let q = fake_qemu(t.path(), 1, &t.path().join("count"));
    let key = cache::Key::new("qemu", &q).unwrap();
    let v = no("x");
    cache::store(t.path(), &key, &v).unwrap();
    assert_eq!(cache::load(t.path(), &key), Some(v));
    let other = cache::Key {
        boot_id: "00000000-0000-0000-0000-000000000000".into(),
        ..key.clone()
    };
    assert_eq!(cache::load(t.path(), &other), None);
    let mode = std::fs::metadata(t.path().join(cache::DIR).join(key.file_name()))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn the_cache_never_follows_a_planted_link() {
    let t = tempfile::tempdir().unwrap();
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let root = t.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::os::unix::fs::symlink(&elsewhere, root.join(cache::DIR)).unwrap();
    let q = fake_qemu(t.path(), 1, &t.path().join("count"));
    let key = cache::Key::new("qemu", &q).unwrap();
    assert!(cache::store(&root, &key, &no("x")).is_err());
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    // a planted link in place of the verdict file is not read either
    std::fs::remove_file(root.join(cache::DIR)).unwrap();
    cache::store(&root, &key, &no("x")).unwrap();
    let f = root.join(cache::DIR).join(key.file_name());
    std::fs::rename(&f, elsewhere.join("v")).unwrap();
    std::os::unix::fs::symlink(elsewhere.join("v"), &f).unwrap();
    assert_eq!(cache::load(&root, &key), None);
    // a group-writable cache directory is refused
    std::fs::remove_file(&f).unwrap();
    std::fs::set_permissions(
        root.join(cache::DIR),
        std::fs::Permissions::from_mode(0o770),
    )
    .unwrap();
    assert!(matches!(
        cache::store(&root, &key, &no("x")),
        Err(cache::CacheError::Unsafe(_))
    ));
}

#[test]
fn unikraft_under_tcg_is_warned_about() {
    assert!(tcg_warning("unikraft", Accel::Tcg).is_some_and(|w| w.contains("RDSEED")));
    assert!(tcg_warning("unikraft", Accel::Kvm).is_none());
    assert!(tcg_warning("linux", Accel::Tcg).is_none());
}

fn in_path(bin: &str) -> PathBuf {
    let p = Path::new("/usr/bin").join(bin);
    assert!(
        p.exists(),
        "{bin} is missing: run scripts/setup.sh (it installs QEMU)"
    );
    p
}

/// The probe guest is real: QEMU boots it under TCG and exits with the status it must.
#[test]
fn the_probe_guest_boots_under_tcg() {
    for (arch, bin) in [
        (Arch::X86_64, "qemu-system-x86_64"),
        (Arch::Aarch64, "qemu-system-aarch64"),
    ] {
        let (v, cacheable) = probe::qemu(&in_path(bin), arch, Accel::Tcg);
        assert!(cacheable, "{arch:?}: {v:?}");
        assert!(v.reason.contains("booted"), "{arch:?}: {v:?}");
        assert!(!v.kvm, "a TCG boot says nothing about KVM");
    }
}

/// The verdict for this host's QEMU is explained, and a negative one names its cause: QEMU's
/// failure, or KVM crawling next to TCG (these machines, reference/test-machine.md). That
/// real guests then run is shown end to end by tests/accel_auto.rs.
#[test]
fn the_qemu_kvm_verdict_on_this_host() {
    let bin = if cfg!(target_arch = "x86_64") {
        "qemu-system-x86_64"
    } else {
        "qemu-system-aarch64"
    };
    let v = verdict("qemu", &in_path(bin), None);
    if v.kvm {
        assert!(
            v.reason
                .contains("booted urunc's probe guest with -accel kvm"),
            "{v:?}"
        );
    } else {
        assert!(
            v.reason.contains("-accel kvm")
                || v.reason.contains("KVM crawls")
                || v.reason.contains("/dev/kvm"),
            "{v:?}"
        );
    }
}
