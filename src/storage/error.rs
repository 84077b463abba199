//! The storage module's errors: an operation on a file or a mount that failed, or something
//! the spec, the image or the host asks that storage cannot do.

use std::path::Path;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    /// Reading the host's mount table failed (`mountinfo::Table::text`).
    #[error("read /proc/self/mountinfo: {0}")]
    MountTable(String),
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error("record the storage state: {0}")]
    Record(#[source] crate::container::StateError),
    #[error("mount {source_dev} back on {target}: device busy")]
    StillBusy { source_dev: String, target: String },
    #[error("giving a host block device to the guest needs root")]
    TakeoverNeedsRoot,
    #[error("a shared rootfs with bind mounts needs its own mount namespace")]
    SharedNeedsMountNs,
    #[error("{device} is still mounted elsewhere (another mount namespace?): the guest cannot take it over")]
    StillMounted { device: String },
    /// What the guest type, the monitor or the image cannot do, and what to do instead.
    #[error("{0}")]
    Unsupported(String),
    /// A mount destination of the spec that cannot be a mount point inside the rootfs (`why`
    /// follows the quoted destination: " is not ...", ": x is not ...").
    #[error("mount destination {destination:?}{why}")]
    Destination { destination: String, why: String },
}

pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
    let what = what.into();
    move |source| StorageError::Io { what, source }
}

pub fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> StorageError {
    let what = what.into();
    move |source| StorageError::Sys { what, source }
}

/// `what` followed by a path, as the messages name it.
pub fn on(what: &str, p: &Path) -> String {
    format!("{what} {}", p.display())
}
