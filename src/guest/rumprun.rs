//! Rumprun (reference 4.2): its JSON configuration (duplicate `env` keys, so built by hand with
//! Go's escaping), on solo5 hvt/spt only; the first block device is `/dev/ld0a`.

use super::{gateway_on_link, go_json_string as js, Guest, GuestBlock, GuestSetup};
use crate::plan::MonitorKind;
use crate::plan::{GuestKind, StorageCaps};
use crate::plan::{PlanError, PlanInput};

pub struct Rumprun;

impl Guest for Rumprun {
    fn kind(&self) -> GuestKind {
        GuestKind::Rumprun
    }

    fn storage(&self) -> StorageCaps {
        StorageCaps {
            block: true,
            fs: &["ext2"],
        }
    }

    fn monitors(&self) -> &'static [MonitorKind] {
        &[MonitorKind::Hvt, MonitorKind::Spt]
    }

    fn prepare(&self, input: &PlanInput, _monitor: MonitorKind) -> Result<GuestSetup, PlanError> {
        let mut s = format!("{{\"cmdline\":{}", js(&input.app_args().join(" ")));
        for e in &input.process.env {
            s.push_str(&format!(",\"env\":{}", js(e)));
        }
        if let Some(n) = &input.net {
            // urunc always says mask 1 (128.0.0.0) so that a gateway outside the pod's subnet
            // (Calico's 169.254.1.1) is on-link; we do that only when the gateway is outside.
            let m = if gateway_on_link(n) {
                n.prefix.to_string()
            } else {
                "1".to_string()
            };
            s.push_str(&format!(
                ",\"net\":{{\"if\":\"ukvmif0\",\"cloner\":\"True\",\"type\":\"inet\",\"method\":\"static\",\"addr\":{},\"mask\":{}",
                js(&n.ip.to_string()),
                js(&m)
            ));
            if let Some(g) = n.gateway {
                s.push_str(&format!(",\"gw\":{}", js(&g.to_string())));
            }
            s.push('}');
        }
        let mut blocks = Vec::new();
        if let Some(b) = input.blocks.first() {
            // Rumprun cannot mount at `/`: a root image goes to /data, as in urunc.
            let mp = if b.mount_point == "/" {
                "/data"
            } else {
                &b.mount_point
            };
            s.push_str(&format!(
                ",\"blk\":{{\"source\":\"etfs\",\"path\":\"/dev/ld0a\",\"fstype\":\"blk\",\"mountpoint\":{}}}",
                js(mp)
            ));
            blocks.push(GuestBlock {
                id: "rootfs".into(),
                source: b.source.clone(),
                read_only: b.read_only,
                root: false,
                fd: b.fd,
            });
        }
        s.push('}');
        Ok(GuestSetup {
            cmdline: s,
            blocks,
            solo5_net: "tap",
            ..Default::default()
        })
    }
}
