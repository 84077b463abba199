//! Unikraft (reference 4.1): `Unikraft <lib params> -- <app args>`, in the format of the
//! Unikraft version the image declares (`unikernelVersion`; `>= 0.16.1` or unknown: current).

use super::{dquote, gw, mask, Guest, GuestSetup};
use crate::plan::MonitorKind;
use crate::plan::{Arch, PlanError, PlanInput, RootfsKind};
use crate::plan::{GuestKind, StorageCaps};

pub struct Unikraft;

/// Whether `version` selects the current (`netdev.ip=`, `env.vars=`) format.
pub fn current_format(version: &str) -> bool {
    let v = version.trim().trim_start_matches('v');
    let mut parts = v.split(['.', '-', '+']).map(|p| p.parse::<u64>());
    let (Some(Ok(major)), Some(Ok(minor))) = (parts.next(), parts.next()) else {
        return true;
    };
    let patch = match parts.next() {
        Some(Ok(p)) => p,
        Some(Err(_)) if !v.is_empty() => return true,
        _ => 0,
    };
    (major, minor, patch) >= (0, 16, 1)
}

impl Guest for Unikraft {
    fn kind(&self) -> GuestKind {
        GuestKind::Unikraft
    }

    fn storage(&self) -> StorageCaps {
        StorageCaps {
            block: false,
            fs: &["9pfs"],
        }
    }

    fn monitors(&self) -> &'static [MonitorKind] {
        &[MonitorKind::Qemu, MonitorKind::Firecracker]
    }

    fn prepare(&self, input: &PlanInput, _monitor: MonitorKind) -> Result<GuestSetup, PlanError> {
        let mut p = vec!["Unikraft".to_string()];
        if input.arch == Arch::Aarch64 {
            p.push("console=ttyS0".into());
        }
        let rootfs = input.rootfs_kind();
        if current_format(&input.unikernel.version) {
            if !input.process.env.is_empty() {
                let vars: Vec<String> = input.process.env.iter().map(|e| dquote(e)).collect();
                p.push(format!("env.vars=[ {} ]", vars.join(" ")));
            }
            if let Some(n) = &input.net {
                // cidr:gateway:dns0:dns1, trailing empty fields left out
                let mut fields = vec![format!("{}/{}", n.ip, n.prefix), gw(n)];
                fields.extend(
                    n.dns
                        .iter()
                        .filter(|d| d.is_ipv4())
                        .take(2)
                        .map(|d| d.to_string()),
                );
                while fields.last().is_some_and(|f| f.is_empty()) {
                    fields.pop();
                }
                p.push(format!("netdev.ip={}", fields.join(":")));
            }
            match rootfs {
                RootfsKind::Initrd => p.push("vfs.fstab=[ \"initrd0:/:extract:::\" ]".into()),
                RootfsKind::NineP => p.push("vfs.fstab=[ \"fs0:/:9pfs:::\" ]".into()),
                _ => {}
            }
        } else {
            // Before 0.16.1: no environment parameter existed.
            if let Some(n) = &input.net {
                p.push(format!("netdev.ipv4_addr={}", n.ip));
                if let Some(g) = n.gateway {
                    p.push(format!("netdev.ipv4_gw_addr={g}"));
                }
                p.push(format!("netdev.ipv4_subnet_mask={}", mask(n.prefix)));
            }
            if rootfs == RootfsKind::Initrd {
                p.push("vfs.rootfs=initrd".into());
            }
        }
        p.push("--".into());
        p.extend(input.app_args().iter().map(|a| dquote(a)));
        Ok(GuestSetup {
            cmdline: p.join(" "),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::current_format;

    #[test]
    fn version_rule() {
        for v in [
            "",
            "junk",
            "0.16.1",
            "0.17.0",
            "v0.16.1",
            "1.0",
            "0.16.1-rc1",
        ] {
            assert!(current_format(v), "{v}");
        }
        for v in ["0.16.0", "0.15.9", "0.10", "v0.14.0"] {
            assert!(!current_format(v), "{v}");
        }
    }
}
