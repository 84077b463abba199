//! The top-level error: every module's typed error, logged once in `main`. `Msg` is left for
//! the command line's own refusals (`commands/`).

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error(transparent)]
    Unikernel(#[from] crate::unikernel::UnikernelError),
    #[error(transparent)]
    Bundle(#[from] crate::bundle::BundleError),
    #[error(transparent)]
    State(#[from] crate::container::StateError),
    #[error(transparent)]
    Id(#[from] crate::container::IdError),
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    #[error(transparent)]
    Hook(#[from] crate::hooks::HookError),
    #[error(transparent)]
    Ns(#[from] crate::sandbox::namespaces::NsError),
    #[error(transparent)]
    Cgroup(#[from] crate::sandbox::cgroups::CgroupError),
    #[error(transparent)]
    Sandbox(#[from] crate::sandbox::SandboxError),
    #[error(transparent)]
    Accel(#[from] crate::accel::AccelError),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// The typed error of a module that itself returns this `Result` (lifecycle, supervisor,
    /// net): boxed, so that this module need not import them (no circle); the module gives its
    /// own `From` impl.
    #[error(transparent)]
    Module(Box<dyn std::error::Error + Send + Sync + 'static>),
    #[error(transparent)]
    Fault(#[from] crate::fault::FaultError),
    #[error(transparent)]
    Delegate(#[from] crate::delegate::DelegateError),
    #[error("{what}: {source}")]
    Sys { what: String, source: nix::Error },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Msg(String),
}

pub type Result<T> = std::result::Result<T, Error>;

pub fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> Error {
    let what = what.into();
    move |source| Error::Sys { what, source }
}

pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}
