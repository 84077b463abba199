//! The monitors and guest types, and their names: the one place a name is spelled (besides
//! config parsing): the vocabulary guests use to say which monitors they boot on, and how,
//! and the rest of urunc to name a guest type without comparing strings.

/// A virtual machine monitor urunc drives (its capabilities: `monitor::caps`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MonitorKind {
    Qemu,
    Firecracker,
    CloudHypervisor,
    /// solo5-hvt, Solo5's KVM tender.
    Hvt,
    /// solo5-spt, Solo5's seccomp tender.
    Spt,
}

impl MonitorKind {
    pub const ALL: [MonitorKind; 5] = [
        MonitorKind::Qemu,
        MonitorKind::Firecracker,
        MonitorKind::CloudHypervisor,
        MonitorKind::Hvt,
        MonitorKind::Spt,
    ];

    /// Every name, in the order of `ALL`.
    pub const NAMES: [&'static str; 5] = {
        let k = MonitorKind::ALL;
        [
            k[0].name(),
            k[1].name(),
            k[2].name(),
            k[3].name(),
            k[4].name(),
        ]
    };

    /// The name in annotations, config.toml sections and messages.
    pub const fn name(self) -> &'static str {
        match self {
            MonitorKind::Qemu => "qemu",
            MonitorKind::Firecracker => "firecracker",
            MonitorKind::CloudHypervisor => "cloud-hypervisor",
            MonitorKind::Hvt => "hvt",
            MonitorKind::Spt => "spt",
        }
    }

    pub fn from_name(name: &str) -> Option<MonitorKind> {
        MonitorKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for MonitorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A guest type (what it can take and how it boots: `guest/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GuestKind {
    Unikraft,
    Rumprun,
    Mirage,
    Mewz,
    Hermit,
    Linux,
    Nanos,
    Osv,
}

impl GuestKind {
    pub const ALL: [GuestKind; 8] = [
        GuestKind::Unikraft,
        GuestKind::Rumprun,
        GuestKind::Mirage,
        GuestKind::Mewz,
        GuestKind::Hermit,
        GuestKind::Linux,
        GuestKind::Nanos,
        GuestKind::Osv,
    ];

    /// Every name, in the order of `ALL`.
    pub const NAMES: [&'static str; 8] = {
        let k = GuestKind::ALL;
        [
            k[0].name(),
            k[1].name(),
            k[2].name(),
            k[3].name(),
            k[4].name(),
            k[5].name(),
            k[6].name(),
            k[7].name(),
        ]
    };

    /// The name in the `unikernelType` annotation and in messages.
    pub const fn name(self) -> &'static str {
        match self {
            GuestKind::Unikraft => "unikraft",
            GuestKind::Rumprun => "rumprun",
            GuestKind::Mirage => "mirage",
            GuestKind::Mewz => "mewz",
            GuestKind::Hermit => "hermit",
            GuestKind::Linux => "linux",
            GuestKind::Nanos => "nanos",
            GuestKind::Osv => "osv",
        }
    }

    pub fn from_name(name: &str) -> Option<GuestKind> {
        GuestKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What a guest type can take as its root filesystem and volumes (urunc's `SupportsBlock` /
/// `SupportsFS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageCaps {
    pub block: bool,
    pub fs: &'static [&'static str],
}

#[cfg(test)]
mod tests {
    use super::{GuestKind, MonitorKind};

    #[test]
    fn names_round_trip() {
        for k in MonitorKind::ALL {
            assert_eq!(MonitorKind::from_name(k.name()), Some(k));
        }
        assert_eq!(MonitorKind::from_name("solo5-hvt"), None);
        for k in GuestKind::ALL {
            assert_eq!(GuestKind::from_name(k.name()), Some(k));
        }
    }
}
