//! Confinement of the monitor and the supervisor: identity, capabilities, no_new_privs,
//! Landlock, seccomp (the monitor-sandbox issue deepens this), cgroups and namespaces.

pub mod cgroups;
pub mod namespaces;

use crate::plan::{LaunchPlan, ProcessParams};

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        source: nix::Error,
    },
}

/// Runs in the forked monitor process just before execve.
pub fn confine_monitor(_plan: &LaunchPlan, p: &ProcessParams) -> Result<(), SandboxError> {
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    let groups: Vec<Gid> = p
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    setgroups(&groups).map_err(|source| SandboxError::Sys {
        step: "setgroups",
        source,
    })?;
    let g = Gid::from_raw(p.gid);
    setresgid(g, g, g).map_err(|source| SandboxError::Sys {
        step: "setresgid",
        source,
    })?;
    let u = Uid::from_raw(p.uid);
    setresuid(u, u, u).map_err(|source| SandboxError::Sys {
        step: "setresuid",
        source,
    })?;
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(SandboxError::Sys {
            step: "no_new_privs",
            source: nix::Error::last(),
        });
    }
    Ok(())
}
