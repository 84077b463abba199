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
pub mod initrd;
pub mod mountinfo;
pub mod select;
pub mod takeover;
pub mod workdir;

pub use binds::{BindMount, InitrdFile};

use crate::plan::GuestKind;
use crate::plan::{LaunchPlan, PlanInput, RootfsKind};
use std::os::fd::OwnedFd;
use std::path::Path;

/// Host-side work that `select` decided and `prepare` carries out.
#[derive(Debug, Default)]
pub struct Pending {
    pub takeovers: Vec<select::Takeover>,
    pub copy_into_rootfs: Vec<BindMount>,
}

/// What `prepare` holds: the devices' fds (inherited by the container process) and the
/// mounts to put back if create fails.
#[derive(Debug, Default)]
pub struct Prepared {
    pub fds: Vec<OwnedFd>,
    pub restores: Vec<takeover::Restore>,
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
}

/// At create, in the caller's mount namespace: copies what the monitor needs out of a block
/// rootfs, builds the boot initrd, unmounts what the guest takes over and opens the devices.
pub fn prepare(
    input: &mut PlanInput,
    pending: Pending,
    state_dir: &Path,
) -> Result<Prepared, String> {
    let (uid, gid) = (input.process.uid, input.process.gid);
    let by_fd = crate::monitor::declaration(&input.unikernel.hypervisor).block_fd;
    let snapshot = pending
        .takeovers
        .iter()
        .any(|t| input.blocks[t.block].id == "rootfs");
    if snapshot {
        // the rootfs disappears from the host's view: keep a copy of the kernel
        let work = workdir::Dir::open(&input.work_dir)
            .map_err(|e| format!("open the work directory: {e}"))?;
        let mut src = crate::bundle::reopen(&input.kernel)
            .map_err(|e| format!("open the kernel {}: {e}", input.kernel.display()))?;
        work.copy_new("kernel", &mut src, uid, gid)
            .map_err(|e| format!("copy the kernel out of the rootfs: {e}"))?;
        input.kernel = input.work_dir.join("kernel");
        // urunc's behaviour: bind-mounted files are copied into the block rootfs
        for b in &pending.copy_into_rootfs {
            let t = binds::target_in(&input.rootfs, &b.destination, false)?;
            std::fs::File::open(&b.source)
                .and_then(|mut src| std::io::copy(&mut src, &mut t.open_write()?))
                .map_err(|e| format!("copy {} into the rootfs: {e}", b.source.display()))?;
        }
    }
    let app = input.app_args().first().cloned().unwrap_or_default();
    let root_kind = input.rootfs_kind();
    if GuestKind::from_name(&input.unikernel.unikernel_type) == Some(GuestKind::Linux)
        && app.contains("urunit")
        && matches!(
            root_kind,
            RootfsKind::Block | RootfsKind::NineP | RootfsKind::Virtiofs
        )
    {
        if let Some(recs) = bootfs::records(&input.rootfs, &app)? {
            let p = input.work_dir.join("boot.cpio");
            workdir::write_new(&p, &initrd::archive(&recs), uid, gid)
                .map_err(|e| format!("write {}: {e}", p.display()))?;
            input.boot_initrd = Some(p);
        }
    }
    let mut out = Prepared::default();
    if !pending.takeovers.is_empty() {
        if !nix::unistd::geteuid().is_root() {
            return Err("giving a host block device to the guest needs root".into());
        }
        out.restores = pending
            .takeovers
            .iter()
            .map(|t| (&t.mount).into())
            .collect();
        takeover::record(state_dir, &out.restores)?;
    }
    for (i, t) in pending.takeovers.iter().enumerate() {
        let ro = input.blocks[t.block].read_only;
        match takeover::take(&t.mount, ro) {
            Ok(fd) => {
                if by_fd {
                    input.blocks[t.block].fd = Some(takeover::raw(&fd));
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
    if by_fd {
        // images of the rootfs (annotation blocks): root opens them read-write for the
        // monitor, so never through a link planted since they were resolved
        for b in input.blocks.iter_mut().filter(|b| b.fd.is_none()) {
            let fd: std::os::fd::OwnedFd = crate::bundle::reopen_with(&b.source, !b.read_only)
                .map_err(|e| format!("open the block image {}: {e}", b.source.display()))?
                .into();
            b.fd = Some(takeover::raw(&fd));
            out.fds.push(fd);
        }
    }
    Ok(out)
}

/// In the container's mount namespace: the container's bind mounts inside the shared rootfs.
pub fn share(input: &PlanInput, own_mount_ns: bool) -> Result<(), String> {
    let Some(s) = &input.shared_fs else {
        return Ok(());
    };
    if s.binds.is_empty() {
        return Ok(());
    }
    if !own_mount_ns {
        return Err("a shared rootfs with bind mounts needs its own mount namespace".into());
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
