//! The unikernel configuration of a bundle: `com.urunc.unikernel.*` spec annotations first,
//! else `/urunc.json` in the rootfs (base64 values, read inside the rootfs, regular file,
//! bounded), as the Go urunc reads them. Of the three mandatory keys (type, hypervisor, binary)
//! all make a unikernel, none a bundle for the delegate runtime, and some an error naming the
//! missing ones. Values that reach a command line are checked (`values`).

pub use crate::plan::UnikernelConfig;
use base64::Engine;

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
pub use crate::plan::{SOLO5_BLK_DEV, SOLO5_NET_DEV};
/// Ours: `kvm` or `tcg` for this container, overriding the monitor's config.
pub const ACCEL: &str = "com.urunc.unikernel.accel";
/// The unikernel configuration file an image may carry instead of annotations.
pub const URUNC_JSON: &str = "/urunc.json";
/// Bound on `/urunc.json`: a handful of short base64 values.
const MAX_URUNC_JSON: u64 = 1 << 20;

mod values;

#[derive(Debug, thiserror::Error)]
pub enum UnikernelError {
    #[error("invalid {path}: {msg}")]
    Invalid { path: String, msg: String },
    #[error("invalid value {value:?} for {key}: {msg}")]
    Value {
        key: String,
        value: String,
        msg: String,
    },
    #[error("{found} set in {origin} but {missing} missing: a unikernel needs all of {TYPE}, {HYPERVISOR} and {BINARY} (set the missing ones, or none to run the bundle with the delegate runtime)")]
    Partial {
        origin: &'static str,
        found: String,
        missing: String,
    },
    #[error(transparent)]
    File(#[from] crate::bundle::BundleError),
}

impl UnikernelConfig {
    /// `Ok(None)`: not a unikernel bundle (hand it to the delegate runtime): neither the
    /// annotations nor `/urunc.json` name any of the three mandatory keys.
    pub fn detect(
        annotations: &BTreeMap<String, String>,
        rootfs: &Path,
    ) -> Result<Option<UnikernelConfig>, UnikernelError> {
        if let Some(c) = Self::parse(annotations)? {
            log::debug!("unikernel bundle: configured by its annotations");
            return Ok(Some(c));
        }
        // read like the kernel would: inside the rootfs, a regular file, bounded
        let data = match crate::bundle::read_file(
            rootfs,
            URUNC_JSON,
            "unikernel configuration",
            MAX_URUNC_JSON,
        ) {
            Ok(d) => d,
            Err(crate::bundle::BundleError::Resolve { source, .. })
                if source.kind() == std::io::ErrorKind::NotFound =>
            {
                log::debug!("not a unikernel bundle: no {PREFIX}* annotations and no {URUNC_JSON} in the rootfs; handing it to the delegate runtime");
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let invalid = |msg: String| UnikernelError::Invalid {
            path: URUNC_JSON.into(),
            msg,
        };
        let raw: BTreeMap<String, String> =
            serde_json::from_slice(&data).map_err(|e| invalid(e.to_string()))?;
        if !mandatory(&raw, URUNC_JSON)? {
            log::debug!("not a unikernel bundle: {URUNC_JSON} names none of {TYPE}, {HYPERVISOR}, {BINARY}; handing it to the delegate runtime");
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
        log::debug!("unikernel bundle: configured by {URUNC_JSON}");
        Self::from_map(&decoded, true).map(Some)
    }

    /// Where `key` came from, for error messages.
    pub fn origin(&self, key: &str) -> String {
        if self.from_urunc_json {
            format!("{key} in {URUNC_JSON}")
        } else {
            format!("annotation {key}")
        }
    }

    /// Parses the unikernel configuration out of annotation-like pairs (as `detect` does for
    /// the spec's annotations, without looking for `/urunc.json`): the fuzz targets' entry.
    pub fn parse(m: &BTreeMap<String, String>) -> Result<Option<UnikernelConfig>, UnikernelError> {
        if !mandatory(m, "the annotations")? {
            return Ok(None);
        }
        Self::from_map(m, false).map(Some)
    }

    fn from_map(
        m: &BTreeMap<String, String>,
        from_urunc_json: bool,
    ) -> Result<UnikernelConfig, UnikernelError> {
        let get = |k: &str| m.get(k).cloned().unwrap_or_default();
        let origin = |k: &str| {
            UnikernelConfig {
                from_urunc_json,
                ..Default::default()
            }
            .origin(k)
        };
        let mount_rootfs = match m.get(MOUNT_ROOTFS).map(|s| s.as_str()) {
            None | Some("") => false,
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => true,
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => false,
            Some(v) => {
                return Err(UnikernelError::Value {
                    key: origin(MOUNT_ROOTFS),
                    value: v.into(),
                    msg: "expected true or false".into(),
                })
            }
        };
        let accel = get(ACCEL);
        if !matches!(accel.as_str(), "" | "kvm" | "tcg") {
            return Err(UnikernelError::Value {
                key: origin(ACCEL),
                value: accel,
                msg: "expected kvm or tcg".into(),
            });
        }
        let c = UnikernelConfig {
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
            from_urunc_json,
        };
        values::check(&c)?;
        Ok(c)
    }
}

/// All three mandatory keys set: true; none: false; some: an error naming the missing ones.
fn mandatory(m: &BTreeMap<String, String>, origin: &'static str) -> Result<bool, UnikernelError> {
    let (found, missing): (Vec<&str>, Vec<&str>) = [TYPE, HYPERVISOR, BINARY]
        .into_iter()
        .partition(|k| m.get(*k).is_some_and(|v| !v.is_empty()));
    match found.len() {
        3 => Ok(true),
        0 => Ok(false),
        _ => Err(UnikernelError::Partial {
            origin,
            found: found.join(", "),
            missing: missing.join(", "),
        }),
    }
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
        // urunc.json is read when the annotations name none of the mandatory keys
        let a = ann(&[(CMDLINE, "x")]);
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
