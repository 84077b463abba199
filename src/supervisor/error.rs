//! The container process's errors (reported to `create` over the sync socket, or to `start`
//! through the barrier), in the words users see.

use crate::sandbox::SandboxError;

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("create did not map the user namespace")]
    NotMapped,
    #[error("rootfsPropagation={0} is not supported")]
    Propagation(String),
    #[error("cannot confine the monitor: {0}")]
    ConfineMonitor(#[source] SandboxError),
    /// Why the forked monitor process could not execute the monitor (its own words).
    #[error("{0}")]
    MonitorExec(String),
    #[error("cannot compile the seccomp filter: {0}")]
    SeccompCompile(#[source] SandboxError),
    #[error("cannot confine the supervisor: {0}")]
    ConfineSupervisor(#[source] SandboxError),
    #[error(transparent)]
    Dhcp(#[from] super::dhcp_socket::DhcpSocketError),
}

impl From<SupervisorError> for crate::error::Error {
    fn from(e: SupervisorError) -> Self {
        crate::error::Error::Module(Box::new(e))
    }
}
