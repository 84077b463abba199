//! `/proc/self/mountinfo`: which filesystem is mounted at a path, and whether its source is a
//! block device the guest could take over (reference 7.1, case 3).

use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// One line of mountinfo, the fields storage needs.
#[derive(Debug, Clone, PartialEq)]
pub struct MountEntry {
    pub mount_point: PathBuf,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub mount_options: String,
    pub fstype: String,
    pub source: String,
    /// Per-superblock options (`rw,errors=remount-ro`).
    pub super_options: String,
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // a byte is at most \377: "\573" is not an escape (found by the mountinfo fuzz target:
        // it overflowed the byte)
        if b[i] == b'\\'
            && i + 3 < b.len()
            && (b'0'..=b'3').contains(&b[i + 1])
            && b[i + 2..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

pub fn parse(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let pre: Vec<&str> = pre.split(' ').collect();
            let post: Vec<&str> = post.split(' ').collect();
            Some(MountEntry {
                mount_point: PathBuf::from(unescape(pre.get(4)?)),
                mount_options: pre.get(5)?.to_string(),
                fstype: post.first()?.to_string(),
                source: unescape(post.get(1)?),
                super_options: post.get(2).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

pub fn read() -> std::io::Result<Vec<MountEntry>> {
    Ok(parse(&std::fs::read_to_string("/proc/self/mountinfo")?))
}

/// The filesystem mounted on exactly `path` (the topmost one), if any.
pub fn at<'a>(mounts: &'a [MountEntry], path: &Path) -> Option<&'a MountEntry> {
    mounts.iter().rev().find(|m| m.mount_point == path)
}

/// Whether `source` names a block device node.
pub fn is_block_device(source: &str) -> bool {
    source.starts_with('/')
        && std::fs::metadata(source).is_ok_and(|m| m.file_type().is_block_device())
}

/// The block-device filesystem mounted at `path`, when it is one that can be handed to a
/// guest: its source is a block device that is mounted nowhere else in this namespace
/// (urunc's rule: another mount of the same source means the device is shared).
pub fn block_mount_at(mounts: &[MountEntry], path: &Path) -> Option<MountEntry> {
    let m = at(mounts, path)?;
    if !is_block_device(&m.source) {
        return None;
    }
    let others = mounts
        .iter()
        .filter(|o| o.source == m.source && o.mount_point != m.mount_point)
        .count();
    (others == 0).then(|| m.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_finds_the_topmost_mount() {
        let t = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n\
                 90 22 7:0 / /run/b\\040x/rootfs rw,relatime shared:40 - ext4 /dev/loop0 rw\n\
                 91 22 0:50 / /run/b\\040x/rootfs rw - tmpfs tmpfs rw,size=4k\n";
        let m = parse(t);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].mount_point, PathBuf::from("/run/b x/rootfs"));
        assert_eq!(m[1].source, "/dev/loop0");
        assert_eq!(m[1].super_options, "rw");
        assert_eq!(
            at(&m, Path::new("/run/b x/rootfs")).unwrap().fstype,
            "tmpfs"
        );
        assert!(at(&m, Path::new("/run")).is_none());
    }

    #[test]
    fn escapes_above_a_byte_are_kept_as_text() {
        // the fuzz target's crash input: "\573" overflowed u8
        assert_eq!(unescape("a\\573b"), "a\\573b");
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("\\37"), "\\37");
    }
}
