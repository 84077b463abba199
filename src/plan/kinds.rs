//! The monitors and guest types, and their names: the one place a name is spelled (besides
//! config parsing): the vocabulary guests use to say which monitors they boot on, and how,
//! and the rest of urunc to name a guest type without comparing strings.

/// Declares a kind enum whose variants and names are listed once, one line each: `ALL`,
/// `NAMES` (in the same order), `name` and `from_name` follow from that list.
macro_rules! kinds {
    (@one $v:ident) => { 1 };
    ($(#[$m:meta])* $kind:ident { $($(#[$vm:meta])* $v:ident = $s:literal,)+ }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $kind {
            $($(#[$vm])* $v,)+
        }

        impl $kind {
            pub const ALL: [$kind; 0 $(+ kinds!(@one $v))+] = [$($kind::$v,)+];
            /// Every name, in the order of `ALL`.
            pub const NAMES: [&'static str; 0 $(+ kinds!(@one $v))+] = [$($s,)+];

            /// The name in annotations, config.toml sections and messages.
            pub const fn name(self) -> &'static str {
                match self {
                    $($kind::$v => $s,)+
                }
            }

            pub fn from_name(name: &str) -> Option<$kind> {
                match name {
                    $($s => Some($kind::$v),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $kind {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }
    };
}

kinds! {
    /// A virtual machine monitor urunc drives (what it is and can do: `monitor/`).
    MonitorKind {
        Qemu = "qemu",
        Firecracker = "firecracker",
        CloudHypervisor = "cloud-hypervisor",
        /// solo5-hvt, Solo5's KVM tender.
        Hvt = "hvt",
        /// solo5-spt, Solo5's seccomp tender.
        Spt = "spt",
    }
}

kinds! {
    /// A guest type (what it can take and how it boots: `guest/`).
    GuestKind {
        Unikraft = "unikraft",
        Rumprun = "rumprun",
        Mirage = "mirage",
        Mewz = "mewz",
        Hermit = "hermit",
        Linux = "linux",
        Nanos = "nanos",
        Osv = "osv",
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
        assert_eq!(MonitorKind::NAMES.len(), MonitorKind::ALL.len());
        assert_eq!(MonitorKind::CloudHypervisor.to_string(), "cloud-hypervisor");
        for k in GuestKind::ALL {
            assert_eq!(GuestKind::from_name(k.name()), Some(k));
        }
    }
}
