//! Solo5 device names, in this order: the `com.urunc.unikernel.solo5NetDev` / `solo5BlkDev`
//! annotations (upstream urunc v0.8; `solo5BlkDev` is a comma-separated list mapped in order
//! onto the block images), then the unikernel's manifest, then the guest type's defaults.
//!
//! The tender (solo5 v0.12.1 `tenders/hvt/hvt_module_net.c`, `hvt_module_blk.c`, and the spt
//! equivalents) refuses a NAME its manifest does not declare (`Resource not declared in
//! manifest`) and, in `hvt_main.c`/`spt_main.c`, a declared device left unattached (`All
//! declared devices must be attached`); it reads NAME with `sscanf("%67[A-Za-z0-9]")`
//! (`MFT_NAME_MAX` = 67 in `include/mft_abi.h`). Those rules are checked here, at `create`.

use super::solo5_manifest::{self, DevKind};
use crate::plan::GuestSetup;
use crate::plan::{PlanError, PlanInput};
use crate::plan::{SOLO5_BLK_DEV, SOLO5_NET_DEV};

/// `MFT_NAME_MAX`: the longest device name the tender's option parser reads.
const NAME_MAX: usize = 67;

/// A device name the tender's `--net:NAME=`/`--block:NAME=` parser accepts.
pub fn valid_name(s: &str) -> bool {
    (1..=NAME_MAX).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn check(what: &str, s: &str) -> Result<String, PlanError> {
    if valid_name(s) {
        Ok(s.to_string())
    } else {
        Err(PlanError::Invalid(format!(
            "{what}: invalid solo5 device name {s:?} (1 to {NAME_MAX} letters and digits)"
        )))
    }
}

/// The names given by the annotations: (network, block list); empty when not set.
fn annotated(input: &PlanInput) -> Result<(Option<String>, Vec<String>), PlanError> {
    let uk = &input.unikernel;
    let net = match uk.solo5_net_dev.trim() {
        "" => None,
        n => Some(check(SOLO5_NET_DEV, n)?),
    };
    let mut blks = Vec::new();
    if !uk.solo5_blk_dev.trim().is_empty() {
        for n in uk.solo5_blk_dev.split(',') {
            blks.push(check(SOLO5_BLK_DEV, n.trim())?);
        }
    }
    Ok((net, blks))
}

/// Device names: (network device when the container has a network, one per block image).
pub fn names(
    input: &PlanInput,
    guest: &GuestSetup,
) -> Result<(Option<String>, Vec<String>), PlanError> {
    let (ann_net, ann_blk) = annotated(input)?;
    let manifest = match solo5_manifest::read(&input.kernel) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(PlanError::Kernel {
                path: input.kernel.display().to_string(),
                source,
            })
        }
    };
    let Some(devs) = manifest else {
        // no manifest to check against: annotations, else the guest type's names
        let net = input
            .net
            .as_ref()
            .map(|_| ann_net.unwrap_or_else(|| guest.solo5_net.to_string()));
        let blks = guest
            .blocks
            .iter()
            .enumerate()
            .map(|(i, b)| ann_blk.get(i).cloned().unwrap_or_else(|| b.id.clone()))
            .collect();
        return Ok((net, blks));
    };
    let declared = |k: DevKind| -> Result<Vec<String>, PlanError> {
        devs.iter()
            .filter(|d| d.kind == k)
            .map(|d| check("the unikernel's manifest", &d.name))
            .collect()
    };
    let (nets, blks) = (declared(DevKind::Net)?, declared(DevKind::Block)?);
    let net = net_name(input, ann_net, &nets)?;
    if blks.len() != guest.blocks.len() {
        return Err(PlanError::Invalid(format!(
            "the unikernel declares {} block device(s) ({}) but {} block image(s) are given",
            blks.len(),
            blks.join(", "),
            guest.blocks.len()
        )));
    }
    let mut names = Vec::new();
    for (i, declared) in blks.iter().enumerate() {
        let name = ann_blk.get(i).cloned().unwrap_or_else(|| declared.clone());
        if !blks.contains(&name) {
            return Err(not_declared(SOLO5_BLK_DEV, &name, "block", &blks));
        }
        names.push(name);
    }
    Ok((net, names))
}

fn net_name(
    input: &PlanInput,
    annotation: Option<String>,
    nets: &[String],
) -> Result<Option<String>, PlanError> {
    if input.net.is_none() {
        return match nets {
            [] => Ok(None),
            [one, ..] => Err(PlanError::Invalid(format!(
                "the unikernel declares network device {one:?} but the container has no network"
            ))),
        };
    }
    match (nets, annotation) {
        ([], None) => Ok(None),
        ([one], Some(a)) if *one == a => Ok(Some(a)),
        ([] | [_], Some(a)) => Err(not_declared(SOLO5_NET_DEV, &a, "network", nets)),
        ([one], None) => Ok(Some(one.clone())),
        (many, _) => Err(PlanError::Invalid(format!(
            "the unikernel declares {} network devices ({}); a container has one network",
            many.len(),
            many.join(", ")
        ))),
    }
}

fn not_declared(key: &str, name: &str, kind: &str, declared: &[String]) -> PlanError {
    PlanError::Invalid(format!(
        "{key} names {kind} device {name:?}, which the unikernel's manifest does not declare (it declares: {}); fix the annotation or leave it out",
        if declared.is_empty() {
            "none".to_string()
        } else {
            declared.join(", ")
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_tender_parser() {
        assert!(valid_name("service0"));
        assert!(valid_name(&"a".repeat(67)));
        assert!(!valid_name(&"a".repeat(68)));
        for bad in ["", "service_0", "net-1", "a b", "x=y", "é"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
