//! Confinement of the monitor and of the supervisor.
//!
//! The monitor, in the forked child, right before execve (crun's order, then Landlock and
//! seccomp as late as possible):
//!  0. its filesystem view (`view`, `pivot`): a private mount namespace and a fresh tmpfs
//!     root holding only what its Landlock allowances name, device nodes of its own; for a
//!     uid-0 container, a user namespace of its own mapping 0 to a leased unprivileged host uid
//!     (`monitor_ns`), with the view's binds idmapped through it (`idmap`);
//!  1. open the Landlock rule paths (view paths now) and compile the seccomp filter, still as
//!     the caller (a non-root monitor may not be able to open the bundle's directories), then
//!     enter that user namespace;
//!  2. drop the bounding and ambient capability sets (needs `CAP_SETPCAP`, so before 3);
//!  3. setgroups(additionalGids + KVM group), setresgid, setresuid to `process.user` (in the
//!     monitor's user namespace: 0, 0 and the additionalGids it maps, `kept_groups`);
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
pub mod idmap;
pub mod landlock;
pub mod limits;
pub mod monitor_ns;
pub mod namespaces;
pub mod pivot;
pub mod rootless;
pub mod seccomp;
pub mod userns;
pub mod view;

use crate::config::SandboxConfig;
use crate::plan::{LaunchPlan, PlanInput, ProcessParams, SeccompPolicy};
use identity::Identity;
pub use seccomp::Filters;
use std::path::Path;
use view::View;

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
    #[error(transparent)]
    View(#[from] view::ViewError),
    #[error(transparent)]
    Pivot(#[from] pivot::PivotError),
    #[error(transparent)]
    MonitorNs(#[from] monitor_ns::MonitorNsError),
    #[error("cannot give tap {name} back to the monitor's uid after it kept uid 0: {source}")]
    TapOwner {
        name: String,
        source: std::io::Error,
    },
    #[error("{0} is not available on this kernel, so the monitor would run less confined than documented; use a kernel with it, or set allow_unconfined = true under [sandbox] in the urunc config to run without it")]
    Unavailable(&'static str),
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
/// The monitor's filter: the supervisor's, or one compiled for its plan.
pub enum Pending<'a> {
    Shared(&'a Filters),
    Own(Filters),
}

impl Pending<'_> {
    pub fn finish(self) -> Result<(), SandboxError> {
        match self {
            Pending::Shared(f) => f.apply()?,
            Pending::Own(f) => f.apply()?,
        }
        Ok(())
    }
}

/// The supervisor's filter (the deny list), compiled once before the monitor is forked: the
/// monitor installs the same one when its plan asks for the deny list, and the supervisor
/// installs it after the monitor's execve.
pub fn supervisor_filters() -> Result<Filters, SandboxError> {
    Ok(Filters::compile(SeccompPolicy::DenyList)?)
}

/// The plan as the monitor must see it: host paths in its argv and generated files replaced
/// by their paths inside its view (see `view`). Applied once, right after the plan is built.
pub fn plan_for_view(mut plan: LaunchPlan, rootfs: &Path) -> LaunchPlan {
    plan.argv = plan.argv.iter().map(|a| View::rewrite(rootfs, a)).collect();
    for f in &mut plan.files {
        if let Ok(text) = std::str::from_utf8(&f.contents) {
            f.contents = View::rewrite(rootfs, text).into_bytes();
        }
    }
    plan
}

/// The kernel layers `create` requires (no silent downgrade): Landlock, and seccomp when the
/// spec asks for a filter, unless `[sandbox] allow_unconfined` is set.
pub fn check_available(cfg: &SandboxConfig, seccomp: SeccompPolicy) -> Result<(), SandboxError> {
    require(cfg, landlock::abi() > 0, seccomp_available(), seccomp)
}

fn require(
    cfg: &SandboxConfig,
    landlock: bool,
    seccomp: bool,
    policy: SeccompPolicy,
) -> Result<(), SandboxError> {
    if cfg.allow_unconfined {
        return Ok(());
    }
    if !landlock {
        return Err(SandboxError::Unavailable("Landlock"));
    }
    if !seccomp && policy != SeccompPolicy::Off {
        return Err(SandboxError::Unavailable("seccomp"));
    }
    Ok(())
}

fn seccomp_available() -> bool {
    // SAFETY: prctl with integer arguments only; EINVAL when the kernel lacks seccomp.
    unsafe { libc::prctl(libc::PR_GET_SECCOMP, 0, 0, 0, 0) >= 0 }
}

fn is_char_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_char_device())
}

/// Runs in the forked monitor process; see the module documentation for the order.
/// `state_dir` is the container's state directory (the view's mount point); `host_uid`, when
/// set, the host uid leased for the monitor's own user namespace (`monitor_ns`).
pub fn confine_monitor<'a>(
    plan: &LaunchPlan,
    input: &PlanInput,
    state_dir: &Path,
    cfg: &SandboxConfig,
    host_uid: Option<u32>,
    deny_list: &'a Filters,
) -> Result<Pending<'a>, SandboxError> {
    let mut id = Identity::monitor(&input.process, plan.needs_kvm, &input.monitor_cfg.kvm_group)?;
    let allows = landlock::monitor_rules(plan);
    let view = View::layout(&input.rootfs, &allows, is_char_device)?;
    let filters = match plan.seccomp {
        SeccompPolicy::DenyList => Pending::Shared(deny_list),
        other => Pending::Own(Filters::compile(other)?),
    };
    let groups = match host_uid {
        Some(_) => monitor_ns::kept_groups(
            &input.process.additional_gids,
            cfg.monitor_uid_start,
            cfg.monitor_uid_count,
        )?,
        None => Vec::new(),
    };
    let userns = host_uid
        .map(|h| monitor_ns::create(h, &groups))
        .transpose()?;
    let owners = (
        host_uid.map_or((id.uid, id.gid), |h| (h, h)),
        (id.uid, id.gid),
    );
    let in_ns = pivot::mount_view(&view, state_dir, owners, userns.as_ref())?;
    if host_uid.is_some() && !in_ns {
        // `net::setup` made a by-name tap the leased uid's; the monitor keeps its own
        reown_tap(plan, input, (id.uid, id.gid))?;
    }
    let in_view: Vec<landlock::Allow> = allows
        .into_iter()
        .map(|mut a| {
            a.path = View::map(&input.rootfs, &a.path);
            a
        })
        .collect();
    let ruleset = landlock::prepare(&in_view)?;
    if let Some(ns) = userns.as_ref().filter(|_| in_ns) {
        monitor_ns::enter(ns)?;
        // uid and gid 0 inside are the leased host ids; its supplementary groups are the
        // container's mapped ones (`kept_groups`), without the KVM group: its device nodes
        // are its own
        id = Identity {
            uid: 0,
            gid: 0,
            groups,
        };
    }
    let dropped = caps::drop_bounding_and_ambient()?;
    id.apply()?;
    caps::clear_all(dropped)?;
    prctl("no_new_privs", libc::PR_SET_NO_NEW_PRIVS, 1)?;
    let status = landlock::enforce(ruleset)?;
    if status == ::landlock::RulesetStatus::NotEnforced && !cfg.allow_unconfined {
        return Err(SandboxError::Unavailable("Landlock"));
    }
    Ok(filters)
}

/// Gives the tap a by-name monitor attaches to (`/dev/net/tun` among its devices: the view's
/// node, in the monitor's process still holding its capabilities) to `owner`.
fn reown_tap(plan: &LaunchPlan, input: &PlanInput, owner: (u32, u32)) -> Result<(), SandboxError> {
    let by_name = plan.devices.iter().any(|d| d == Path::new("/dev/net/tun"));
    let Some(net) = input.net.as_ref().filter(|_| by_name) else {
        return Ok(());
    };
    let vnet_hdr = crate::monitor::tap_spec(&input.unikernel.hypervisor).is_ok_and(|s| s.vnet_hdr);
    crate::sys::tun::set_owner(&net.tap, vnet_hdr, owner.0, owner.1).map_err(|source| {
        SandboxError::TapOwner {
            name: net.tap.clone(),
            source,
        }
    })
}

/// The host uid for the monitor's own user namespace, when it gets one: the container's user
/// is 0 and urunc runs in the initial user namespace (rootless runtimes and containers with a
/// user namespace already run as unprivileged host ids), unless `monitor_uid_count` is 0.
/// Taken by the supervisor before the network exists: a monitor that opens its tap by name
/// (`/dev/net/tun` among its devices) needs the tap created owned by this uid (`net::setup`).
/// `key` is the container's state directory, where the lease is recorded for `delete`.
pub fn monitor_host_uid(
    p: &ProcessParams,
    cfg: &SandboxConfig,
    key: &str,
) -> Result<Option<u32>, SandboxError> {
    if p.uid != 0 || cfg.monitor_uid_count == 0 || !monitor_ns::in_initial_userns() {
        return Ok(None);
    }
    Ok(Some(monitor_ns::lease(
        cfg.monitor_uid_start,
        cfg.monitor_uid_count,
        key,
        &cfg.monitor_uid_registry,
    )?))
}

/// Runs in the supervisor once the monitor has been executed; `filters` from
/// [`supervisor_filters`].
pub fn confine_supervisor(p: &ProcessParams, filters: &Filters) -> Result<(), SandboxError> {
    let dropped = caps::drop_bounding_and_ambient()?;
    Identity::supervisor(p).apply()?;
    caps::clear_all(dropped)?;
    prctl("set non-dumpable", libc::PR_SET_DUMPABLE, 0)?;
    prctl("no_new_privs", libc::PR_SET_NO_NEW_PRIVS, 1)?;
    landlock::confine_supervisor()?;
    filters.apply()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_layer_fails_unless_the_operator_opted_out() {
        let strict = SandboxConfig::default();
        let lax = SandboxConfig {
            allow_unconfined: true,
            ..Default::default()
        };
        let deny = SeccompPolicy::DenyList;
        assert!(require(&strict, true, true, deny).is_ok());
        let e = require(&strict, false, true, deny).unwrap_err().to_string();
        assert!(
            e.contains("Landlock") && e.contains("allow_unconfined"),
            "{e}"
        );
        let e = require(&strict, true, false, deny).unwrap_err().to_string();
        assert!(e.contains("seccomp"), "{e}");
        // a spec without linux.seccomp asks for no filter: nothing is missing
        assert!(require(&strict, true, false, SeccompPolicy::Off).is_ok());
        assert!(require(&lax, false, false, deny).is_ok());
        // this kernel has both (the test machine's 6.x)
        assert!(check_available(&strict, deny).is_ok());
    }

    #[test]
    fn argv_and_generated_files_name_view_paths() {
        let plan = LaunchPlan {
            program: "/usr/bin/qemu-system-x86_64".into(),
            argv: vec![
                "qemu".into(),
                "-kernel".into(),
                "/b/rootfs/unikernel/k".into(),
            ],
            env: vec![],
            read_paths: vec!["/b/rootfs/unikernel/k".into()],
            data_dirs: vec![],
            exec_paths: vec![],
            write_paths: vec![],
            devices: vec![],
            files: vec![crate::plan::GeneratedFile {
                path: "/s/work/fc.json".into(),
                contents: br#"{"kernel_image_path":"/b/rootfs/unikernel/k"}"#.to_vec(),
            }],
            keep_fds: vec![],
            shutdown: crate::plan::Shutdown::Signal,
            needs_kvm: false,
            seccomp: SeccompPolicy::DenyList,
            guest_cmdline: String::new(),
            initrd_build: None,
            debug_exit: false,
            dhcp: false,
        };
        let p = plan_for_view(plan, Path::new("/b/rootfs"));
        assert_eq!(p.argv, ["qemu", "-kernel", "/unikernel/k"]);
        assert_eq!(
            p.files[0].contents,
            br#"{"kernel_image_path":"/unikernel/k"}"#
        );
        // the lists the view is built from stay host paths, and so does where files go
        assert_eq!(p.read_paths, [Path::new("/b/rootfs/unikernel/k")]);
        assert_eq!(p.files[0].path, Path::new("/s/work/fc.json"));
    }
}
