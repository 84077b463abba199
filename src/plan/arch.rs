//! The guest's architecture: the host's, or a foreign one emulated (the arch annotation).

use super::PlanError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Arch {
    X86_64,
    Aarch64,
}

impl Arch {
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }

    /// `x86_64`/`amd64` or `aarch64`/`arm64` (the `com.urunc.unikernel.arch` annotation).
    pub fn parse(s: &str) -> Option<Arch> {
        match s {
            "x86_64" | "amd64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

/// Annotation asking for a guest architecture other than the host's (ours): QEMU only, and
/// only under TCG (emulation), e.g. an aarch64 guest on an x86_64 host.
pub const ARCH_ANNOTATION: &str = "com.urunc.unikernel.arch";

/// The guest's architecture: the host's unless `ARCH_ANNOTATION` asks otherwise; a foreign one
/// only on a monitor that `emulates` (QEMU's TCG), and never with KVM (`accel`: the
/// annotation's or configured choice, may be "").
pub fn guest_arch(
    annotation: Option<&str>,
    (monitor, emulates): (&str, bool),
    accel: &str,
) -> Result<Arch, PlanError> {
    let host = Arch::host();
    let arch = match annotation.unwrap_or("") {
        "" => return Ok(host),
        a => Arch::parse(a).ok_or_else(|| {
            PlanError::Invalid(format!(
                "{ARCH_ANNOTATION}={a:?}: expected x86_64 (amd64) or aarch64 (arm64)"
            ))
        })?,
    };
    if arch == host {
        return Ok(arch);
    }
    if !emulates {
        return Err(PlanError::Invalid(format!(
            "a {arch:?} guest on a {host:?} host needs emulation: only the qemu monitor (TCG) can run it, not {monitor}"
        )));
    }
    if accel == "kvm" {
        return Err(PlanError::Invalid(format!(
            "a {arch:?} guest on a {host:?} host cannot use KVM: set accel to tcg"
        )));
    }
    Ok(arch)
}
