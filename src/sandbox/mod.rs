//! Confinement of the monitor and of the supervisor.
//!
//! The monitor, in the forked child, right before execve (crun's order, then Landlock and
//! seccomp as late as possible):
//!  1. open the Landlock rule paths and compile the seccomp filter, still as the caller (a
//!     non-root monitor may not be able to open the bundle's directories; compiling allocates);
//!  2. drop the bounding and ambient capability sets (needs `CAP_SETPCAP`, so before 3);
//!  3. setgroups(additionalGids + KVM group), setresgid, setresuid to `process.user`;
//!  4. clear effective, permitted and inheritable (a uid-0 monitor keeps nothing either);
//!  5. no_new_privs; 6. Landlock; then the supervisor sets PDEATHSIG (after the identity
//!     change, which clears it) and calls [`Pending::finish`]: 7. seccomp; execve.
//!
//! The supervisor, once the monitor runs, drops to the same user (without the KVM group),
//! clears every capability, becomes non-dumpable, and confines itself with a Landlock ruleset
//! that allows no file at all and the seccomp deny-list. What it gives up: removing the tap
//! when the monitor exits (`delete`, which runs as the caller, removes it; and it goes away with
//! the network namespace).

pub mod caps;
pub mod cgroups;
pub mod identity;
pub mod landlock;
pub mod limits;
pub mod namespaces;
pub mod rootless;
pub mod seccomp;
pub mod userns;

use crate::plan::{LaunchPlan, PlanInput, ProcessParams, SeccompPolicy};
use identity::Identity;
use seccomp::Filters;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        source: nix::Error,
    },
    #[error(transparent)]
    Identity(#[from] identity::IdError),
    #[error(transparent)]
    Caps(#[from] caps::CapsError),
    #[error(transparent)]
    Landlock(#[from] landlock::LandlockError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
}

fn prctl(step: &'static str, op: libc::c_int, arg: libc::c_ulong) -> Result<(), SandboxError> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(op, arg, 0, 0, 0) } != 0 {
        return Err(SandboxError::Sys {
            step,
            source: nix::Error::last(),
        });
    }
    Ok(())
}

/// What is left to do right before execve: the seccomp filter.
#[must_use = "the seccomp filter is only installed by finish()"]
pub struct Pending(Filters);

impl Pending {
    pub fn finish(self) -> Result<(), SandboxError> {
        Ok(self.0.apply()?)
    }
}

/// Runs in the forked monitor process; see the module documentation for the order.
pub fn confine_monitor(plan: &LaunchPlan, input: &PlanInput) -> Result<Pending, SandboxError> {
    let id = Identity::monitor(&input.process, plan.needs_kvm, &input.monitor_cfg.kvm_group)?;
    let ruleset = landlock::prepare(&landlock::monitor_rules(plan, input))?;
    let filters = Filters::compile(plan.seccomp)?;
    let dropped = caps::drop_bounding_and_ambient()?;
    id.apply()?;
    caps::clear_all(dropped)?;
    prctl("no_new_privs", libc::PR_SET_NO_NEW_PRIVS, 1)?;
    landlock::enforce(ruleset)?;
    Ok(Pending(filters))
}

/// Runs in the supervisor once the monitor has been executed.
pub fn confine_supervisor(p: &ProcessParams) -> Result<(), SandboxError> {
    let filters = Filters::compile(SeccompPolicy::DenyList)?;
    let dropped = caps::drop_bounding_and_ambient()?;
    Identity::supervisor(p).apply()?;
    caps::clear_all(dropped)?;
    prctl("set non-dumpable", libc::PR_SET_DUMPABLE, 0)?;
    prctl("no_new_privs", libc::PR_SET_NO_NEW_PRIVS, 1)?;
    landlock::confine_supervisor()?;
    filters.apply()?;
    Ok(())
}
