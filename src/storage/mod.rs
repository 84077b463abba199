//! Storage for guests: the initrd copy with appended records (the image's file is never
//! modified), generated files. Block devices and shared filesystems grow here.

pub mod initrd;

use crate::plan::LaunchPlan;

/// Writes what the plan needs on disk before the monitor starts (at create, so that errors
/// surface there): generated files and the assembled initrd, owned by the monitor's user.
pub fn materialize(plan: &LaunchPlan, uid: u32, gid: u32) -> std::io::Result<()> {
    for f in &plan.files {
        std::fs::write(&f.path, &f.contents)?;
        chown(&f.path, uid, gid)?;
    }
    if let Some(b) = &plan.initrd_build {
        initrd::assemble(b)?;
        chown(&b.path, uid, gid)?;
    }
    Ok(())
}

fn chown(p: &std::path::Path, uid: u32, gid: u32) -> std::io::Result<()> {
    std::os::unix::fs::chown(p, Some(uid), Some(gid))
}
