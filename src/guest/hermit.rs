//! Hermit (RustyHermit, reference 4.5): `ip=IP/PREFIX gateway=GW -- <args>` on QEMU; the
//! kernel splits its command line shell-style, so arguments with spaces are single-quoted.

use super::{ip_gateway, squote, Guest, GuestSetup};
use crate::plan::GuestKind;
use crate::plan::MonitorKind;
use crate::plan::{PlanError, PlanInput};

pub struct Hermit;

impl Guest for Hermit {
    fn kind(&self) -> GuestKind {
        GuestKind::Hermit
    }

    fn monitors(&self) -> &'static [MonitorKind] {
        &[MonitorKind::Qemu]
    }

    fn prepare(&self, input: &PlanInput, _monitor: MonitorKind) -> Result<GuestSetup, PlanError> {
        let mut p = ip_gateway(input);
        let args = input.app_args();
        if !args.is_empty() {
            // Hermit hands the application only what follows `--`.
            p.push("--".into());
            p.extend(args.iter().map(|a| squote(a)));
        }
        Ok(GuestSetup {
            cmdline: p.join(" "),
            nic_options: vec!["disable-legacy=on"],
            extra_args: vec!["-no-reboot".into()],
            ..Default::default()
        })
    }
}
