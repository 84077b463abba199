//! The monitors and their names: the one place a monitor's name is spelled outside
//! `monitor/` (the vocabulary guests use to say which monitors they boot on, and how).

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

#[cfg(test)]
mod tests {
    use super::MonitorKind;

    #[test]
    fn names_round_trip() {
        for k in MonitorKind::ALL {
            assert_eq!(MonitorKind::from_name(k.name()), Some(k));
        }
        assert_eq!(MonitorKind::from_name("solo5-hvt"), None);
    }
}
