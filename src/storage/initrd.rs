//! A copy of the image's initrd with newc cpio records appended. The kernel unpacks
//! concatenated archives (compressed or not) in order, so later records add or replace files.

use crate::plan::{CpioRecord, InitrdBuild};
use nix::fcntl::{openat, readlinkat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, Mode};
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::Path;

fn pad4(w: &mut Vec<u8>) {
    while !w.len().is_multiple_of(4) {
        w.push(0);
    }
}

fn header(out: &mut Vec<u8>, ino: u32, r: &CpioRecord, name: &str) {
    let fields = [
        ino,
        r.mode,
        r.owner.0,
        r.owner.1,
        1,
        0,
        r.contents.len() as u32,
        0,
        0,
        r.rdev.0,
        r.rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08X}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

/// The records as a newc archive, with its trailer.
pub fn archive(records: &[CpioRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, r) in records.iter().enumerate() {
        header(
            &mut out,
            0x7575_0000 + i as u32,
            r,
            r.name.trim_start_matches('/'),
        );
        out.extend_from_slice(&r.contents);
        pad4(&mut out);
    }
    header(&mut out, 0, &CpioRecord::default(), "TRAILER!!!");
    out
}

/// Copies `base` to `path` (a new file of the work directory, owned by `uid:gid`) and appends
/// the records, then the host files.
pub fn assemble(b: &InitrdBuild, uid: u32, gid: u32) -> std::io::Result<()> {
    let mut records = b.records.clone();
    for f in &b.files {
        host_records(&f.source, &f.destination, &mut records)?;
    }
    let mut base = crate::bundle::reopen(&b.base)?;
    let (dir, name) = super::workdir::parent_of(&b.path)?;
    let mut f = dir.copy_new(&name, &mut base, uid, gid)?;
    // the appended archive must start 4-byte aligned
    let len = f.metadata()?.len();
    let pad = vec![0u8; ((4 - len % 4) % 4) as usize];
    f.write_all(&pad)?;
    // not fsynced: see workdir::Dir::write_new
    f.write_all(&archive(&records))
}

/// Records for a host file or directory tree at `dest`, after records for the directories
/// leading to it (0755 root; `/tmp` keeps its sticky mode: the kernel applies a directory
/// record's mode to an existing directory). Ownership, mode and symlinks are the host's.
pub fn host_records(src: &Path, dest: &str, out: &mut Vec<CpioRecord>) -> std::io::Result<()> {
    let dest = dest.trim_start_matches('/');
    let mut parent = String::new();
    if let Some(p) = Path::new(dest).parent() {
        for c in p.components() {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(&c.as_os_str().to_string_lossy());
            let mode = if matches!(parent.as_str(), "tmp" | "var/tmp") {
                0o041777
            } else {
                0o040755
            };
            if !out.iter().any(|r| r.name == parent) {
                out.push(CpioRecord {
                    name: parent.clone(),
                    mode,
                    ..Default::default()
                });
            }
        }
    }
    let (parent, base) = match (src.parent(), src.file_name()) {
        (Some(p), Some(b)) => (p, b),
        _ => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{} cannot be copied into the initrd", src.display()),
            ))
        }
    };
    // the source's own directory is the engine's; below it, the tree is walked fd by fd
    let dir = owned(nix::fcntl::open(
        parent,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?);
    let mut bytes = out.iter().map(|r| r.contents.len()).sum();
    walk_at(&dir, base, dest, out, &mut bytes, 0)
}

/// Bind-mounted content past this size is refused: the guest holds its initrd in RAM.
const MAX_HOST_BYTES: usize = 64 << 20;
/// Deeper trees are refused (the walk recurses).
const MAX_DEPTH: usize = 64;

fn owned(fd: std::os::fd::RawFd) -> OwnedFd {
    // SAFETY: `fd` was just returned by a successful open and nothing else owns it.
    unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) }
}

fn too_big() -> std::io::Error {
    std::io::Error::other(format!(
        "bind mounts for the initrd exceed {} MiB, or {MAX_DEPTH} directory levels",
        MAX_HOST_BYTES >> 20
    ))
}

/// Records for `entry` of `dir` as `name`, without following any link: a volume's content is
/// the container's own and may change while it is read (a file swapped for a link to a host
/// file is recorded as that link, or refused, never read through).
fn walk_at(
    dir: &OwnedFd,
    entry: &std::ffi::OsStr,
    name: &str,
    out: &mut Vec<CpioRecord>,
    bytes: &mut usize,
    depth: usize,
) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if depth > MAX_DEPTH {
        return Err(too_big());
    }
    let raw = Some(dir.as_raw_fd());
    let st = fstatat(raw, entry, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let kind = st.st_mode & libc::S_IFMT;
    let contents = match kind {
        libc::S_IFREG => {
            let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
            let mut f = std::fs::File::from(owned(openat(raw, entry, flags, Mode::empty())?));
            let m = f.metadata()?;
            if !m.is_file() || m.ino() != st.st_ino || m.dev() != st.st_dev {
                return Err(std::io::Error::other(format!(
                    "{name} changed while it was copied into the initrd"
                )));
            }
            let left = MAX_HOST_BYTES.saturating_sub(*bytes) as u64;
            super::workdir::read_capped(&mut f, left, name).map_err(|_| too_big())?
        }
        libc::S_IFLNK => readlinkat(raw, entry)?.into_vec(),
        libc::S_IFDIR => Vec::new(),
        _ => return Ok(()), // sockets, fifos, devices: not carried
    };
    *bytes += contents.len();
    out.push(CpioRecord {
        name: name.to_string(),
        mode: st.st_mode,
        contents,
        owner: (st.st_uid, st.st_gid),
        rdev: (0, 0),
    });
    if kind == libc::S_IFDIR {
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let sub = owned(openat(raw, entry, flags, Mode::empty())?);
        let mut names: Vec<std::ffi::OsString> =
            std::fs::read_dir(format!("/proc/self/fd/{}", sub.as_raw_fd()))?
                .flatten()
                .map(|e| e.file_name())
                .collect();
        names.sort();
        for n in names {
            let child = format!("{name}/{}", n.to_string_lossy());
            walk_at(&sub, &n, &child, out, bytes, depth + 1)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_records_are_readable_by_cpio_and_the_base_is_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("base.img");
        std::fs::write(&base, b"BASE").unwrap();
        let b = InitrdBuild {
            base: base.clone(),
            path: dir.path().join("out.img"),
            records: vec![CpioRecord {
                name: "urunit.conf".into(),
                mode: 0o100400,
                contents: b"UES\nA=1\nUEE\n".to_vec(),
                ..Default::default()
            }],
            files: Vec::new(),
        };
        let (uid, gid) = (
            nix::unistd::getuid().as_raw(),
            nix::unistd::getgid().as_raw(),
        );
        assemble(&b, uid, gid).unwrap();
        // a second assembly never overwrites (nor follows) what is there
        assert!(assemble(&b, uid, gid).is_err());
        assert_eq!(std::fs::read(&base).unwrap(), b"BASE");
        let out = std::fs::read(&b.path).unwrap();
        assert!(out.starts_with(b"BASE"));
        let arch = &out[4..];
        // hand-checked newc header: magic, then mode 0o100400 = 0x8100, size 12, namesize 12
        assert_eq!(&arch[..6], b"070701");
        assert_eq!(&arch[14..22], b"00008100");
        assert_eq!(&arch[54..62], b"0000000C");
        assert_eq!(&arch[94..102], b"0000000C");
        assert_eq!(&arch[110..121], b"urunit.conf");
        if let Ok(o) = std::process::Command::new("cpio")
            .args(["-it", "--quiet"])
            .stdin(
                std::fs::File::open(dir.path().join("out.img"))
                    .map(|f| {
                        use std::io::{Seek, SeekFrom};
                        let mut f = f;
                        f.seek(SeekFrom::Start(4)).unwrap();
                        f
                    })
                    .unwrap(),
            )
            .output()
        {
            let listing = String::from_utf8_lossy(&o.stdout);
            assert_eq!(listing.trim(), "urunit.conf", "{listing}");
        }
    }

    #[test]
    fn host_trees_are_walked_without_following_links() {
        let d = tempfile::tempdir().unwrap();
        let vol = d.path().join("vol");
        std::fs::create_dir_all(vol.join("sub")).unwrap();
        std::fs::write(vol.join("sub/f"), b"data").unwrap();
        std::fs::write(d.path().join("secret"), b"host").unwrap();
        std::os::unix::fs::symlink(d.path().join("secret"), vol.join("link")).unwrap();
        nix::unistd::mkfifo(&vol.join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let mut out = Vec::new();
        host_records(&vol, "/data", &mut out).unwrap();
        let get = |n: &str| out.iter().find(|r| r.name == n);
        assert_eq!(get("data/sub/f").unwrap().contents, b"data");
        let link = get("data/link").unwrap();
        assert_eq!(link.mode & 0o170000, 0o120000);
        assert_eq!(
            link.contents,
            d.path().join("secret").as_os_str().as_encoded_bytes()
        );
        assert!(get("data/fifo").is_none());
        assert!(!out.iter().any(|r| r.contents == b"host"));
        // too deep a tree is refused, not walked until the stack runs out
        let mut deep = d.path().join("deep");
        for _ in 0..(MAX_DEPTH + 2) {
            deep.push("d");
        }
        std::fs::create_dir_all(&deep).unwrap();
        let mut out = Vec::new();
        assert!(host_records(&d.path().join("deep"), "/x", &mut out).is_err());
    }
}
