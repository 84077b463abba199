//! MirageOS on solo5 (reference 4.3): `--ipv4=IP/PREFIX --ipv4-gateway=GW <args>`; hvt and spt
//! name the devices `service` and `storage` (unless the manifest says otherwise), QEMU gets the
//! default virtio NIC and no block device.

use super::{dquote, Guest, GuestBlock, GuestSetup};
use crate::plan::MonitorKind;
use crate::plan::{GuestKind, StorageCaps};
use crate::plan::{PlanError, PlanInput};

pub struct Mirage;

impl Guest for Mirage {
    fn kind(&self) -> GuestKind {
        GuestKind::Mirage
    }

    fn storage(&self) -> StorageCaps {
        StorageCaps {
            block: true,
            fs: &[],
        }
    }

    fn monitors(&self) -> &'static [MonitorKind] {
        &[MonitorKind::Hvt, MonitorKind::Spt, MonitorKind::Qemu]
    }

    fn prepare(&self, input: &PlanInput, monitor: MonitorKind) -> Result<GuestSetup, PlanError> {
        let mut p = Vec::new();
        if let Some(n) = &input.net {
            p.push(format!("--ipv4={}/{}", n.ip, n.prefix));
            if let Some(g) = n.gateway {
                p.push(format!("--ipv4-gateway={g}"));
            }
        }
        p.extend(input.app_args().iter().map(|a| dquote(a)));
        let blocks = match (monitor, input.blocks.first()) {
            (MonitorKind::Hvt | MonitorKind::Spt, Some(b)) => vec![GuestBlock {
                id: "storage".into(),
                source: b.source.clone(),
                read_only: b.read_only,
                root: false,
                fd: b.fd,
            }],
            _ => Vec::new(),
        };
        Ok(GuestSetup {
            cmdline: p.join(" "),
            blocks,
            solo5_net: "service",
            ..Default::default()
        })
    }
}
