//! Linux guests (placeholder: filled in by the guest-types issue; the urunit branch made it
//! boot fast under QEMU and hand urunit its configuration).

use super::{urunit_conf, Guest, GuestSetup};
use crate::plan::{Arch, PlanError, PlanInput};

pub struct Linux;

impl Guest for Linux {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn monitors(&self) -> &'static [&'static str] {
        &["qemu", "firecracker", "cloud-hypervisor"]
    }

    fn prepare(&self, input: &PlanInput) -> Result<GuestSetup, PlanError> {
        let args = &input.process.args;
        if args.is_empty() {
            return Err(PlanError::Invalid("no init was specified".into()));
        }
        let console = match (input.arch, input.unikernel.hypervisor.as_str()) {
            (Arch::Aarch64, "qemu") => "console=ttyAMA0",
            _ => "console=ttyS0",
        };
        let mut parts = vec!["panic=-1".to_string(), console.to_string()];
        // fast boot: quiet console (only emergencies and alerts), no crypto self-tests;
        // microvm needs a fixed TSC rate
        parts.extend(
            ["quiet", "loglevel=2", "cryptomgr.notests", "no_timer_check"].map(String::from),
        );
        if input.arch == Arch::X86_64 && input.unikernel.hypervisor == "qemu" {
            parts.push("tsc_early_khz=2000000".into());
        }
        let urunit = args[0].contains("urunit");
        let init_kw = if input.initrd.is_some() {
            "rdinit"
        } else {
            "init"
        };
        if urunit {
            if let Some(initrd) = &input.initrd {
                urunit_conf::append_to_initrd(initrd, &urunit_conf::render(input)).map_err(
                    |e| PlanError::Invalid(format!("write urunit.conf to the initrd: {e}")),
                )?;
                parts.push(format!("URUNIT_CONFIG={}", urunit_conf::GUEST_PATH));
            }
        } else {
            parts.extend(input.process.env.iter().cloned());
        }
        parts.push(format!("{init_kw}={}", args[0]));
        parts.push("--".into());
        let rest = urunit_conf::quote_args(&args[1..]);
        if !rest.is_empty() {
            parts.push(rest);
        }
        Ok(GuestSetup {
            cmdline: parts.join(" "),
            ..Default::default()
        })
    }
}
