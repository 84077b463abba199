//! The acceleration choice: KVM when it really runs *this monitor's* guests, else TCG where the
//! monitor can emulate (QEMU only). On nested-virtualisation hosts `/dev/kvm` opens and even
//! runs a trivial guest, yet QEMU aborts on it (`failed to set MSR 0x10a`) while solo5-hvt runs
//! fine, so the verdict belongs to the monitor binary: each monitor declares (as data, in `monitor::caps`)
//! whether it can emulate and how its KVM is probed (`monitor::caps`). A probe boots a guest of a few bytes that
//! urunc writes itself and checks what it did (an exit status, port writes). For QEMU, which
//! has an alternative, KVM must also not crawl: the same boot under TCG, run right after, is
//! the yardstick (a ratio, not an absolute threshold, so load slows both alike). Verdicts are
//! cached under the runtime root, keyed by the binary and the boot id.

pub mod cache;
pub mod child;
pub mod devkvm;
pub mod probe;

use crate::plan::{Accel, Arch, GuestKind};
use std::path::Path;

pub use crate::monitor::caps::{declaration, Declaration, ProbeKind, Support};

#[derive(Debug, thiserror::Error)]
pub enum AccelError {
    #[error("{monitor} needs KVM, but KVM cannot run its guests on this host: {reason}; use a monitor that can emulate (qemu), or run on a host whose /dev/kvm works")]
    KvmUnusable { monitor: String, reason: String },
    #[error("{monitor} needs KVM, but accel \"tcg\" was requested (annotation com.urunc.unikernel.accel or [monitors.{monitor}] accel): drop it or pick qemu")]
    TcgRequested { monitor: String },
    #[error(
        "unknown accel {0:?}: use \"kvm\", \"tcg\" or leave it empty for the automatic choice"
    )]
    Unknown(String),
}

/// Whether KVM runs a monitor's guests, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub kvm: bool,
    pub reason: String,
}

/// The choice `create` makes, and why (for the log and `urunc check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub accel: Accel,
    pub reason: String,
}

/// What the choice depends on.
pub struct Request<'a> {
    pub monitor: &'a str,
    pub binary: &'a Path,
    /// The annotation's or configured accel: "", "kvm" or "tcg".
    pub requested: &'a str,
    pub arch: Arch,
    /// Where verdicts are cached (the runtime root); None probes every time.
    pub cache_root: Option<&'a Path>,
}

/// Picks the accelerator for a container and logs the choice with its reason.
pub fn choose(req: &Request) -> Result<Choice, AccelError> {
    let d = declaration(req.monitor);
    let choice = decide(req, d, || verdict(req.monitor, req.binary, req.cache_root))?;
    log::info!(
        "accel for {}: {}: {}",
        req.monitor,
        match choice.accel {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        },
        choice.reason
    );
    Ok(choice)
}

/// The rule, with the verdict supplied lazily (only the automatic choice probes).
pub fn decide(
    req: &Request,
    d: Declaration,
    verdict: impl FnOnce() -> Verdict,
) -> Result<Choice, AccelError> {
    let pick = |accel, reason: &str| {
        Ok(Choice {
            accel,
            reason: reason.to_string(),
        })
    };
    if d.support == Support::NoKvm {
        return pick(Accel::Tcg, "this monitor does not use KVM");
    }
    if req.arch != Arch::host() {
        return pick(Accel::Tcg, "a foreign-architecture guest is emulated");
    }
    match req.requested {
        "tcg" if d.support == Support::KvmOnly => Err(AccelError::TcgRequested {
            monitor: req.monitor.into(),
        }),
        "tcg" => pick(Accel::Tcg, "requested (accel = \"tcg\")"),
        "kvm" => pick(Accel::Kvm, "requested (accel = \"kvm\"), not probed"),
        "" => {
            let v = verdict();
            match (v.kvm, d.support) {
                (true, _) => pick(Accel::Kvm, &v.reason),
                (false, Support::Emulates) => pick(
                    Accel::Tcg,
                    &format!("KVM cannot run this monitor's guests here: {}", v.reason),
                ),
                (false, _) => Err(AccelError::KvmUnusable {
                    monitor: req.monitor.into(),
                    reason: v.reason,
                }),
            }
        }
        other => Err(AccelError::Unknown(other.into())),
    }
}

/// The KVM verdict for a monitor binary: cached when the cache holds one for this binary and
/// this boot, else probed (and cached unless the probe only timed out).
pub fn verdict(monitor: &str, binary: &Path, cache_root: Option<&Path>) -> Verdict {
    let d = declaration(monitor);
    let subject = match d.probe {
        ProbeKind::QemuBoot => binary,
        _ => Path::new("/dev/kvm"),
    };
    let key = cache_root.and_then(|_| cache::Key::new(monitor, subject).ok());
    if let (Some(root), Some(key)) = (cache_root, &key) {
        if let Some(v) = cache::load(root, key) {
            log::debug!("accel: cached KVM verdict for {}: {v:?}", subject.display());
            return v;
        }
    }
    let (v, keep) = match d.probe {
        ProbeKind::QemuBoot => probe::qemu_kvm(binary, Arch::host()),
        ProbeKind::DevKvm => probe::dev_kvm(),
        ProbeKind::None => (
            Verdict {
                kvm: false,
                reason: "this monitor does not use KVM".into(),
            },
            false,
        ),
    };
    if let (Some(root), Some(key), true) = (cache_root, &key, keep) {
        if let Err(e) = cache::store(root, key, &v) {
            log::warn!("accel: cannot cache the KVM verdict for {monitor}: {e}");
        }
    }
    v
}

/// Under TCG, Unikraft 0.17 and later built with their default random-number library halt at
/// boot (`[libukrandom] Could not initialize the HWRNG (-95)`): TCG offers no RDSEED
/// (reference/real-guests.md).
pub fn tcg_warning(guest: &str, accel: Accel) -> Option<String> {
    (accel == Accel::Tcg && GuestKind::from_name(guest) == Some(GuestKind::Unikraft)).then(|| {
        "this Unikraft guest runs under TCG: Unikraft 0.17 and later built with the default random-number library (libukrandom) halt at boot without RDSEED; build it without that library or run on a host with KVM".to_string()
    })
}

#[cfg(test)]
mod tests;
