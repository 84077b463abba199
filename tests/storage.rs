//! Storage end to end (reference section 7), with real loop devices, ext4 filesystems and
//! QEMU under TCG: bind-mounted files injected into a copy of the initrd, the container's own
//! rootfs as the guest's disk (taken from the host and given back at delete) with a
//! block-backed volume, and the rootfs shared over 9p with directory volumes.
//!
//! Needs root and the assets of `scripts/prepare-assets.sh` (the 9p test also its generic
//! kernel); without them the tests print SKIPPED, unless `CI` is set, where that fails.

mod assets;
use assets::guest_assets;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const URUNC: &str = env!("CARGO_BIN_EXE_urunc");
/// One TCG guest at a time (two cores).
static SERIAL: Mutex<()> = Mutex::new(());

fn sh(cmd: &str) -> String {
    let o = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// A loop device with an ext4 filesystem made from `from`, mounted on `at`; detached (and
/// unmounted) whatever happens to the test.
struct Loop {
    dev: String,
    at: PathBuf,
}

impl Loop {
    fn new(image: &Path, size_mb: u32, from: &Path, at: &Path) -> Loop {
        sh(&format!(
            "mkfs.ext4 -q -F -d '{}' '{}' {size_mb}M",
            from.display(),
            image.display()
        ));
        let dev = sh(&format!("losetup -f --show '{}'", image.display()));
        std::fs::create_dir_all(at).unwrap();
        let l = Loop {
            dev,
            at: at.to_path_buf(),
        };
        sh(&format!("mount -t ext4 {} '{}'", l.dev, at.display()));
        l
    }

    /// Where it is mounted now, in this (the host's) mount namespace.
    fn mounted_at(&self) -> Vec<String> {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| {
                l.split(" - ")
                    .nth(1)
                    .is_some_and(|p| p.split(' ').nth(1) == Some(&self.dev))
            })
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .collect()
    }

    /// Unmounts and checks the filesystem.
    fn fsck(&self) {
        let _ = Command::new("umount").arg(&self.at).status();
        let o = Command::new("e2fsck")
            .args(["-fn", &self.dev])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "e2fsck {}: {}",
            self.dev,
            String::from_utf8_lossy(&o.stdout)
        );
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        for _ in 0..3 {
            if Command::new("umount")
                .arg(&self.at)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| !s.success())
            {
                break;
            }
        }
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
    }
}

/// A bundle and a private `--root`; deletes its container whatever happens.
struct Bundle {
    dir: tempfile::TempDir,
    id: String,
}

impl Bundle {
    fn new(name: &str) -> Bundle {
        let dir = tempfile::Builder::new()
            .prefix("storage-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        std::fs::create_dir(dir.path().join("rootfs")).unwrap();
        std::fs::write(
            dir.path().join("urunc.toml"),
            assets::config_toml(dir.path(), "accel = \"tcg\"\ndefault_memory_mb = 256\n"),
        )
        .unwrap();
        let id = format!("{name}-{}", std::process::id());
        Bundle { dir, id }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn spec(&self, script: &str, annotations: Value, mounts: Value) {
        let mut a = json!({
            "com.urunc.unikernel.unikernelType": "linux",
            "com.urunc.unikernel.hypervisor": "qemu",
            "com.urunc.unikernel.binary": "/vmlinux",
        });
        a.as_object_mut()
            .unwrap()
            .extend(annotations.as_object().unwrap().clone());
        let spec = json!({
            "ociVersion": "1.2.0",
            "process": {
                "user": {"uid": 0, "gid": 0},
                "args": ["/urunit", "/bin/sh", "-c", script],
                "env": ["PATH=/bin"],
                "cwd": "/",
            },
            "root": {"path": "rootfs"},
            "mounts": mounts,
            "annotations": a,
            "linux": {"namespaces": [{"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]},
        });
        std::fs::write(self.path("config.json"), spec.to_string()).unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(URUNC);
        c.env("URUNC_CONFIG", self.path("urunc.toml"))
            .arg("--root")
            .arg(self.path("state"))
            .args(args)
            .stdin(Stdio::null());
        c
    }

    fn urunc(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `urunc create` with the container's output going to `console` (both streams: the
    /// container process keeps them), urunc's error returned as text.
    fn create(&self) -> (bool, String) {
        let out = std::fs::File::create(self.path("console")).unwrap();
        let err = std::fs::File::create(self.path("create.err")).unwrap();
        // --debug: the tests read the launch plan (`plan.json`, written only then)
        let mut c = self.cmd(&[
            "--debug",
            "create",
            "--bundle",
            &self.dir.path().display().to_string(),
            &self.id,
        ]);
        c.stdout(out).stderr(err);
        let ok = c.status().unwrap().success();
        (
            ok,
            std::fs::read_to_string(self.path("create.err")).unwrap_or_default(),
        )
    }

    fn status(&self) -> String {
        let o = self.urunc(&["state", &self.id]);
        let v: Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
        v["status"].as_str().unwrap_or("").to_string()
    }

    /// start, wait until the guest is done, return its output.
    fn start_and_wait(&self) -> String {
        let o = self.urunc(&["start", &self.id]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let end = Instant::now() + Duration::from_secs(120);
        while self.status() == "running" && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(100));
        }
        let out = std::fs::read_to_string(self.path("console")).unwrap_or_default();
        let err = std::fs::read_to_string(self.path("create.err")).unwrap_or_default();
        eprintln!("--- guest output:\n{out}\n--- stderr:\n{err}");
        assert_eq!(self.status(), "stopped", "the guest did not finish: {out}");
        out
    }

    fn run(&self) -> String {
        let (ok, err) = self.create();
        assert!(ok, "create: {err}");
        self.start_and_wait()
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        let _ = self.urunc(&["delete", "--force", &self.id]);
    }
}

/// The asset initrd's tree (urunit, busybox, the cloud kernel's modules) in `dir`.
fn unpack_initrd(assets: &Path, dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    sh(&format!(
        "cd '{}' && cpio -idm --quiet < '{}'",
        dir.display(),
        assets.join("initrd.cpio").display()
    ));
}

fn bind(source: &Path, destination: &str, ro: bool) -> Value {
    let mut o = vec!["rbind"];
    if ro {
        o.push("ro");
    }
    json!({"destination": destination, "type": "bind", "source": source, "options": o})
}

#[test]
fn bind_mounted_files_reach_the_guest_through_an_initrd_copy() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let b = Bundle::new("initrd");
    let rootfs = b.path("rootfs");
    std::fs::hard_link(assets.join("vmlinux"), rootfs.join("vmlinux"))
        .or_else(|_| std::fs::copy(assets.join("vmlinux"), rootfs.join("vmlinux")).map(drop))
        .unwrap();
    std::fs::copy(assets.join("initrd.cpio"), rootfs.join("initrd")).unwrap();
    let before = std::fs::read(rootfs.join("initrd")).unwrap();
    // a file (like /etc/hosts) and a directory shaped like a Kubernetes ConfigMap volume
    std::fs::write(b.path("hosts"), "10.0.0.9 injected-host\n").unwrap();
    let cm = b.path("configmap");
    std::fs::create_dir_all(cm.join("..2024_01")).unwrap();
    std::fs::write(cm.join("..2024_01/key"), "configmap-value\n").unwrap();
    std::os::unix::fs::symlink("..2024_01", cm.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/key", cm.join("key")).unwrap();
    b.spec(
        "cat /etc/hosts; cat /etc/config/key; echo done",
        json!({"com.urunc.unikernel.initrd": "/initrd"}),
        json!([
            bind(&b.path("hosts"), "/etc/hosts", true),
            bind(&cm, "/etc/config", true)
        ]),
    );
    let out = b.run();
    assert!(out.contains("injected-host"), "{out}");
    assert!(out.contains("configmap-value"), "{out}");
    assert!(out.contains("done"), "{out}");
    assert!(
        std::fs::read(rootfs.join("initrd")).unwrap() == before,
        "the image's initrd must stay byte-identical"
    );
}

#[test]
fn the_container_rootfs_as_a_disk_with_a_block_volume_and_back_on_delete() {
    let Some(assets) = guest_assets(&["vmlinux", "initrd.cpio"]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let b = Bundle::new("blockroot");
    // the image: urunit, busybox, the kernel and its modules, as an ext4 snapshot on a loop
    let stage = b.path("stage");
    unpack_initrd(&assets, &stage);
    std::fs::copy(assets.join("vmlinux"), stage.join("vmlinux")).unwrap();
    std::fs::write(stage.join("marker"), "from-the-block-rootfs\n").unwrap();
    let root = Loop::new(&b.path("rootfs.img"), 96, &stage, &b.path("rootfs"));
    std::fs::remove_dir_all(&stage).unwrap();
    // a block-backed volume, bind-mounted at /data
    let vstage = b.path("vstage");
    std::fs::create_dir(&vstage).unwrap();
    std::fs::write(vstage.join("in"), "volume-data\n").unwrap();
    let vol = Loop::new(&b.path("vol.img"), 8, &vstage, &b.path("vol"));
    b.spec(
        "cat /marker; cat /data/in; echo guest-wrote > /data/out; echo root-wrote > /root-out; \
         grep -E ' / | /data ' /proc/mounts; echo done",
        json!({"com.urunc.unikernel.mountRootfs": "true"}),
        json!([bind(&b.path("vol"), "/data", false)]),
    );
    let (ok, err) = b.create();
    assert!(ok, "create: {err}");
    // taken from the host: unmounted here, handed to QEMU as inherited fds
    assert!(root.mounted_at().is_empty(), "{:?}", root.mounted_at());
    assert!(vol.mounted_at().is_empty(), "{:?}", vol.mounted_at());
    let plan: Value = serde_json::from_slice(
        &std::fs::read(b.path(&format!("state/{}/plan.json", b.id))).unwrap(),
    )
    .unwrap();
    let argv: Vec<&str> = plan["argv"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert_eq!(
        argv.iter().filter(|a| **a == "-add-fd").count(),
        2,
        "{argv:?}"
    );
    assert!(argv.iter().any(|a| a.contains("serial=rootfs")), "{argv:?}");
    assert!(argv.iter().any(|a| a.contains("serial=vol0")), "{argv:?}");
    // no Landlock rule for the devices: the monitor only has the fds
    let rules = format!(
        "{}{}{}",
        plan["read_paths"], plan["write_paths"], plan["devices"]
    );
    assert!(!rules.contains("/dev/loop"), "{rules}");
    assert!(
        !rules.contains("rootfs.img") && !rules.contains(&root.at.display().to_string()),
        "{rules}"
    );
    let out = b.start_and_wait();
    assert!(out.contains("from-the-block-rootfs"), "{out}");
    assert!(out.contains("volume-data"), "{out}");
    assert!(
        out.contains("/dev/vda / ext4"),
        "the root must be the disk: {out}"
    );
    assert!(out.contains("done"), "{out}");
    let d = b.urunc(&["delete", &b.id]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    // back where they were, with what the guest wrote
    assert_eq!(root.mounted_at(), vec![root.at.display().to_string()]);
    assert_eq!(vol.mounted_at(), vec![vol.at.display().to_string()]);
    assert_eq!(
        std::fs::read_to_string(root.at.join("root-out")).unwrap(),
        "root-wrote\n"
    );
    assert_eq!(
        std::fs::read_to_string(vol.at.join("out")).unwrap(),
        "guest-wrote\n"
    );
    root.fsck();
    vol.fsck();
}

#[test]
fn the_rootfs_over_9p_with_writable_and_read_only_volumes() {
    let Some(assets) = guest_assets(&[
        "initrd.cpio",
        "generic/vmlinux",
        "generic/modules/lib/modules",
    ]) else {
        return;
    };
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let b = Bundle::new("ninep");
    let rootfs = b.path("rootfs");
    unpack_initrd(&assets, &rootfs);
    // the generic kernel (the cloud one has no 9p) with its own modules
    std::fs::remove_dir_all(rootfs.join("lib/modules")).unwrap();
    sh(&format!(
        "cp -a '{}' '{}'",
        assets.join("generic/modules/lib/modules").display(),
        rootfs.join("lib/modules").display()
    ));
    std::fs::hard_link(assets.join("generic/vmlinux"), rootfs.join("vmlinux"))
        .or_else(|_| {
            std::fs::copy(assets.join("generic/vmlinux"), rootfs.join("vmlinux")).map(drop)
        })
        .unwrap();
    std::fs::write(rootfs.join("marker"), "from-the-shared-rootfs\n").unwrap();
    let (rw, ro) = (b.path("rw"), b.path("ro"));
    std::fs::create_dir(&rw).unwrap();
    std::fs::create_dir(&ro).unwrap();
    std::fs::write(rw.join("in"), "rw-volume-data\n").unwrap();
    std::fs::write(ro.join("in"), "ro-volume-data\n").unwrap();
    b.spec(
        "cat /marker; cat /data/in; cat /ro/in; echo guest-wrote > /data/out; \
         if echo x > /ro/new 2>/dev/null; then echo ro-WRITABLE; else echo ro-refused; fi; \
         grep ' / ' /proc/mounts; echo done",
        json!({"com.urunc.unikernel.mountRootfs": "true"}),
        json!([bind(&rw, "/data", false), bind(&ro, "/ro", true)]),
    );
    let out = b.run();
    assert!(out.contains("from-the-shared-rootfs"), "{out}");
    assert!(
        out.contains("rw-volume-data") && out.contains("ro-volume-data"),
        "{out}"
    );
    assert!(
        out.contains("ro-refused") && !out.contains("ro-WRITABLE"),
        "{out}"
    );
    assert!(
        out.contains("fs0 / 9p"),
        "the root must be the 9p share: {out}"
    );
    assert!(out.contains("done"), "{out}");
    assert_eq!(
        std::fs::read_to_string(rw.join("out")).unwrap(),
        "guest-wrote\n"
    );
    assert!(!ro.join("new").exists());
    // the bind mounts lived in the container's mount namespace only
    let d = b.urunc(&["delete", &b.id]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    let mi = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mi.contains(&rootfs.display().to_string()), "{mi}");
}

#[test]
fn bad_storage_input_fails_at_create() {
    let Some(assets) = guest_assets(&["vmlinux"]) else {
        return;
    };
    let b = Bundle::new("bad");
    let rootfs = b.path("rootfs");
    std::fs::copy(assets.join("vmlinux"), rootfs.join("vmlinux")).unwrap();
    std::fs::write(rootfs.join("disk.img"), vec![0u8; 4096]).unwrap();
    std::fs::write(b.path("outside.img"), vec![0u8; 4096]).unwrap();
    let cases = [
        (
            json!({"com.urunc.unikernel.block": "/disk.img"}),
            "without a mountpoint",
        ),
        (
            json!({"com.urunc.unikernel.block": "/../outside.img", "com.urunc.unikernel.blkMntPoint": "/"}),
            "annotation com.urunc.unikernel.block: a path must be clean",
        ),
        (
            json!({"com.urunc.unikernel.unikernelType": "mewz", "com.urunc.unikernel.mountRootfs": "true"}),
            "can not use the container rootfs",
        ),
        (
            json!({"com.urunc.unikernel.unikernelType": "hermit", "com.urunc.unikernel.block": "/disk.img", "com.urunc.unikernel.blkMntPoint": "/"}),
            "cannot boot from a block image",
        ),
    ];
    for (a, want) in cases {
        b.spec("true", a, json!([]));
        let (ok, err) = b.create();
        assert!(!ok, "create must fail for {want}");
        assert!(err.contains(want), "want {want:?} in: {err}");
        assert_eq!(b.status(), "", "nothing is left behind");
    }
}
