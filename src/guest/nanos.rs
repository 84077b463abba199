//! Nanos (NanoVMs, images built by `ops`), two ways:
//!
//! - kernel boot (QEMU and Firecracker, what `ops` does on Firecracker): `binary` is the nanos
//!   kernel (`kernel.img`) and the `block` annotation at `/` is the ops image; the network and
//!   environment go on the kernel command line, which nanos merges into the image's manifest
//!   (`en1.ipaddr=`, `en1.netmask=`, `en1.gateway=`, `environment.K=V`);
//! - disk boot (QEMU only, what `ops run` does on QEMU): `binary` is the ops image itself,
//!   started by the firmware; the network is whatever the image's manifest says.
//!
//! The program and its arguments always come from the image's manifest (nanos has no
//! command-line syntax for its argument vector).

use super::{all_blocks, mask, Boot, Guest, GuestBlock, GuestSetup};
use crate::plan::{PlanError, PlanInput, RootfsKind};

pub struct Nanos;

impl Guest for Nanos {
    fn name(&self) -> &'static str {
        "nanos"
    }

    fn monitors(&self) -> &'static [&'static str] {
        &["qemu", "firecracker"]
    }

    fn prepare(&self, input: &PlanInput, monitor: &str) -> Result<GuestSetup, PlanError> {
        if input.rootfs_kind() != RootfsKind::Block {
            if monitor != "qemu" {
                return Err(PlanError::Invalid(format!(
                    "nanos on {monitor} needs the nanos kernel as binary and the ops image as block device at /"
                )));
            }
            return Ok(GuestSetup {
                boot: Boot::Disk,
                blocks: vec![GuestBlock {
                    id: "rootfs".into(),
                    source: input.kernel.clone(),
                    read_only: false,
                    root: true,
                    fd: None,
                }],
                ..Default::default()
            });
        }
        let mut p = Vec::new();
        if let Some(n) = &input.net {
            p.push(format!("en1.ipaddr={}", n.ip));
            p.push(format!("en1.netmask={}", mask(n.prefix)));
            if let Some(g) = n.gateway {
                p.push(format!("en1.gateway={g}"));
            }
        }
        for e in &input.process.env {
            match e.split_once('=') {
                Some((k, v)) if !k.is_empty() && !e.contains(char::is_whitespace) => {
                    p.push(format!("environment.{k}={v}"))
                }
                _ => log::warn!("nanos: environment entry {e:?} cannot go on the command line"),
            }
        }
        Ok(GuestSetup {
            cmdline: p.join(" "),
            blocks: all_blocks(input, ""),
            ..Default::default()
        })
    }
}
