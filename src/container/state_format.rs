//! The `urunc` section of `state.json` as every format this binary manages reads it.
//!
//! Format 2 keeps only what the commands after `create` use. Formats 0 and 1 also stored the
//! unikernel's configuration, whether the container had its own PID namespace (both read by
//! nothing), and the whole config file, of which only `[timestamps]` is used after `create`
//! (`start` logs its timestamps there): that is taken out of it here.

use super::state::Extra;
use crate::config::Timestamps;
use crate::sandbox::cgroups::Cgroup;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AnyFormat {
    /// Format 2: the guest type.
    #[serde(default)]
    guest: Option<String>,
    /// Formats 0 and 1: the unikernel's configuration, of which only its type is used.
    #[serde(default)]
    unikernel: Option<OldUnikernel>,
    /// Format 2.
    #[serde(default)]
    timestamps: Option<Timestamps>,
    /// Formats 0 and 1: the config file as `create` read it.
    #[serde(default)]
    config: Option<OldConfig>,
    cgroup: Option<Cgroup>,
    netns: Option<PathBuf>,
    tap: Option<String>,
    hooks: crate::spec::Hooks,
}

/// The part of the old formats' unikernel configuration that is still used.
#[derive(Deserialize)]
struct OldUnikernel {
    #[serde(default)]
    unikernel_type: String,
}

/// The part of the old formats' config that is still used (other keys are skipped).
#[derive(Deserialize)]
struct OldConfig {
    #[serde(default)]
    timestamps: Timestamps,
}

impl From<AnyFormat> for Extra {
    fn from(a: AnyFormat) -> Extra {
        Extra {
            guest: a
                .guest
                .or(a.unikernel.map(|u| u.unikernel_type))
                .unwrap_or_default(),
            timestamps: a
                .timestamps
                .or(a.config.map(|c| c.timestamps))
                .unwrap_or_default(),
            cgroup: a.cgroup,
            netns: a.netns,
            tap: a.tap,
            hooks: a.hooks,
        }
    }
}
