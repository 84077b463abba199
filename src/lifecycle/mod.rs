//! The container lifecycle as an engine API: what the verbs do, apart from parsing their
//! arguments and printing. `create` makes a container from a bundle (validate, fork the
//! container process, record state, run the creation hooks); `start` releases it; `delete`
//! and `destroy` take it down; `remains` undoes a half-made one.

mod create;
mod create_input;
mod create_sync;
mod create_undo;
mod delete;
mod error;
pub mod exec;
pub mod exec_process;
mod relay;
mod relay_loop;
pub mod remains;
mod start;

pub use create::{create, Created};
pub use delete::{delete, delete_half_made, destroy, stop, wait_gone, HalfMade};
pub use error::LifecycleError;
pub use start::start;

use std::path::PathBuf;

/// What `create` is asked to do: the command line's arguments and global options, resolved.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// The container id (validated by `create`).
    pub id: String,
    /// The bundle directory, absolute or relative to the current directory.
    pub bundle: PathBuf,
    /// Where to write the container process's pid, if anywhere.
    pub pid_file: Option<PathBuf>,
    /// The socket that receives the pty master when `process.terminal` is true.
    pub console_socket: Option<PathBuf>,
    /// How many fds past stdio the container process inherits.
    pub preserve_fds: u32,
    /// The state root (`--root`), absolute.
    pub root: PathBuf,
    /// The caller asked for rootless operation, or is not root.
    pub rootless: bool,
    /// `--systemd-cgroup`: `cgroupsPath` is `slice:prefix:name`.
    pub systemd_cgroup: bool,
}
