//! The lifecycle's errors: what a verb refuses or cannot do, in the words users see.

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("process.terminal is true but no --console-socket was given")]
    TerminalWithoutSocket,
    #[error("the container process exited during create")]
    ExitedDuringCreate,
    /// The container process failed, and said why over the sync socket (its own words).
    #[error("{0}")]
    ContainerProcess(String),
    /// A bad annotation (or `/urunc.json` key): where it came from, and what is wrong.
    #[error("{origin}: {source}")]
    Annotation {
        origin: String,
        source: crate::plan::PlanError,
    },
    #[error("[monitors.{monitor}] default_memory_mb = {mb} in the config file is too large (at most {max} MiB)")]
    MemoryTooLarge { monitor: String, mb: u64, max: u64 },
    #[error("linux.resources.cpu quota {quota} / period {period} asks for more vCPUs than a monitor can give")]
    TooManyVcpus { quota: i64, period: u64 },
    #[error("invalid value {value:?} for annotation {key}: use true or false")]
    NotABool { key: &'static str, value: String },
    #[error("cannot start a container that has stopped")]
    StartStopped,
    #[error("cannot start an already {0} container")]
    StartNotCreated(&'static str),
    #[error("container is not in the created state: {0}")]
    NoBarrier(std::io::Error),
    #[error("the container process exited before it could start")]
    ExitedBeforeStart,
    /// Why the container process could not start the monitor (its own words).
    #[error("{0}")]
    StartFailed(String),
    #[error("cannot delete container {id} that is not stopped: {status}")]
    DeleteRunning { id: String, status: &'static str },
    #[error("timeout waiting for pid {0} to die")]
    KillTimeout(i32),
    #[error("container {id} is still being created (create is pid {pid}): wait for it, or use delete --force")]
    StillCreating { id: String, pid: i32 },
    #[error("timeout waiting for the create of {id} (pid {pid}) to die")]
    CreateKillTimeout { id: String, pid: i32 },
    #[error(transparent)]
    Remains(#[from] super::remains::RemainsError),
}

impl From<LifecycleError> for crate::error::Error {
    fn from(e: LifecycleError) -> Self {
        crate::error::Error::Module(Box::new(e))
    }
}
