//! The unikernel configuration of a bundle: `com.urunc.unikernel.*` spec annotations first,
//! else `/urunc.json` in the rootfs (base64 values), all or nothing, as the Go urunc reads it.

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

pub const PREFIX: &str = "com.urunc.unikernel.";
pub const TYPE: &str = "com.urunc.unikernel.unikernelType";
pub const HYPERVISOR: &str = "com.urunc.unikernel.hypervisor";
pub const BINARY: &str = "com.urunc.unikernel.binary";
pub const CMDLINE: &str = "com.urunc.unikernel.cmdline";
pub const VERSION: &str = "com.urunc.unikernel.unikernelVersion";
pub const INITRD: &str = "com.urunc.unikernel.initrd";
pub const BLOCK: &str = "com.urunc.unikernel.block";
pub const BLK_MNT_POINT: &str = "com.urunc.unikernel.blkMntPoint";
pub const MOUNT_ROOTFS: &str = "com.urunc.unikernel.mountRootfs";
/// Solo5 device names (upstream urunc v0.8): the network device, and the block devices as a
/// comma-separated list mapped in order onto the block images.
pub const SOLO5_NET_DEV: &str = "com.urunc.unikernel.solo5NetDev";
pub const SOLO5_BLK_DEV: &str = "com.urunc.unikernel.solo5BlkDev";
/// Ours: `kvm` or `tcg` for this container, overriding the monitor's config.
pub const ACCEL: &str = "com.urunc.unikernel.accel";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UnikernelConfig {
    pub unikernel_type: String,
    pub hypervisor: String,
    pub binary: String,
    pub cmdline: String,
    pub version: String,
    pub initrd: String,
    pub block: String,
    pub blk_mnt_point: String,
    pub mount_rootfs: bool,
    pub accel: String,
    /// `SOLO5_NET_DEV`, validated where it is used (`monitor/solo5.rs`).
    #[serde(default)]
    pub solo5_net_dev: String,
    /// `SOLO5_BLK_DEV`, validated where it is used (`monitor/solo5.rs`).
    #[serde(default)]
    pub solo5_blk_dev: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UnikernelError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid {path}: {msg}")]
    Invalid { path: String, msg: String },
    #[error("invalid value {value:?} for annotation {key}: {msg}")]
    Value {
        key: String,
        value: String,
        msg: String,
    },
}

impl UnikernelConfig {
    /// `Ok(None)`: not a unikernel bundle (hand it to the delegate runtime).
    pub fn detect(
        annotations: &BTreeMap<String, String>,
        rootfs: &Path,
    ) -> Result<Option<UnikernelConfig>, UnikernelError> {
        if has_mandatory(annotations) {
            return Self::from_map(annotations).map(Some);
        }
        let path = rootfs.join("urunc.json");
        let data = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(UnikernelError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let invalid = |msg: String| UnikernelError::Invalid {
            path: path.display().to_string(),
            msg,
        };
        let raw: BTreeMap<String, String> =
            serde_json::from_slice(&data).map_err(|e| invalid(e.to_string()))?;
        if !has_mandatory(&raw) {
            return Ok(None);
        }
        let mut decoded = BTreeMap::new();
        for (k, v) in raw {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .map_err(|e| invalid(format!("{k} is not base64: {e}")))?;
            let s = String::from_utf8(bytes).map_err(|_| invalid(format!("{k} is not UTF-8")))?;
            decoded.insert(k, s);
        }
        Self::from_map(&decoded).map(Some)
    }

    fn from_map(m: &BTreeMap<String, String>) -> Result<UnikernelConfig, UnikernelError> {
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        let mount_rootfs = match m.get(MOUNT_ROOTFS).map(|s| s.as_str()) {
            None | Some("") => false,
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
            Some(v) => {
                return Err(UnikernelError::Value {
                    key: MOUNT_ROOTFS.into(),
                    value: v.into(),
                    msg: "expected true or false".into(),
                })
            }
        };
        let accel = get(ACCEL);
        if !matches!(accel.as_str(), "" | "kvm" | "tcg") {
            return Err(UnikernelError::Value {
                key: ACCEL.into(),
                value: accel,
                msg: "expected kvm or tcg".into(),
            });
        }
        Ok(UnikernelConfig {
            unikernel_type: get(TYPE),
            hypervisor: get(HYPERVISOR),
            binary: get(BINARY),
            cmdline: get(CMDLINE),
            version: get(VERSION),
            initrd: get(INITRD),
            block: get(BLOCK),
            blk_mnt_point: get(BLK_MNT_POINT),
            mount_rootfs,
            accel,
            solo5_net_dev: get(SOLO5_NET_DEV),
            solo5_blk_dev: get(SOLO5_BLK_DEV),
        })
    }
}

fn has_mandatory(m: &BTreeMap<String, String>) -> bool {
    [TYPE, HYPERVISOR, BINARY]
        .iter()
        .all(|k| m.get(*k).is_some_and(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ann(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn annotations_win_and_plain_text_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let a = ann(&[
            (TYPE, "linux"),
            (HYPERVISOR, "qemu"),
            (BINARY, "/kernel"),
            (CMDLINE, "a b"),
        ]);
        let c = UnikernelConfig::detect(&a, dir.path()).unwrap().unwrap();
        assert_eq!(
            (c.unikernel_type.as_str(), c.hypervisor.as_str()),
            ("linux", "qemu")
        );
        assert_eq!(c.cmdline, "a b");
        assert!(!c.mount_rootfs);
    }

    #[test]
    fn urunc_json_is_base64_and_all_or_nothing() {
        let dir = tempfile::tempdir().unwrap();
        // partial annotations are ignored in favour of urunc.json
        let a = ann(&[(TYPE, "unikraft")]);
        std::fs::write(
            dir.path().join("urunc.json"),
            r#"{"com.urunc.unikernel.unikernelType":"dW5pa3JhZnQ=","com.urunc.unikernel.hypervisor":"cWVtdQ==","com.urunc.unikernel.binary":"L3VuaWtlcm5lbC9rZXJuZWw=","com.urunc.unikernel.mountRootfs":"dHJ1ZQ=="}"#,
        )
        .unwrap();
        let c = UnikernelConfig::detect(&a, dir.path()).unwrap().unwrap();
        assert_eq!(c.unikernel_type, "unikraft");
        assert_eq!(c.hypervisor, "qemu");
        assert_eq!(c.binary, "/unikernel/kernel");
        assert!(c.mount_rootfs);
    }

    #[test]
    fn no_config_means_not_a_unikernel() {
        let dir = tempfile::tempdir().unwrap();
        assert!(UnikernelConfig::detect(&BTreeMap::new(), dir.path())
            .unwrap()
            .is_none());
    }

    #[test]
    fn bad_base64_and_directory_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("urunc.json"),
            r#"{"com.urunc.unikernel.unikernelType":"!!","com.urunc.unikernel.hypervisor":"cWVtdQ==","com.urunc.unikernel.binary":"eA=="}"#,
        )
        .unwrap();
        let e = UnikernelConfig::detect(&BTreeMap::new(), dir.path()).unwrap_err();
        assert!(e.to_string().contains("not base64"), "{e}");
        let dir2 = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir2.path().join("urunc.json")).unwrap();
        assert!(UnikernelConfig::detect(&BTreeMap::new(), dir2.path()).is_err());
    }

    #[test]
    fn invalid_mount_rootfs_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let a = ann(&[
            (TYPE, "linux"),
            (HYPERVISOR, "qemu"),
            (BINARY, "/k"),
            (MOUNT_ROOTFS, "yes"),
        ]);
        let e = UnikernelConfig::detect(&a, dir.path()).unwrap_err();
        assert!(e.to_string().contains("mountRootfs"), "{e}");
    }
}
