//! Solo5 tenders hvt and spt (reference 5.7): `--mem=<MiB> [--net:NAME=@FD
//! --net-mac:NAME=MAC] [--block:NAME=PATH]... <kernel> <cmdline>`, the guest command line as
//! one argument (the tender joins its arguments with spaces, so it arrives unchanged). Device
//! names come from the unikernel's manifest, else from the guest type (urunc's names).

use super::solo5_manifest::{self, DevKind};
use super::{base_plan, memory_mib, require_kvm, Monitor};
use crate::guest::{Boot, GuestSetup};
use crate::plan::{Arch, LaunchPlan, PlanError, PlanInput};
use std::path::PathBuf;

pub enum Solo5 {
    Hvt,
    Spt,
}

/// Device names: (network device, block devices), from the manifest when there is one.
fn device_names(
    input: &PlanInput,
    guest: &GuestSetup,
) -> Result<(Option<String>, Vec<String>), PlanError> {
    let fallback_net = || input.net.as_ref().map(|_| guest.solo5_net.to_string());
    let fallback_blk = || guest.blocks.iter().map(|b| b.id.clone()).collect();
    let devs = match solo5_manifest::read(&input.kernel) {
        Ok(Some(d)) => d,
        Ok(None) => return Ok((fallback_net(), fallback_blk())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok((fallback_net(), fallback_blk()))
        }
        Err(source) => {
            return Err(PlanError::Kernel {
                path: input.kernel.display().to_string(),
                source,
            })
        }
    };
    let of = |k: DevKind| -> Vec<String> {
        devs.iter()
            .filter(|d| d.kind == k)
            .map(|d| d.name.clone())
            .collect()
    };
    let (nets, blks) = (of(DevKind::Net), of(DevKind::Block));
    let net = match (nets.as_slice(), &input.net) {
        ([], _) => None,
        ([one], Some(_)) => Some(one.clone()),
        ([one], None) => {
            return Err(PlanError::Invalid(format!(
                "the unikernel declares network device {one:?} but the container has no network"
            )))
        }
        (many, _) => {
            return Err(PlanError::Invalid(format!(
                "the unikernel declares {} network devices ({}); a container has one network",
                many.len(),
                many.join(", ")
            )))
        }
    };
    if blks.len() != guest.blocks.len() {
        return Err(PlanError::Invalid(format!(
            "the unikernel declares {} block device(s) ({}) but {} block image(s) are given",
            blks.len(),
            blks.join(", "),
            guest.blocks.len()
        )));
    }
    Ok((net, blks))
}

impl Monitor for Solo5 {
    fn name(&self) -> &'static str {
        match self {
            Solo5::Hvt => "hvt",
            Solo5::Spt => "spt",
        }
    }

    fn binary(&self, _arch: Arch) -> &'static str {
        match self {
            Solo5::Hvt => "solo5-hvt",
            Solo5::Spt => "solo5-spt",
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
        let (net_name, blk_names) = device_names(input, guest)?;
        let mut a = vec![
            input.monitor_path.display().to_string(),
            format!("--mem={mib}"),
        ];
        if let (Some(n), Some(dev)) = (&input.net, net_name) {
            let target = match n.tap_fd {
                Some(fd) => format!("@{fd}"),
                None => n.tap.clone(),
            };
            a.push(format!("--net:{dev}={target}"));
            a.push(format!("--net-mac:{dev}={}", n.mac));
        }
        for (b, dev) in guest.blocks.iter().zip(blk_names) {
            a.push(format!("--block:{dev}={}", b.source.display()));
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
