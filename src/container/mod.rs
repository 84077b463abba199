//! A container's persistent record (`<root>/<id>/state.json`) and its derived status.

mod files;
mod id;
mod journal;
mod state;
mod state_format;
mod status;
mod summary;

pub use files::{write_atomic, write_atomic_as, Durability};
pub use id::{validate_id, IdError};
pub use journal::{sweep as sweep_temp_dirs, Journal, NetIntent, Proc, JOURNAL};
pub use state::{Extra, State, StateError, STATE_VERSION};
pub use status::{process_start_time, Status};
pub use summary::Summary;

use std::path::{Path, PathBuf};

pub const STATE_FILE: &str = "state.json";
/// The create/start barrier: the supervisor blocks opening it for writing until `start` opens
/// it for reading; it exists exactly while the container is `created`.
pub const BARRIER: &str = "exec.fifo";

pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}
