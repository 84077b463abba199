//! `/proc/self/mountinfo`: which filesystem is mounted at a path, and whether its source is a
//! block device the guest could take over (reference 7.1, case 3).

use std::borrow::Cow;
use std::cell::OnceCell;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

/// One line of mountinfo, the fields storage needs, owned (kept in a plan's takeovers).
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

/// One line of mountinfo as slices of the text: nothing is copied until a caller asks for an
/// unescaped path or an owned entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mount<'a> {
    /// Still escaped (`\040` for a space): compare with [`Mount::is_at`].
    pub raw_mount_point: &'a str,
    pub mount_options: &'a str,
    pub fstype: &'a str,
    /// Still escaped: compare with [`Mount::same_source`].
    pub raw_source: &'a str,
    pub super_options: &'a str,
}

impl Mount<'_> {
    /// Whether this is mounted on exactly `path`.
    pub fn is_at(&self, path: &Path) -> bool {
        escaped_eq(self.raw_mount_point, path.as_os_str().as_bytes())
    }

    pub fn source(&self) -> Cow<'_, str> {
        unescape(self.raw_source)
    }

    pub fn same_source(&self, other: &Mount) -> bool {
        self.raw_source == other.raw_source || self.source() == other.source()
    }

    pub fn to_entry(&self) -> MountEntry {
        MountEntry {
            mount_point: PathBuf::from(unescape(self.raw_mount_point).into_owned()),
            mount_options: self.mount_options.to_string(),
            fstype: self.fstype.to_string(),
            source: self.source().into_owned(),
            super_options: self.super_options.to_string(),
        }
    }
}

/// Whether escaped mountinfo text `raw` names the bytes `want`; allocates only for a field
/// that holds an escape.
fn escaped_eq(raw: &str, want: &[u8]) -> bool {
    if !raw.as_bytes().contains(&b'\\') {
        return raw.as_bytes() == want;
    }
    unescape(raw).as_bytes() == want
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> Cow<'_, str> {
    let b = s.as_bytes();
    if !b.contains(&b'\\') {
        return Cow::Borrowed(s);
    }
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
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

/// One line: `id parent maj:min root mount_point options [optional fields...] - fstype source
/// super_options` (proc(5)); a line without the fields or the `-` separator is skipped.
fn line(l: &str) -> Option<Mount<'_>> {
    let mut f = l.split(' ');
    let mut pre = [""; 6];
    for p in &mut pre {
        *p = f.next().filter(|x| *x != "-")?;
    }
    f.by_ref().find(|x| *x == "-")?;
    Some(Mount {
        raw_mount_point: pre[4],
        mount_options: pre[5],
        fstype: f.next()?,
        raw_source: f.next()?,
        super_options: f.next().unwrap_or(""),
    })
}

/// The mounts of mountinfo text, in its order (a later mount is on top of an earlier one).
pub fn parse(text: &str) -> impl Iterator<Item = Mount<'_>> + Clone {
    text.lines().filter_map(line)
}

/// This process's mount table, read from `/proc/self/mountinfo` the first time a caller needs
/// it and then kept: one read and no copies per `create`, however many mounts the host has.
#[derive(Debug, Default)]
pub struct Table {
    text: OnceCell<Result<String, String>>,
}

impl Table {
    /// Reads nothing yet.
    pub fn lazy() -> Table {
        Table::default()
    }

    /// A table of the given mountinfo text (tests, fuzzing).
    pub fn from_text(text: impl Into<String>) -> Table {
        Table {
            text: OnceCell::from(Ok(text.into())),
        }
    }

    /// Whether the text has been read (or given).
    pub fn is_read(&self) -> bool {
        self.text.get().is_some()
    }

    /// The mountinfo text, read on first use.
    pub fn text(&self) -> Result<&str, super::StorageError> {
        self.text
            .get_or_init(|| read_text().map_err(|e| e.to_string()))
            .as_deref()
            .map_err(|e| super::StorageError::MountTable(e.clone()))
    }
}

/// /proc/self/mountinfo in a buffer sized for a busy host up front (procfs reports no size, and
/// growing from nothing copies the text over and over).
fn read_text() -> std::io::Result<String> {
    use std::io::Read;
    let mut buf = Vec::with_capacity(64 * 1024);
    std::fs::File::open("/proc/self/mountinfo")?.read_to_end(&mut buf)?;
    String::from_utf8(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// The mounts whose line holds `needle`, in order: one substring search over the whole text,
/// and only the lines it hits are split into fields (a host with thousands of mounts costs one
/// scan, not thousands of parses).
pub fn containing<'a, 'n>(text: &'a str, needle: &'n str) -> impl Iterator<Item = Mount<'a>> + 'n
where
    'a: 'n,
{
    let b = text.as_bytes();
    let mut last = usize::MAX;
    // memmem: a vectorised search (the hosts this is for have ~100 bytes of text per mount)
    memchr::memmem::find_iter(b, needle.as_bytes()).filter_map(move |i| {
        let start = memchr::memrchr(b'\n', &b[..i]).map_or(0, |n| n + 1);
        if start == last {
            return None;
        }
        last = start;
        let end = memchr::memchr(b'\n', &b[i..]).map_or(b.len(), |n| i + n);
        // both ends are at a newline or the text's ends: char boundaries
        line(text.get(start..end)?.trim_end_matches('\r'))
    })
}

/// `bytes` as mountinfo writes them in a path field (space, tab, newline and backslash as
/// `\ooo`), between the spaces that delimit a field; None when it cannot be in UTF-8 text.
fn field_needle(bytes: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push(' ');
    for c in std::str::from_utf8(bytes).ok()?.chars() {
        match c {
            ' ' | '\t' | '\n' | '\\' => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push(' ');
    Some(out)
}

/// The filesystem mounted on exactly `path` (the topmost one), if any.
pub fn at<'a>(text: &'a str, path: &Path) -> Option<Mount<'a>> {
    let needle = field_needle(path.as_os_str().as_bytes())?;
    let found = containing(text, &needle).filter(|m| m.is_at(path)).last();
    found
}

/// Whether `source` names a block device node.
pub fn is_block_device(source: &str) -> bool {
    source.starts_with('/')
        && std::fs::metadata(source).is_ok_and(|m| m.file_type().is_block_device())
}

/// The block-device filesystem mounted at `path`, when it is one that can be handed to a
/// guest: its source is a block device that is mounted nowhere else in this namespace
/// (urunc's rule: another mount of the same source means the device is shared).
pub fn block_mount_at(text: &str, path: &Path) -> Option<MountEntry> {
    let m = at(text, path)?;
    if !is_block_device(&m.source()) {
        return None;
    }
    let needle = format!(" {} ", m.raw_source);
    let mut others = containing(text, &needle).filter(|o| o.same_source(&m) && !o.is_at(path));
    others.next().is_none().then(|| m.to_entry())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_finds_the_topmost_mount() {
        // line format from proc(5) (mountinfo); optional fields ("shared:1") may be absent
        let t = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n\
                 90 22 7:0 / /run/b\\040x/rootfs rw,relatime shared:40 master:2 - ext4 /dev/loop0 rw\n\
                 bad line - without fields\n\
                 91 22 0:50 / /run/b\\040x/rootfs rw - tmpfs tmpfs\n";
        let m: Vec<Mount> = parse(t).collect();
        assert_eq!(m.len(), 3);
        let e = m[1].to_entry();
        assert_eq!(e.mount_point, PathBuf::from("/run/b x/rootfs"));
        assert_eq!(e.source, "/dev/loop0");
        assert_eq!(e.super_options, "rw");
        assert_eq!(m[2].super_options, "");
        assert_eq!(m[0].mount_options, "rw,relatime");
        assert_eq!(at(t, Path::new("/run/b x/rootfs")).unwrap().fstype, "tmpfs");
        assert!(at(t, Path::new("/run")).is_none());
        // the escaped text itself is not the path
        assert!(at(t, Path::new("/run/b\\040x/rootfs")).is_none());
        // a path that is another line's source or root is not a mount point
        assert!(at(t, Path::new("/dev/loop0")).is_none());
        assert_eq!(field_needle(b"a b\\").unwrap(), " a\\040b\\134 ");
        let hits: Vec<&str> = containing(t, " rw").map(|m| m.fstype).collect();
        assert_eq!(hits, ["ext4", "ext4", "tmpfs"], "each line once, in order");
    }

    #[test]
    fn the_table_is_read_once_and_kept() {
        let t = Table::lazy();
        assert!(!t.is_read());
        let first = t.text().unwrap().as_ptr();
        assert!(parse(t.text().unwrap()).any(|m| m.is_at(Path::new("/"))));
        assert_eq!(t.text().unwrap().as_ptr(), first);
        let t = Table::from_text("1 0 0:1 / /x rw - tmpfs a\\040b rw\n");
        let m = at(t.text().unwrap(), Path::new("/x")).unwrap();
        assert_eq!(m.source(), "a b");
    }

    #[test]
    fn escapes_above_a_byte_are_kept_as_text() {
        // the fuzz target's crash input: "\573" overflowed u8
        assert_eq!(unescape("a\\573b"), "a\\573b");
        assert!(matches!(unescape("plain"), Cow::Borrowed("plain")));
        assert_eq!(unescape("a\\134b\\011"), "a\\b\t");
        assert_eq!(unescape("\\37"), "\\37");
    }
}
