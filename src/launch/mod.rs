//! One launch plan from its input: the guest type describes the guest (`guest`), the monitor
//! turns that into its argv (`monitor`); the two meet only through the vocabulary of `plan`.

use crate::guest::Guest;
use crate::monitor::Monitor;
use crate::plan::{LaunchPlan, PlanError, PlanInput};

/// Builds the plan: the guest type gives its command line and devices, the monitor the argv.
pub fn build(input: &PlanInput) -> Result<LaunchPlan, PlanError> {
    let guest = crate::guest::lookup(&input.unikernel.unikernel_type)?;
    let monitor = crate::monitor::lookup(&input.unikernel.hypervisor)?;
    compatible(&*guest, &*monitor)?;
    let g = guest.prepare(input, monitor.kind())?;
    monitor.plan(input, &g)
}

/// The guest type boots on the monitor, or the error says on which ones it does.
pub fn compatible(guest: &dyn Guest, monitor: &dyn Monitor) -> Result<(), PlanError> {
    if guest.monitors().contains(&monitor.kind()) {
        return Ok(());
    }
    let supported: Vec<&str> = guest.monitors().iter().map(|k| k.name()).collect();
    Err(PlanError::Unsupported {
        guest: guest.name().into(),
        monitor: monitor.name().into(),
        supported: supported.join(", "),
    })
}

#[cfg(test)]
mod golden_qemu;
#[cfg(test)]
mod golden_qemu_arm;
#[cfg(test)]
mod golden_qemu_nanos;
#[cfg(test)]
mod golden_solo5;
#[cfg(test)]
mod golden_vmm;
#[cfg(test)]
mod qemu_validate;
