//! Mewz (reference 4.4): `ip=IP/PREFIX gateway=GW` or nothing (the WASM application is linked
//! into the kernel, so the container's args are not passed), on QEMU with a modern-only
//! virtio NIC and the debug-exit device it powers off through.

use super::{ip_gateway, Guest, GuestSetup};
use crate::plan::GuestKind;
use crate::plan::MonitorKind;
use crate::plan::{PlanError, PlanInput};

pub struct Mewz;

impl Guest for Mewz {
    fn kind(&self) -> GuestKind {
        GuestKind::Mewz
    }

    fn monitors(&self) -> &'static [MonitorKind] {
        &[MonitorKind::Qemu]
    }

    fn prepare(&self, input: &PlanInput, _monitor: MonitorKind) -> Result<GuestSetup, PlanError> {
        let p = ip_gateway(input);
        Ok(GuestSetup {
            cmdline: p.join(" "),
            nic_options: vec!["disable-legacy=on", "disable-modern=off"],
            extra_args: vec!["-no-reboot".into()],
            debug_exit: true,
            ..Default::default()
        })
    }
}
