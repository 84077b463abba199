//! `create`'s undo: what a failing create takes down, driven by its journal.

use super::remains;
use crate::container::Journal;
use crate::error::Result;
use nix::unistd::Pid;
use std::path::{Path, PathBuf};

/// Undoes a half-made container when create fails: whatever its journal names (the container
/// process, cgroups, network wiring, block devices, the state directory; `lifecycle::remains`).
/// Each step is noted in the journal before it leaves anything on the host, so that a create
/// killed on the way leaves a directory `delete --force` can clean up the same way.
pub(super) struct Undo {
    pub dir: PathBuf,
    pub journal: Journal,
    /// Block devices taken from the host (mounted back from `storage.json`), their fds.
    pub storage: Option<crate::storage::Prepared>,
    /// The container process, our child: reaped here.
    pub child: Option<Pid>,
    pub armed: bool,
}

impl Undo {
    pub fn begin(root: &Path, id: &str) -> Result<Undo> {
        let (dir, journal) = Journal::begin(root, id)?;
        Ok(Undo {
            dir,
            journal,
            storage: None,
            child: None,
            armed: true,
        })
    }

    /// Records the journal before the next step acts on it.
    pub fn note(&self) -> Result<()> {
        Ok(self.journal.record(&self.dir)?)
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Some(pid) = self.child {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
        }
        // the devices' fds close before their filesystems are mounted back
        drop(self.storage.take());
        if let Err(e) = remains::remove(&self.dir, &self.journal) {
            log::warn!("{e}");
        }
    }
}
