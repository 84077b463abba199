//! The solo5 application manifest: the `Solo5`/`MFT1` ELF note (`.note.solo5.manifest`) that
//! declares the unikernel's devices. The tenders refuse a device the manifest does not declare
//! and a declared device left unattached, so the plan names devices from it.
//!
//! Layout (solo5's `mft_abi.h`, ELF64 little-endian): the note sits at the start of a PT_NOTE
//! segment: `namesz = 6`, `descsz`, `type = 0x3154464d`, name `Solo5\0` padded to 8 bytes; the
//! manifest starts 8-byte aligned (offset 24): `version u32 = 1`, `entries u32`, then
//! `entries` records of 104 bytes: `name[68]` (NUL-terminated), `type u32` (1 block, 2 net), ...

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

const NOTE_TYPE: u32 = 0x3154_464d;
const ENTRY_SIZE: usize = 104;
const NAME_SIZE: usize = 68;
const MAX_ENTRIES: u32 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevKind {
    Block,
    Net,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub kind: DevKind,
}

/// The declared devices; `Ok(None)` when the file is not an ELF64 with a solo5 manifest.
pub fn read(path: &Path) -> std::io::Result<Option<Vec<Device>>> {
    // a regular file reached without a link: the kernel may be a copy in the work dir, which
    // the container's uid can write (root never follows a link planted there)
    let mut f = crate::bundle::reopen(path)?;
    let mut eh = [0u8; 64];
    if f.read(&mut eh)? < 64 || &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return Ok(None);
    }
    let phoff = u64le(&eh, 32);
    let phentsize = u16le(&eh, 54) as usize;
    let phnum = u16le(&eh, 56) as usize;
    if phentsize != 56 || phnum == 0 || phnum > 256 {
        return Ok(None);
    }
    let mut ph = vec![0u8; phentsize * phnum];
    f.seek(SeekFrom::Start(phoff))?;
    f.read_exact(&mut ph)?;
    for p in ph.chunks_exact(56) {
        const PT_NOTE: u32 = 4;
        if u32le(p, 0) != PT_NOTE {
            continue;
        }
        let (off, size) = (u64le(p, 8), u64le(p, 32));
        if size < 24 {
            continue;
        }
        let mut note = vec![0u8; size.min(24 + 8 + ENTRY_SIZE as u64 * 64) as usize];
        f.seek(SeekFrom::Start(off))?;
        f.read_exact(&mut note)?;
        if let Some(devs) = parse_note(&note) {
            return Ok(Some(devs));
        }
    }
    Ok(None)
}

/// Parses one note (header included); `None` when it is not a valid solo5 manifest.
pub fn parse_note(n: &[u8]) -> Option<Vec<Device>> {
    if n.len() < 32 || u32le(n, 0) != 6 || u32le(n, 8) != NOTE_TYPE || &n[12..18] != b"Solo5\0" {
        return None;
    }
    let m = &n[24..];
    if u32le(m, 0) != 1 {
        return None;
    }
    let entries = u32le(m, 4);
    if entries > MAX_ENTRIES || m.len() < 8 + entries as usize * ENTRY_SIZE {
        return None;
    }
    let mut devs = Vec::new();
    for i in 0..entries as usize {
        let e = &m[8 + i * ENTRY_SIZE..8 + (i + 1) * ENTRY_SIZE];
        let name = &e[..NAME_SIZE];
        let end = name.iter().position(|b| *b == 0)?;
        let name = std::str::from_utf8(&name[..end]).ok()?.to_string();
        let kind = match u32le(e, NAME_SIZE) {
            1 => DevKind::Block,
            2 => DevKind::Net,
            _ => continue,
        };
        devs.push(Device { name, kind });
    }
    Some(devs)
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32le(b: &[u8], at: usize) -> u32 {
    let mut x = [0u8; 4];
    x.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(x)
}

fn u64le(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// A minimal ELF64 with one PT_NOTE holding a manifest, for tests.
#[cfg(test)]
pub fn test_elf(devices: &[(&str, DevKind)]) -> Vec<u8> {
    let mut note = Vec::new();
    let desc_len = 4 + 8 + devices.len() * ENTRY_SIZE;
    note.extend(6u32.to_le_bytes());
    note.extend((desc_len as u32).to_le_bytes());
    note.extend(NOTE_TYPE.to_le_bytes());
    note.extend(b"Solo5\0\0\0");
    note.extend([0u8; 4]); // pad to the 8-byte aligned manifest
    note.extend(1u32.to_le_bytes());
    note.extend((devices.len() as u32).to_le_bytes());
    for (name, kind) in devices {
        let mut e = vec![0u8; ENTRY_SIZE];
        e[..name.len()].copy_from_slice(name.as_bytes());
        let t: u32 = match kind {
            DevKind::Block => 1,
            DevKind::Net => 2,
        };
        e[NAME_SIZE..NAME_SIZE + 4].copy_from_slice(&t.to_le_bytes());
        note.extend(e);
    }
    let mut elf = vec![0u8; 64];
    elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
    elf[32..40].copy_from_slice(&64u64.to_le_bytes()); // e_phoff
    elf[54..56].copy_from_slice(&56u16.to_le_bytes()); // e_phentsize
    elf[56..58].copy_from_slice(&1u16.to_le_bytes()); // e_phnum
    let mut ph = vec![0u8; 56];
    ph[0..4].copy_from_slice(&4u32.to_le_bytes());
    ph[8..16].copy_from_slice(&120u64.to_le_bytes()); // p_offset
    ph[32..40].copy_from_slice(&(note.len() as u64).to_le_bytes()); // p_filesz
    elf.extend(ph);
    elf.extend(note);
    elf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_declared_devices() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k.hvt");
        std::fs::write(
            &p,
            test_elf(&[("service0", DevKind::Net), ("disk", DevKind::Block)]),
        )
        .unwrap();
        let d = read(&p).unwrap().unwrap();
        assert_eq!(
            d,
            vec![
                Device {
                    name: "service0".into(),
                    kind: DevKind::Net
                },
                Device {
                    name: "disk".into(),
                    kind: DevKind::Block
                }
            ]
        );
        std::fs::write(&p, b"#fakevmm\n").unwrap();
        assert_eq!(read(&p).unwrap(), None);
    }
}
