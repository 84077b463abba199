//! Solo5 tenders hvt and spt (v0.12.1, `tenders/hvt/hvt_main.c`, `tenders/spt/spt_main.c`):
//! `--mem=<MiB> [--net:NAME=TAP --net-mac:NAME=MAC] [--block:NAME=PATH]... <kernel> <cmdline>`,
//! the guest command line as one argument (the tender joins its arguments with spaces, so it
//! arrives unchanged). Device names: `solo5_devices`.
//!
//! The tap is given by name, never as `@FD`: since Solo5 v0.10.0 `tap_attach()`
//! (`tenders/common/tap_attach.c`) returns an inherited fd without reading the MTU, and the
//! net module then rejects it (`Could not attach interface: @N: Success`). By name the tender
//! checks that the interface is up (getifaddrs), opens `/dev/net/tun`, attaches with
//! TUNSETIFF `IFF_TAP|IFF_NO_PI`, and reads the MTU with SIOCGIFMTU: `net/` creates the tap
//! persistent, up, without `IFF_VNET_HDR` and owned by the monitor's uid/gid, and the plan
//! lists `/dev/net/tun` among its devices.

use super::caps::{Declaration, ProbeKind, Support};
use super::{base_plan, memory_mib, require_kvm, solo5_devices, Monitor, TapAccess, TapSpec};
use crate::plan::MonitorKind;
use crate::plan::{Arch, LaunchPlan, PlanError, PlanInput};
use crate::plan::{Boot, GuestSetup};
use std::path::PathBuf;

pub enum Solo5 {
    Hvt,
    Spt,
}

impl Monitor for Solo5 {
    fn kind(&self) -> MonitorKind {
        match self {
            Solo5::Hvt => MonitorKind::Hvt,
            Solo5::Spt => MonitorKind::Spt,
        }
    }

    fn binary(&self, _arch: Arch) -> &'static str {
        match self {
            Solo5::Hvt => "solo5-hvt",
            Solo5::Spt => "solo5-spt",
        }
    }

    /// solo5-hvt is Solo5's KVM tender, solo5-spt its seccomp tender that never uses KVM
    /// (Solo5's docs/building.md); 8 MiB for the tender.
    fn caps(&self) -> Declaration {
        let support = match self {
            Solo5::Hvt => (Support::KvmOnly, ProbeKind::DevKvm),
            Solo5::Spt => (Support::NoKvm, ProbeKind::None),
        };
        Declaration::new(support.0, support.1, (8, 4))
    }

    fn tap(&self) -> TapSpec {
        TapSpec {
            access: TapAccess::Name,
            vnet_hdr: false,
        }
    }

    fn plan(&self, input: &PlanInput, guest: &GuestSetup) -> Result<LaunchPlan, PlanError> {
        let name = self.name();
        if matches!(self, Solo5::Hvt) {
            require_kvm(input, name)?;
        }
        if guest.boot != Boot::Kernel || input.initrd.is_some() || input.shared_fs.is_some() {
            return Err(PlanError::Invalid(format!(
                "{name} takes a unikernel and block images only (no initrd, no shared filesystem)"
            )));
        }
        let mib = memory_mib(input, name)?;
        let (net_name, blk_names) = solo5_devices::names(input, guest)?;
        let mut a = vec![
            input.monitor_path.display().to_string(),
            format!("--mem={mib}"),
        ];
        if let (Some(n), Some(dev)) = (&input.net, net_name) {
            if n.tap_fd.is_some() {
                return Err(PlanError::Invalid(format!(
                    "{name} attaches its tap by name (--net:NAME=@FD fails since Solo5 v0.10.0), but tap {} was set up as an fd; this is a bug in urunc",
                    n.tap
                )));
            }
            a.push(format!("--net:{dev}={}", n.tap));
            a.push(format!("--net-mac:{dev}={}", n.mac));
        }
        for (b, dev) in guest.blocks.iter().zip(blk_names) {
            // the tender reads PATH with sscanf("%4096s") (`hvt_module_blk.c`): one word
            let path = b.source.display().to_string();
            if path.chars().any(char::is_whitespace) || path.len() > 4096 {
                return Err(PlanError::Invalid(format!(
                    "{name} cannot attach block image {path:?}: the tender takes a path without white space of at most 4096 bytes"
                )));
            }
            a.push(format!("--block:{dev}={path}"));
        }
        a.extend(guest.extra_args.iter().cloned());
        a.push(input.kernel.display().to_string());
        if !guest.cmdline.is_empty() {
            a.push(guest.cmdline.clone());
        }
        let (mut plan, _) = base_plan(input, guest, a);
        if matches!(self, Solo5::Hvt) {
            plan.devices.push(PathBuf::from("/dev/kvm"));
            plan.needs_kvm = true;
            // urunc's tight allow-list for the hvt tender (reference 5.7)
            if input.seccomp {
                plan.seccomp = crate::plan::SeccompPolicy::Solo5Hvt;
            }
        }
        Ok(plan)
    }
}
