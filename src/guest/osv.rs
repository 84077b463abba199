//! OSv: the loader's command line (`--ip=eth0,IP,MASK --defaultgw=GW --nameserver=DNS
//! --env=K=V ... <program> <args>`); `binary` is OSv's kernel (`loader-stripped.elf` or
//! `kernel.elf`), the `block` annotation at `/` its disk image (`usr.img`), both on QEMU and
//! Firecracker.

use super::{all_blocks, dquote, mask, Guest, GuestSetup};
use crate::plan::MonitorKind;
use crate::plan::{GuestKind, StorageCaps};
use crate::plan::{PlanError, PlanInput};

pub struct Osv;

impl Guest for Osv {
    fn kind(&self) -> GuestKind {
        GuestKind::Osv
    }

    fn storage(&self) -> StorageCaps {
        StorageCaps {
            block: true,
            fs: &[],
        }
    }

    fn monitors(&self) -> &'static [MonitorKind] {
        &[MonitorKind::Qemu, MonitorKind::Firecracker]
    }

    fn prepare(&self, input: &PlanInput, _monitor: MonitorKind) -> Result<GuestSetup, PlanError> {
        let mut p = Vec::new();
        if let Some(n) = &input.net {
            p.push(format!("--ip=eth0,{},{}", n.ip, mask(n.prefix)));
            if let Some(g) = n.gateway {
                p.push(format!("--defaultgw={g}"));
            }
            if let Some(d) = n.dns.iter().find(|d| d.is_ipv4()) {
                p.push(format!("--nameserver={d}"));
            }
        }
        for e in &input.process.env {
            p.push(dquote(&format!("--env={e}")));
        }
        p.extend(input.app_args().iter().map(|a| dquote(a)));
        Ok(GuestSetup {
            cmdline: p.join(" "),
            blocks: all_blocks(input, ""),
            ..Default::default()
        })
    }
}
