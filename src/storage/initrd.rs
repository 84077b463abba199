//! A copy of the image's initrd with newc cpio records appended. The kernel unpacks
//! concatenated archives (compressed or not) in order, so later records add or replace files.

use crate::plan::{CpioRecord, InitrdBuild};
use std::io::Write;

fn pad4(w: &mut Vec<u8>) {
    while !w.len().is_multiple_of(4) {
        w.push(0);
    }
}

fn header(out: &mut Vec<u8>, ino: u32, mode: u32, size: usize, name: &str) {
    let fields = [
        ino,
        mode,
        0,
        0,
        1,
        0,
        size as u32,
        0,
        0,
        0,
        0,
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
            r.mode,
            r.contents.len(),
            r.name.trim_start_matches('/'),
        );
        out.extend_from_slice(&r.contents);
        pad4(&mut out);
    }
    header(&mut out, 0, 0, 0, "TRAILER!!!");
    out
}

/// Copies `base` to `path` and appends the records.
pub fn assemble(b: &InitrdBuild) -> std::io::Result<()> {
    std::fs::copy(&b.base, &b.path)?;
    let mut f = std::fs::OpenOptions::new().append(true).open(&b.path)?;
    // the appended archive must start 4-byte aligned
    let len = f.metadata()?.len();
    let pad = vec![0u8; ((4 - len % 4) % 4) as usize];
    f.write_all(&pad)?;
    f.write_all(&archive(&b.records))?;
    f.sync_all()
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
            }],
        };
        assemble(&b).unwrap();
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
