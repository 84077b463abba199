//! Switching from a boot initrd to the real root filesystem. urunc's command line names the
//! root (`root=/dev/vda`, or `root=fs0 rootfstype=9p|virtiofs rootflags=...`); a kernel with
//! those drivers built in mounts it itself and starts urunit there. A kernel that builds them
//! as modules gets a boot initrd instead (urunit as `/init` plus the modules): urunit, finding
//! itself on the initramfs with a `root=` to reach, loads the modules, mounts the root on
//! `/newroot`, moves it onto `/` and chroots, and then goes on as usual.

use crate::sys;

#[derive(Debug, PartialEq)]
pub struct Root {
    pub source: String,
    pub fstype: Option<String>,
    pub read_only: bool,
    pub data: String,
}

/// The root to switch to, from the kernel parameters (before `--`).
pub fn parse(cmdline: &str) -> Option<Root> {
    let params = cmdline.split(" -- ").next().unwrap_or_default();
    let mut r = Root {
        source: String::new(),
        fstype: None,
        read_only: false,
        data: String::new(),
    };
    for p in params.split_ascii_whitespace() {
        match p.split_once('=') {
            Some(("root", v)) => r.source = v.to_string(),
            Some(("rootfstype", v)) => r.fstype = Some(v.to_string()),
            Some(("rootflags", v)) => r.data = v.to_string(),
            None if p == "ro" => r.read_only = true,
            None if p == "rw" => r.read_only = false,
            _ => {}
        }
    }
    (!r.source.is_empty() && r.source != "/dev/ram0").then_some(r)
}

/// Mounts `r` and makes it `/`.
pub fn switch(r: &Root, debug: bool) -> Result<(), String> {
    let target = "/newroot";
    let _ = std::fs::create_dir_all(target);
    if r.source.starts_with("/dev/") {
        for _ in 0..300 {
            if std::path::Path::new(&r.source).exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    let flags = if r.read_only { libc::MS_RDONLY } else { 0 };
    let types = match &r.fstype {
        Some(t) => vec![t.clone()],
        None => crate::mounts::block_fstypes(),
    };
    let mut last = String::from("no filesystem type to try");
    let ok = types.iter().any(|t| {
        let data = if t == "9p" && r.data.is_empty() {
            "trans=virtio,version=9p2000.L"
        } else {
            &r.data
        };
        match sys::mount(&r.source, target, t, flags, data) {
            Ok(()) => true,
            Err(e) => {
                last = format!("{t}: {e}");
                false
            }
        }
    });
    if !ok {
        return Err(format!("mount the root {} : {last}", r.source));
    }
    for m in [
        "/dev/pts", "/dev/shm", "/dev", "/proc", "/sys", "/tmp", "/run",
    ] {
        let _ = sys::detach(m);
    }
    std::env::set_current_dir(target).map_err(|e| format!("chdir {target}: {e}"))?;
    sys::mount(".", "/", "", libc::MS_MOVE, "").map_err(|e| format!("move the root: {e}"))?;
    std::os::unix::fs::chroot(".").map_err(|e| format!("chroot: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("chdir /: {e}"))?;
    if debug {
        eprintln!(
            "urunit: switched to the root {} at {}s",
            r.source,
            crate::uptime()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_from_the_command_line() {
        assert_eq!(parse("console=ttyS0 root=/dev/ram0 rw -- /bin/sh"), None);
        assert_eq!(parse("quiet init=/urunit -- root=/dev/vda"), None);
        let r = parse("root=/dev/vda rw init=/urunit -- /bin/sh").unwrap();
        assert_eq!(
            (r.source.as_str(), r.fstype, r.read_only),
            ("/dev/vda", None, false)
        );
        let r = parse("root=fs0 rw rootfstype=9p rootflags=trans=virtio,version=9p2000.L -- x")
            .unwrap();
        assert_eq!(r.fstype.as_deref(), Some("9p"));
        assert_eq!(r.data, "trans=virtio,version=9p2000.L");
    }
}
