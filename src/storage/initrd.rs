//! A copy of the image's initrd with newc cpio records appended. The kernel unpacks
//! concatenated archives (compressed or not) in order, so later records add or replace files.

use crate::plan::{CpioRecord, InitrdBuild};
use std::io::Write;
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
    f.write_all(&archive(&records))?;
    f.sync_all()
}

/// Bind-mounted content past this size is refused: the guest holds its initrd in RAM.
const MAX_HOST_BYTES: usize = 64 << 20;

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
    walk(src, dest, out)?;
    let total: usize = out.iter().map(|r| r.contents.len()).sum();
    if total > MAX_HOST_BYTES {
        return Err(std::io::Error::other(format!(
            "bind mounts for the initrd exceed {} MiB",
            MAX_HOST_BYTES >> 20
        )));
    }
    Ok(())
}

fn walk(src: &Path, name: &str, out: &mut Vec<CpioRecord>) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(src)?;
    let ft = m.file_type();
    let contents = if ft.is_file() {
        std::fs::read(src)?
    } else if ft.is_symlink() {
        std::fs::read_link(src)?
            .as_os_str()
            .as_encoded_bytes()
            .to_vec()
    } else if ft.is_dir() {
        Vec::new()
    } else {
        return Ok(()); // sockets, fifos, devices: not carried
    };
    out.push(CpioRecord {
        name: name.to_string(),
        mode: m.mode(),
        contents,
        owner: (m.uid(), m.gid()),
        rdev: (0, 0),
    });
    if ft.is_dir() {
        let mut entries: Vec<_> = std::fs::read_dir(src)?.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let n = format!("{name}/{}", e.file_name().to_string_lossy());
            walk(&e.path(), &n, out)?;
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
}
