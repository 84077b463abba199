//! The unikernel's Solo5 notes, checked as solo5 v0.12.1 checks them: `elf_load_note` in
//! `tenders/common/elf.c` (an ELF64 executable for this machine; each note at the start of its
//! own PT_NOTE segment, named `Solo5`; the data after the header padded to the note's
//! alignment), the ABI1 note (`include/elf_abi.h`: target, version) and the MFT1 manifest
//! (`include/mft_abi.h`, `mft_validate` in `tenders/common/mft.c`: version 1, at most 64
//! entries of 104 bytes, exactly that size, the first one `MFT_RESERVED_FIRST` with an empty
//! name, every name NUL-terminated). Read with open/pread only.

use super::{Device, Target};

const ABI1: u32 = 0x3149_4241;
const MFT1: u32 = 0x3154_464d;
const NHDR: usize = 20; // Elf64_Nhdr + "Solo5\0" padded to 8
const ENTRY: usize = 104;
const NAME: usize = 68;
const RESERVED_FIRST: u32 = 1 << 30;
#[cfg(target_arch = "x86_64")]
const EM_TARGET: u16 = 62;
#[cfg(target_arch = "aarch64")]
const EM_TARGET: u16 = 183;

struct Fd(i32);

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: closes the fd this guard owns.
        unsafe { libc::close(self.0) };
    }
}

fn pread(fd: &Fd, len: usize, off: u64) -> Option<Vec<u8>> {
    let mut b = vec![0u8; len];
    // SAFETY: reads into a buffer we own, of its length.
    let n = unsafe { libc::pread(fd.0, b.as_mut_ptr().cast(), len, off as libc::off_t) };
    (n == len as isize).then_some(b)
}

fn u16le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn u64le(b: &[u8], at: usize) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(x)
}

/// The note of `ty` (its data without header and padding), `Ok(None)` when there is none.
fn note(fd: &Fd, file: &str, ty: u32, align: usize, max: usize) -> Result<Option<Vec<u8>>, String> {
    let inv = |what: &str| format!("{file}: Invalid or unsupported executable ({what})");
    let eh = pread(fd, 64, 0).ok_or_else(|| inv("short elf header"))?;
    let valid = eh[..4] == *b"\x7fELF"
        && eh[4] == 2
        && eh[5] == 1
        && u32le(&eh, 20) == 1
        && u16le(&eh, 52) == 64
        && u16le(&eh, 56) >= 1
        && u16le(&eh, 54) == 56
        && u16le(&eh, 16) == 2
        && u16le(&eh, 18) == EM_TARGET;
    if !valid {
        return Err(inv("elf header invalid while loading note"));
    }
    let phnum = u16le(&eh, 56) as usize;
    let ph = pread(fd, phnum * 56, u64le(&eh, 32)).ok_or_else(|| inv("short program header"))?;
    for p in ph.chunks_exact(56) {
        if u32le(p, 0) != 4 {
            continue;
        }
        let (off, filesz) = (u64le(p, 8), u64le(p, 32) as usize);
        if filesz < 12 {
            return Err(inv("note does not fall within valid size"));
        }
        if filesz < NHDR {
            continue;
        }
        let h = pread(fd, NHDR, off).ok_or_else(|| inv("short note"))?;
        if u32le(&h, 0) != 6 || h[12..18] != *b"Solo5\0" || u32le(&h, 8) != ty {
            continue;
        }
        let descsz = u32le(&h, 4) as usize;
        if descsz < 1 || descsz > max || filesz < NHDR + descsz {
            return Err(inv("note does not fall within valid size"));
        }
        let data_off = (NHDR + align - 1) & !(align - 1);
        let size = descsz
            .checked_sub(data_off - NHDR)
            .filter(|s| *s > 0)
            .ok_or_else(|| inv("note does not fall within valid size"))?;
        return pread(fd, size, off + data_off as u64)
            .map(Some)
            .ok_or_else(|| inv("short note"));
    }
    Ok(None)
}

/// Opens the unikernel, checks its ABI note for `t` and returns its manifest's devices.
pub fn load(t: Target, file: &str) -> Result<Vec<Device>, String> {
    let c = std::ffi::CString::new(file).map_err(|_| format!("{file}: Could not open"))?;
    // SAFETY: opens a NUL-terminated path read-only.
    let raw = unsafe { libc::open(c.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(format!(
            "{file}: Could not open: {}",
            std::io::Error::last_os_error()
        ));
    }
    let fd = Fd(raw);
    let abi = note(&fd, file, ABI1, 4, 16)?
        .ok_or_else(|| format!("{file}: No Solo5 ABI information found in executable"))?;
    let target = match t {
        Target::Hvt => 1,
        Target::Spt => 2,
    };
    if abi.len() < 8 || u32le(&abi, 0) != target {
        return Err(format!(
            "{file}: Executable is not for the {} target",
            t.prog()
        ));
    }
    if u32le(&abi, 4) != 2 {
        return Err(format!(
            "{file}: Executable requests unsupported ABI version {}",
            u32le(&abi, 4)
        ));
    }
    let m = note(&fd, file, MFT1, 8, 8 + 64 * ENTRY)?
        .ok_or_else(|| format!("{file}: No Solo5 manifest found in executable"))?;
    manifest(&m).ok_or_else(|| format!("{file}: Solo5 manifest is invalid"))
}

fn manifest(m: &[u8]) -> Option<Vec<Device>> {
    if m.len() < 8 || u32le(m, 0) != 1 {
        return None;
    }
    let n = u32le(m, 4) as usize;
    if n > 64 || m.len() != 8 + n * ENTRY || n < 1 {
        return None;
    }
    let entry = |i: usize| &m[8 + i * ENTRY..8 + (i + 1) * ENTRY];
    if u32le(entry(0), NAME) != RESERVED_FIRST || entry(0)[0] != 0 {
        return None;
    }
    let mut devs = Vec::new();
    for i in 0..n {
        let e = entry(i);
        // the name is NUL-terminated, `.attached` (offset 96) is false
        if e[NAME - 1] != 0 || e[96] != 0 {
            return None;
        }
        let end = e.iter().position(|b| *b == 0)?;
        let net = match u32le(e, NAME) {
            1 => false,
            2 => true,
            _ => continue,
        };
        devs.push(Device {
            name: String::from_utf8_lossy(&e[..end]).into_owned(),
            net,
            attached: false,
            mac: None,
            fd: -1,
            mtu: -1,
            iface: String::new(),
        });
    }
    Some(devs)
}
