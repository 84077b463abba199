//! One file per verb; this module holds what they share.

pub mod check;
pub mod create;
pub mod delete;
pub mod exec;
pub mod features;
pub mod kill;
pub mod list;
pub mod pause;
pub mod ps;
pub mod run;
pub mod spec;
pub mod start;
pub mod state;
pub mod update;

use crate::cli::Global;
use crate::container::{State, StateError};
use crate::error::{Error, Result};
use std::path::PathBuf;

pub struct Ctx {
    pub g: Global,
    pub root: PathBuf,
}

impl Ctx {
    pub fn new(g: Global) -> Result<Ctx> {
        let root = match &g.root {
            Some(r) => {
                let r = if r.is_absolute() {
                    r.clone()
                } else {
                    std::env::current_dir()
                        .map_err(crate::error::io("cwd"))?
                        .join(r)
                };
                if r == std::path::Path::new("/") {
                    return Err(Error::Msg(
                        "option --root argument should not be set to /".into(),
                    ));
                }
                r
            }
            None => default_root(),
        };
        Ok(Ctx { g, root })
    }

    pub fn rootless(&self) -> bool {
        !nix::unistd::geteuid().is_root() || matches!(self.g.rootless.as_deref(), Some("true"))
    }

    /// Loads our state for `id`; a container that is not ours goes to the delegate runtime
    /// (which gets our exact argv), as does a missing one when no `--root` was given (podman
    /// passes none, and the delegate keeps its state under its own default root).
    pub fn load(&self, id: &str) -> Result<State> {
        crate::container::validate_id(id)?;
        match State::load(&self.root, id) {
            Ok(s) => Ok(s),
            Err(StateError::Foreign) => Err(crate::delegate::exec(&self.delegate_runtime()).into()),
            Err(StateError::NotExist)
                if self.g.root.is_none()
                    && crate::delegate::find(&self.delegate_runtime()).is_some() =>
            {
                Err(crate::delegate::exec(&self.delegate_runtime()).into())
            }
            Err(e) => Err(e.into()),
        }
    }

    fn delegate_runtime(&self) -> String {
        crate::config::Config::load()
            .map(|c| c.delegate.runtime)
            .unwrap_or_default()
    }
}

fn default_root() -> PathBuf {
    // runc's rule: also uid 0 inside a user namespace (rootless podman) is rootless
    if !nix::unistd::geteuid().is_root() || crate::sandbox::rootless::in_user_namespace() {
        if let Some(x) = std::env::var_os("XDG_RUNTIME_DIR").filter(|x| !x.is_empty()) {
            return PathBuf::from(x).join("urunc");
        }
    }
    PathBuf::from("/run/urunc")
}
