//! Every unikernel configuration value that can reach a command line (the monitor's argv or the
//! guest's kernel command line) is checked before it is used. The rules for paths and Solo5
//! device names are upstream urunc's (`pkg/unikontainers/annotations.go`, v0.8:
//! `allowedPathRe`, `validateAnnotationPathClean`, `solo5DevNameRe`, `maxAnnotationValueLen`),
//! so an image upstream accepts is accepted here and one it refuses is refused.

use super::{UnikernelConfig, UnikernelError};
use super::{BINARY, BLK_MNT_POINT, BLOCK, CMDLINE, INITRD, SOLO5_BLK_DEV, SOLO5_NET_DEV, VERSION};

/// Upstream's bound on a value (4096 bytes: "limits paths and version values").
pub const MAX_VALUE: usize = 4096;
/// Upstream's Solo5 device name rule: `^[A-Za-z0-9]{1,67}$`.
const MAX_SOLO5_DEV: usize = 67;

fn bad(c: &UnikernelConfig, key: &str, value: &str, msg: impl Into<String>) -> UnikernelError {
    UnikernelError::Value {
        key: c.origin(key),
        value: value.chars().take(200).collect(),
        msg: msg.into(),
    }
}

/// A path inside the image, as upstream accepts it: plain characters (`[A-Za-z0-9._/-]`), not
/// starting with `..` or `-`, already clean (no `//`, `.` or `..` component, no trailing `/`),
/// not `.`, and not `/` unless `root_ok`. Empty means unset.
fn path(c: &UnikernelConfig, key: &str, v: &str, root_ok: bool) -> Result<(), UnikernelError> {
    if v.is_empty() {
        return Ok(());
    }
    if v.len() > MAX_VALUE {
        return Err(bad(c, key, v, format!("longer than {MAX_VALUE} bytes")));
    }
    if let Some(ch) = v
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '_' | '/' | '-')))
    {
        return Err(bad(
            c,
            key,
            v,
            format!("{ch:?} is not allowed in a path (allowed: A-Z a-z 0-9 . _ / -)"),
        ));
    }
    if v.starts_with("..") || v.starts_with('-') {
        return Err(bad(c, key, v, "a path must not start with \"..\" or \"-\""));
    }
    if v == "/" {
        return if root_ok {
            Ok(())
        } else {
            Err(bad(c, key, v, "a path must not be \"/\""))
        };
    }
    let body = v.strip_prefix('/').unwrap_or(v);
    if body
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(bad(
            c,
            key,
            v,
            "a path must be clean (no \"//\", \".\" or \"..\" component, no trailing \"/\")",
        ));
    }
    Ok(())
}

/// Free text (a command line, a version): bounded, no control characters (a newline or NUL
/// would end or split the line it is put into).
fn text(c: &UnikernelConfig, key: &str, v: &str) -> Result<(), UnikernelError> {
    if v.len() > MAX_VALUE {
        return Err(bad(c, key, v, format!("longer than {MAX_VALUE} bytes")));
    }
    if let Some(ch) = v.chars().find(|ch| ch.is_control()) {
        return Err(bad(
            c,
            key,
            v,
            format!("control character {ch:?} is not allowed"),
        ));
    }
    Ok(())
}

fn solo5_dev(c: &UnikernelConfig, key: &str, v: &str) -> Result<(), UnikernelError> {
    if v.is_empty() || (v.len() <= MAX_SOLO5_DEV && v.chars().all(|ch| ch.is_ascii_alphanumeric()))
    {
        return Ok(());
    }
    Err(bad(
        c,
        key,
        v,
        format!("a Solo5 device name is 1 to {MAX_SOLO5_DEV} letters and digits"),
    ))
}

pub fn check(c: &UnikernelConfig) -> Result<(), UnikernelError> {
    path(c, BINARY, &c.binary, false)?;
    path(c, INITRD, &c.initrd, false)?;
    path(c, BLOCK, &c.block, false)?;
    path(c, BLK_MNT_POINT, &c.blk_mnt_point, true)?;
    text(c, CMDLINE, &c.cmdline)?;
    text(c, VERSION, &c.version)?;
    text(c, super::TYPE, &c.unikernel_type)?;
    text(c, super::HYPERVISOR, &c.hypervisor)?;
    solo5_dev(c, SOLO5_NET_DEV, &c.solo5_net_dev)?;
    // ours: a comma-separated list, one name per block image in order (upstream: one name)
    c.solo5_blk_dev
        .split(',')
        .filter(|_| !c.solo5_blk_dev.is_empty())
        .try_for_each(|name| {
            if name.is_empty() {
                return Err(bad(
                    c,
                    SOLO5_BLK_DEV,
                    &c.solo5_blk_dev,
                    "an empty device name in the list",
                ));
            }
            solo5_dev(c, SOLO5_BLK_DEV, name)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(f: impl FnOnce(&mut UnikernelConfig)) -> Result<(), UnikernelError> {
        let mut c = UnikernelConfig {
            unikernel_type: "unikraft".into(),
            hypervisor: "qemu".into(),
            binary: "/unikernel/kernel".into(),
            ..Default::default()
        };
        f(&mut c);
        check(&c)
    }

    #[test]
    fn paths_follow_upstreams_rules() {
        assert!(with(|_| {}).is_ok());
        assert!(with(|c| c.blk_mnt_point = "/".into()).is_ok());
        assert!(with(|c| c.binary = "kernel".into()).is_ok());
        for bad_path in [
            "/", "/a b", "/a\nb", "../k", "-k", "/a//b", "/a/./b", "/a/../b", "/a/", ".", "/k;rm",
            "/k$x",
        ] {
            let e = with(|c| c.binary = bad_path.into()).unwrap_err();
            assert!(
                e.to_string()
                    .contains("annotation com.urunc.unikernel.binary"),
                "{e}"
            );
        }
        let long = format!("/{}", "a".repeat(MAX_VALUE));
        assert!(with(|c| c.initrd = long)
            .unwrap_err()
            .to_string()
            .contains("longer than"));
    }

    #[test]
    fn text_and_device_names() {
        assert!(with(|c| c.cmdline = "a b=c \"d\"".into()).is_ok());
        for v in ["a\nb", "a\0b", "a\u{1b}[2J", "a\u{85}b"] {
            assert!(with(|c| c.cmdline = v.into()).is_err(), "{v:?}");
        }
        assert!(with(|c| c.cmdline = "x".repeat(MAX_VALUE + 1)).is_err());
        assert!(with(|c| c.solo5_net_dev = "service0".into()).is_ok());
        assert!(with(|c| c.solo5_blk_dev = "a".repeat(67)).is_ok());
        assert!(with(|c| c.solo5_blk_dev = "a".repeat(68)).is_err());
        assert!(with(|c| c.solo5_blk_dev = "rootfs,storage".into()).is_ok());
        assert!(with(|c| c.solo5_blk_dev = "rootfs,".into()).is_err());
        assert!(with(|c| c.solo5_blk_dev = "rootfs;x".into()).is_err());
        let e = with(|c| {
            c.solo5_net_dev = "tap0;x".into();
            c.from_urunc_json = true;
        })
        .unwrap_err();
        assert!(e.to_string().contains("solo5NetDev in /urunc.json"), "{e}");
    }
}
