//! Linux guests (placeholder: filled in by the guest-types issue).

use super::{Guest, GuestSetup};
use crate::plan::{PlanError, PlanInput};

pub struct Linux;

impl Guest for Linux {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn monitors(&self) -> &'static [&'static str] {
        &["qemu", "firecracker", "cloud-hypervisor"]
    }

    fn prepare(&self, input: &PlanInput) -> Result<GuestSetup, PlanError> {
        let mut parts = vec!["panic=-1".to_string(), "console=ttyS0".to_string()];
        if input.process.args.is_empty() {
            return Err(PlanError::Invalid("no init was specified".into()));
        }
        parts.push(format!("init={}", input.process.args[0]));
        parts.push("--".into());
        parts.extend(input.process.args[1..].iter().cloned());
        Ok(GuestSetup {
            cmdline: parts.join(" "),
            ..Default::default()
        })
    }
}
