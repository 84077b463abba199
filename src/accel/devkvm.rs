//! Whether /dev/kvm can run a guest: a 16-bit real-mode guest of a few instructions that does
//! 1000 port writes and halts, run with KVM_RUN in a child process the caller times out. On
//! nested-virtualisation hosts /dev/kvm opens and KVM_CREATE_VM works, yet guests hang or
//! crawl: only running one tells.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Instant;

/// The guest, loaded at 0x1000:
/// `mov cx, 1000; l: mov al, 0x42; out 0x10, al; dec cx; jnz l; hlt`.
const CODE: [u8; 11] = [
    0xb9, 0xe8, 0x03, 0xb0, 0x42, 0xe6, 0x10, 0x49, 0x75, 0xf9, 0xf4,
];
pub const WRITES: u32 = 1000;
const PORT: u16 = 0x10;
const MEM: usize = 0x10000;
const LOAD: u64 = 0x1000;

const KVM_GET_API_VERSION: u64 = 0xae00;
const KVM_CREATE_VM: u64 = 0xae01;
const KVM_GET_VCPU_MMAP_SIZE: u64 = 0xae04;
const KVM_CREATE_VCPU: u64 = 0xae41;
const KVM_SET_USER_MEMORY_REGION: u64 = 0x4020_ae46;
const KVM_RUN: u64 = 0xae80;
const KVM_GET_REGS: u64 = 0x8090_ae81;
const KVM_SET_REGS: u64 = 0x4090_ae82;
const KVM_GET_SREGS: u64 = 0x8138_ae83;
const KVM_SET_SREGS: u64 = 0x4138_ae84;
const KVM_EXIT_IO: u32 = 2;
const KVM_EXIT_HLT: u32 = 5;

#[repr(C)]
struct MemoryRegion {
    slot: u32,
    flags: u32,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
}

/// `struct kvm_regs`: rax..r15, rip, rflags.
#[repr(C)]
#[derive(Default)]
struct Regs {
    gpr: [u64; 16],
    rip: u64,
    rflags: u64,
}

/// `struct kvm_sregs` (312 bytes); only the code segment's base and selector are touched.
#[repr(C)]
struct Sregs {
    cs_base: u64,
    cs_limit: u32,
    cs_selector: u16,
    rest: [u8; 298],
}

fn ioctl(fd: i32, req: u64, arg: u64) -> Result<i32, String> {
    // SAFETY: every request used here takes an integer or a pointer to a struct of the kernel's
    // layout that the caller owns for the duration of the call.
    let r = unsafe { libc::ioctl(fd, req as _, arg) };
    if r < 0 {
        Err(std::io::Error::last_os_error().to_string())
    } else {
        Ok(r)
    }
}

fn owned(fd: i32) -> OwnedFd {
    // SAFETY: `fd` was just returned by the kernel and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// An anonymous shared or private mapping, unmapped on drop.
struct Map(*mut libc::c_void, usize);

impl Map {
    fn new(len: usize, fd: Option<i32>) -> Result<Map, String> {
        let (flags, fd) = match fd {
            Some(fd) => (libc::MAP_SHARED, fd),
            None => (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS, -1),
        };
        // SAFETY: a fresh mapping at an address the kernel picks; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error().to_string());
        }
        Ok(Map(p, len))
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this value owns.
        unsafe { libc::munmap(self.0, self.1) };
    }
}

/// The vCPU `v` in real mode with its code segment at 0, starting at `LOAD`.
fn real_mode_at_load(v: std::os::fd::RawFd) -> Result<(), String> {
    let mut sregs = Sregs {
        cs_base: 0,
        cs_limit: 0,
        cs_selector: 0,
        rest: [0; 298],
    };
    ioctl(v, KVM_GET_SREGS, &mut sregs as *mut _ as u64)?;
    sregs.cs_base = 0;
    sregs.cs_selector = 0;
    ioctl(v, KVM_SET_SREGS, &sregs as *const _ as u64)?;
    let mut regs = Regs::default();
    ioctl(v, KVM_GET_REGS, &mut regs as *mut _ as u64)?;
    regs.rip = LOAD;
    regs.rflags = 2;
    ioctl(v, KVM_SET_REGS, &regs as *const _ as u64)?;
    Ok(())
}

/// Runs the guest to its halt. Ok: the number of port writes seen and the microseconds the
/// run took. Meant for a disposable child process: a hanging KVM_RUN is the caller's timeout.
pub fn run_guest() -> Result<(u32, u128), String> {
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map_err(|e| format!("cannot open /dev/kvm: {e}"))?;
    let kvm = kvm.as_raw_fd();
    let api = ioctl(kvm, KVM_GET_API_VERSION, 0)?;
    if api != 12 {
        return Err(format!("unexpected KVM API version {api}"));
    }
    let vm = owned(ioctl(kvm, KVM_CREATE_VM, 0).map_err(|e| format!("KVM_CREATE_VM: {e}"))?);
    let mem = Map::new(MEM, None)?;
    // SAFETY: the mapping is MEM bytes long and LOAD + CODE fits in it.
    unsafe {
        std::ptr::copy_nonoverlapping(
            CODE.as_ptr(),
            (mem.0 as *mut u8).add(LOAD as usize),
            CODE.len(),
        )
    };
    let region = MemoryRegion {
        slot: 0,
        flags: 0,
        guest_phys_addr: 0,
        memory_size: MEM as u64,
        userspace_addr: mem.0 as u64,
    };
    ioctl(
        vm.as_raw_fd(),
        KVM_SET_USER_MEMORY_REGION,
        &region as *const _ as u64,
    )
    .map_err(|e| format!("KVM_SET_USER_MEMORY_REGION: {e}"))?;
    let vcpu = owned(
        ioctl(vm.as_raw_fd(), KVM_CREATE_VCPU, 0).map_err(|e| format!("KVM_CREATE_VCPU: {e}"))?,
    );
    let run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)? as usize;
    let run = Map::new(run_size, Some(vcpu.as_raw_fd()))?;
    let v = vcpu.as_raw_fd();
    real_mode_at_load(v)?;
    let base = run.0 as *const u8;
    let start = Instant::now();
    let mut writes = 0;
    loop {
        ioctl(v, KVM_RUN, 0).map_err(|e| format!("KVM_RUN: {e}"))?;
        // SAFETY: `struct kvm_run` is at least 64 bytes: exit_reason at 8, the io exit at 32
        // (direction u8, size u8, port u16, count u32, data_offset u64); the data offset
        // points inside the run mapping.
        let (reason, port, byte) = unsafe {
            let reason = std::ptr::read_unaligned(base.add(8) as *const u32);
            let port = std::ptr::read_unaligned(base.add(34) as *const u16);
            let off = std::ptr::read_unaligned(base.add(40) as *const u64) as usize;
            let byte = if off < run_size { *base.add(off) } else { 0 };
            (reason, port, byte)
        };
        match reason {
            KVM_EXIT_IO if port == PORT && byte == 0x42 => writes += 1,
            KVM_EXIT_HLT => break,
            r => {
                return Err(format!(
                    "unexpected exit reason {r} after {writes} port writes"
                ))
            }
        }
    }
    Ok((writes, start.elapsed().as_micros()))
}
