//! Storage for guests (reference section 7): the root filesystem in urunc's priority order
//! (`select`), block devices taken over from the host (`takeover`), the container's bind
//! mounts (`binds`), the initrd copy with appended records (`initrd`: the image's file is never
//! modified), the boot initrd of modular Linux kernels (`bootfs`).
//!
//! When it happens: `select` at create while the plan input is built (pure); `prepare` at
//! create in the caller's mount namespace, before the container's is made (copies out of a
//! block rootfs, unmounts, opens devices); `share` in the container's mount namespace (bind
//! mounts inside a shared rootfs); `materialize` right after the plan is built; `release` at
//! delete (mounts back what was taken over).

pub mod binds;
pub mod bootfs;
mod error;
pub mod initrd;
pub mod mountinfo;
pub mod select;
pub mod takeover;
pub mod workdir;

pub use binds::{BindMount, InitrdFile};
use error::io;
pub use error::StorageError;

use crate::plan::GuestKind;
use crate::plan::{LaunchPlan, PlanInput, RootfsKind};
use std::os::fd::{OwnedFd, RawFd};
use std::path::{Path, PathBuf};

/// Host-side work that `select` decided and `prepare` carries out.
#[derive(Debug, Default)]
pub struct Pending {
    pub takeovers: Vec<select::Takeover>,
    pub copy_into_rootfs: Vec<BindMount>,
}

/// What `prepare` made: the devices' fds (inherited by the container process) and the mounts
/// to put back if create fails, and what the plan input takes from it (`fill`).
#[derive(Debug, Default)]
pub struct Prepared {
    pub fds: Vec<OwnedFd>,
    pub restores: Vec<takeover::Restore>,
    /// The kernel, copied out of a block rootfs that leaves the host's view.
    pub kernel: Option<PathBuf>,
    /// The boot initrd made for a modular Linux kernel (`bootfs`).
    pub boot_initrd: Option<PathBuf>,
    /// Block devices the monitor inherits: (index in the input's blocks, fd number).
    pub block_fds: Vec<(usize, RawFd)>,
}

impl Prepared {
    /// Puts back what was taken over (create failed after `prepare`).
    pub fn undo(&mut self) {
        self.fds.clear();
        for r in &self.restores {
            if let Err(e) = takeover::remount(r) {
                log::warn!("{e}");
            }
        }
    }

    /// The plan input with what was made: the kernel's copy, the boot initrd, the fds.
    pub fn fill(&self, input: &mut PlanInput) {
        if let Some(k) = &self.kernel {
            input.kernel = k.clone();
        }
        if let Some(b) = &self.boot_initrd {
            input.boot_initrd = Some(b.clone());
        }
        for (i, fd) in &self.block_fds {
            if let Some(b) = input.blocks.get_mut(*i) {
                b.fd = Some(*fd);
            }
        }
    }
}

/// At create, in the caller's mount namespace: copies what the monitor needs out of a block
/// rootfs, builds the boot initrd, unmounts what the guest takes over and opens the devices.
/// Returns what it made; `input` is only read.
pub fn prepare(
    input: &PlanInput,
    pending: Pending,
    state_dir: &Path,
) -> Result<Prepared, StorageError> {
    let mut out = Prepared::default();
    let snapshot = pending
        .takeovers
        .iter()
        .any(|t| input.blocks[t.block].id == "rootfs");
    if snapshot {
        out.kernel = Some(copy_out(input, &pending.copy_into_rootfs)?);
    }
    out.boot_initrd = boot_initrd(input)?;
    take_over(input, &pending.takeovers, state_dir, &mut out)?;
    let by_fd = crate::monitor::declaration(&input.unikernel.hypervisor).block_fd;
    if by_fd {
        // images of the rootfs (annotation blocks): root opens them read-write for the
        // monitor, so never through a link planted since they were resolved
        let taken: Vec<usize> = out.block_fds.iter().map(|(i, _)| *i).collect();
        for (i, b) in input.blocks.iter().enumerate() {
            if taken.contains(&i) || b.fd.is_some() {
                continue;
            }
            let fd: OwnedFd = crate::bundle::reopen_with(&b.source, !b.read_only)
                .map_err(io(error::on("open the block image", &b.source)))?
                .into();
            out.block_fds.push((i, takeover::raw(&fd)));
            out.fds.push(fd);
        }
    }
    Ok(out)
}

/// The rootfs disappears from the host's view: keeps a copy of the kernel (returned), and
/// copies bind-mounted files into the block rootfs (urunc's behaviour).
fn copy_out(input: &PlanInput, copy_into_rootfs: &[BindMount]) -> Result<PathBuf, StorageError> {
    let (uid, gid) = (input.process.uid, input.process.gid);
    let work = workdir::Dir::open(&input.work_dir).map_err(io("open the work directory"))?;
    let mut src = crate::bundle::reopen(&input.kernel)
        .map_err(io(error::on("open the kernel", &input.kernel)))?;
    work.copy_new("kernel", &mut src, uid, gid)
        .map_err(io("copy the kernel out of the rootfs"))?;
    for b in copy_into_rootfs {
        let t = binds::target_in(&input.rootfs, &b.destination, false)?;
        std::fs::File::open(&b.source)
            .and_then(|mut src| std::io::copy(&mut src, &mut t.open_write()?))
            .map_err(io(format!("copy {} into the rootfs", b.source.display())))?;
    }
    Ok(input.work_dir.join("kernel"))
}

/// The boot initrd of a Linux guest started by urunit from a block, 9p or virtio-fs root
/// whose image ships kernel modules.
fn boot_initrd(input: &PlanInput) -> Result<Option<PathBuf>, StorageError> {
    let app = input.app_args().first().cloned().unwrap_or_default();
    let wanted = GuestKind::from_name(&input.unikernel.unikernel_type) == Some(GuestKind::Linux)
        && app.contains("urunit")
        && matches!(
            input.rootfs_kind(),
            RootfsKind::Block | RootfsKind::NineP | RootfsKind::Virtiofs
        );
    if !wanted {
        return Ok(None);
    }
    let Some(recs) = bootfs::records(&input.rootfs, &app)? else {
        return Ok(None);
    };
    let p = input.work_dir.join("boot.cpio");
    let (uid, gid) = (input.process.uid, input.process.gid);
    workdir::write_new(&p, &initrd::archive(&recs), uid, gid)
        .map_err(io(format!("write {}", p.display())))?;
    Ok(Some(p))
}

/// Unmounts what the guest takes over and opens the devices (recorded first, for delete);
/// on failure, what was taken is put back.
fn take_over(
    input: &PlanInput,
    takeovers: &[select::Takeover],
    state_dir: &Path,
    out: &mut Prepared,
) -> Result<(), StorageError> {
    if takeovers.is_empty() {
        return Ok(());
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(StorageError::TakeoverNeedsRoot);
    }
    out.restores = takeovers.iter().map(|t| (&t.mount).into()).collect();
    takeover::record(state_dir, &out.restores)?;
    let by_fd = crate::monitor::declaration(&input.unikernel.hypervisor).block_fd;
    for (i, t) in takeovers.iter().enumerate() {
        let ro = input.blocks[t.block].read_only;
        match takeover::take(&t.mount, ro) {
            Ok(fd) => {
                if by_fd {
                    out.block_fds.push((t.block, takeover::raw(&fd)));
                }
                out.fds.push(fd);
            }
            Err(e) => {
                // put back the ones already taken
                out.restores.truncate(i);
                out.undo();
                return Err(e);
            }
        }
    }
    Ok(())
}

/// In the container's mount namespace: the container's bind mounts inside the shared rootfs.
pub fn share(input: &PlanInput, own_mount_ns: bool) -> Result<(), StorageError> {
    let Some(s) = &input.shared_fs else {
        return Ok(());
    };
    if s.binds.is_empty() {
        return Ok(());
    }
    if !own_mount_ns {
        return Err(StorageError::SharedNeedsMountNs);
    }
    binds::mount_into(&s.path, &s.binds)
}

/// At delete: mounts back what the guest took over.
pub fn release(state_dir: &Path) {
    for e in takeover::release(state_dir) {
        log::warn!("{e}");
    }
}

/// Writes what the plan needs on disk before the monitor starts (at create, so that errors
/// surface there): generated files and the assembled initrd, owned by the monitor's user. They
/// live in the work directory, which that user can write: see `workdir` for how nothing planted
/// there is followed.
pub fn materialize(plan: &LaunchPlan, uid: u32, gid: u32) -> std::io::Result<()> {
    for f in &plan.files {
        workdir::write_new(&f.path, &f.contents, uid, gid)?;
    }
    if let Some(b) = &plan.initrd_build {
        initrd::assemble(b, uid, gid)?;
    }
    Ok(())
}
