//! `/etc/urunc/config.toml` (location overridable with `URUNC_CONFIG`, or upstream urunc's
//! `URUNC_CONFIG_FILE`), urunc's format plus a
//! few keys of ours (`accel`, `kvm_group`, `[delegate]`). Read once by `create`; of what it
//! decides, the container's state keeps what later commands use (`[timestamps]`).

pub use crate::plan::MonitorConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const DEFAULT_PATH: &str = "/etc/urunc/config.toml";
/// Where monitor uid leases live unless `[sandbox] monitor_uid_registry` says otherwise.
pub const DEFAULT_UID_REGISTRY: &str = "/run/urunc/monitor-uids";
pub const MONITORS: &[&str] = &crate::plan::MonitorKind::NAMES;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub log: LogConfig,
    pub timestamps: Timestamps,
    pub monitors: BTreeMap<String, MonitorConfig>,
    pub extra_binaries: BTreeMap<String, ExtraBinary>,
    pub delegate: Delegate,
    pub sandbox: SandboxConfig,
    pub network: NetworkConfig,
}

/// `[network]`: `mode` is the default network mode of containers without the
/// `com.urunc.network.mode` annotation, `redirect` (the guest takes the pod's interface) or
/// `pod` (the pod keeps its interface; the guest's ports are forwarded to it, `net::pod`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    pub mode: String,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            mode: "redirect".into(),
        }
    }
}

/// `[sandbox]`: `allow_unconfined = true` lets monitors start where the kernel lacks Landlock
/// (otherwise `create` fails rather than run a monitor with less confinement than documented).
/// The monitor of a uid-0 container runs as a host uid leased from `monitor_uid_start` ..
/// `+ monitor_uid_count` (`sandbox::monitor_ns`); a count of 0 keeps it uid 0. The leases are
/// files in `monitor_uid_registry` (one directory for every state root of the host).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    pub allow_unconfined: bool,
    pub monitor_uid_start: u32,
    pub monitor_uid_count: u32,
    pub monitor_uid_registry: PathBuf,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            allow_unconfined: false,
            // far above distributions' and subuid ranges (0xC0000000)
            monitor_uid_start: 3_221_225_472,
            monitor_uid_count: 65_536,
            monitor_uid_registry: PathBuf::from(DEFAULT_UID_REGISTRY),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub level: String,
    /// Upstream urunc sends its log to syslog when true. Accepted for compatibility, without
    /// effect: urunc logs where the engine asks (`--log`, runc's contract), and stderr.
    pub syslog: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Timestamps {
    pub enabled: bool,
    pub destination: PathBuf,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExtraBinary {
    pub path: String,
    pub options: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Delegate {
    /// Runtime for bundles that are not unikernels; empty: `runc`, else `crun`, from `$PATH`.
    pub runtime: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            syslog: false,
        }
    }
}

impl Default for Timestamps {
    fn default() -> Self {
        Timestamps {
            enabled: false,
            destination: "/var/log/urunc/timestamps.log".into(),
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            default_memory_mb: 256,
            default_vcpus: 1,
            path: String::new(),
            data_path: String::new(),
            vhost: false,
            accel: String::new(),
            kvm_group: String::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let monitors = MONITORS
            .iter()
            .map(|m| (m.to_string(), MonitorConfig::default()))
            .collect();
        let mut extra_binaries = BTreeMap::new();
        extra_binaries.insert(
            "virtiofsd".to_string(),
            ExtraBinary {
                path: "/usr/libexec/virtiofsd".into(),
                options: "--cache always --sandbox none".into(),
            },
        );
        Config {
            log: LogConfig::default(),
            timestamps: Timestamps::default(),
            monitors,
            extra_binaries,
            delegate: Delegate::default(),
            sandbox: SandboxConfig::default(),
            network: NetworkConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Invalid { path: String, source: Invalid },
}

/// What is wrong in a config file's text.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    #[error("{0}")]
    Toml(#[from] basic_toml::Error),
    #[error("unknown section [monitors.{0}] (known monitors: {known})", known = MONITORS.join(", "))]
    UnknownMonitor(String),
    #[error("monitors.{0}.default_memory_mb must be at least 1")]
    ZeroMemory(String),
    #[error("monitors.{0}.default_vcpus must be at least 1")]
    ZeroVcpus(String),
    #[error("monitors.{name}.accel must be \"kvm\" or \"tcg\", not {accel:?}")]
    Accel { name: String, accel: String },
    #[error("monitors.{name}.path must be an absolute path, not {path:?}")]
    RelativePath { name: String, path: String },
    #[error("sandbox.monitor_uid_registry must be an absolute path, not {0:?}")]
    RelativeRegistry(PathBuf),
    #[error("log.level {0:?} is not a log level")]
    LogLevel(String),
    #[error("network.mode must be \"redirect\" or \"pod\", not {0:?}")]
    NetworkMode(String),
}

impl Config {
    /// The config file path: `$URUNC_CONFIG`, else `$URUNC_CONFIG_FILE` (upstream urunc's name
    /// since v0.8), else `/etc/urunc/config.toml`.
    pub fn path() -> PathBuf {
        ["URUNC_CONFIG", "URUNC_CONFIG_FILE"]
            .iter()
            .filter_map(std::env::var_os)
            .find(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH))
    }

    /// Loads the config file; a missing file means the defaults.
    pub fn load() -> Result<Config, ConfigError> {
        Self::load_from(&Self::path())
    }

    pub fn load_from(path: &Path) -> Result<Config, ConfigError> {
        let text = match read_regular(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.display().to_string(),
                    source,
                })
            }
        };
        let cfg = Self::parse(&text).map_err(|source| ConfigError::Invalid {
            path: path.display().to_string(),
            source,
        })?;
        if cfg.log.syslog {
            log::debug!("[log] syslog = true is accepted for compatibility and has no effect: the log goes to --log");
        }
        Ok(cfg)
    }

    pub fn parse(text: &str) -> Result<Config, Invalid> {
        let mut cfg: Config = basic_toml::from_str(text)?;
        // Monitors the file does not mention keep their defaults.
        for m in MONITORS {
            cfg.monitors.entry(m.to_string()).or_default();
        }
        cfg.extra_binaries
            .entry("virtiofsd".into())
            .or_insert_with(|| Config::default().extra_binaries["virtiofsd"].clone());
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), Invalid> {
        for (name, m) in &self.monitors {
            let name = name.clone();
            if !MONITORS.contains(&name.as_str()) {
                return Err(Invalid::UnknownMonitor(name));
            }
            if m.default_memory_mb == 0 {
                return Err(Invalid::ZeroMemory(name));
            }
            if m.default_vcpus == 0 {
                return Err(Invalid::ZeroVcpus(name));
            }
            if !matches!(m.accel.as_str(), "" | "kvm" | "tcg") {
                let accel = m.accel.clone();
                return Err(Invalid::Accel { name, accel });
            }
            if !m.path.is_empty() && !m.path.starts_with('/') {
                let path = m.path.clone();
                return Err(Invalid::RelativePath { name, path });
            }
        }
        let registry = &self.sandbox.monitor_uid_registry;
        if !registry.is_absolute() {
            return Err(Invalid::RelativeRegistry(registry.clone()));
        }
        if !matches!(
            self.log.level.as_str(),
            "trace" | "debug" | "info" | "warn" | "warning" | "error" | "fatal" | "panic"
        ) {
            return Err(Invalid::LogLevel(self.log.level.clone()));
        }
        if !matches!(self.network.mode.as_str(), "redirect" | "pod") {
            return Err(Invalid::NetworkMode(self.network.mode.clone()));
        }
        Ok(())
    }

    pub fn monitor(&self, name: &str) -> MonitorConfig {
        self.monitors.get(name).cloned().unwrap_or_default()
    }
}

/// Bound on the config file (a few dozen lines in practice).
const MAX_CONFIG: u64 = 1 << 20;

/// The config file: a bounded regular file, never a FIFO that would block `create`.
fn read_regular(path: &Path) -> std::io::Result<String> {
    let data = crate::sys::read_regular_capped(path, MAX_CONFIG)?;
    String::from_utf8(data)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults() {
        let c = Config::load_from(Path::new("/nonexistent/urunc.toml")).unwrap();
        assert_eq!(c, Config::default());
        assert_eq!(c.monitor("qemu").default_memory_mb, 256);
        assert_eq!(c.monitor("spt").default_vcpus, 1);
    }

    #[test]
    fn partial_monitor_section_keeps_other_defaults() {
        let c = Config::parse("[monitors.qemu]\ndefault_vcpus = 2\naccel = \"tcg\"\n").unwrap();
        let q = c.monitor("qemu");
        assert_eq!(
            (q.default_memory_mb, q.default_vcpus, q.accel.as_str()),
            (256, 2, "tcg")
        );
        assert_eq!(c.monitor("firecracker"), MonitorConfig::default());
        assert_eq!(c.extra_binaries["virtiofsd"].path, "/usr/libexec/virtiofsd");
    }

    #[test]
    fn invalid_values_are_clear_errors() {
        let e = Config::parse("[monitors.qemu]\naccel = \"fast\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("monitors.qemu.accel"), "{e}");
        let e = Config::parse("[monitors.qemu]\ndefault_memory_mb = \"lots\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("default_memory_mb"), "{e}");
        let e = Config::parse("[monitors.hvt]\npath = \"solo5-hvt\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("absolute"), "{e}");
        let e = Config::parse("[monitors.qemu]\nmemory = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("memory"), "{e}");
        let e = Config::parse("[monitors.qemuX]\npath = \"/q\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown section [monitors.qemuX]"), "{e}");
        let e = Config::parse("[sandbox]\nmonitor_uid_registry = \"uids\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("sandbox.monitor_uid_registry"), "{e}");
        let c = Config::parse("[sandbox]\nmonitor_uid_registry = \"/tmp/u\"\n").unwrap();
        assert_eq!(c.sandbox.monitor_uid_registry, Path::new("/tmp/u"));
        assert_eq!(
            Config::default().sandbox.monitor_uid_registry,
            Path::new("/run/urunc/monitor-uids")
        );
        let e = Config::parse("[network]\nmode = \"bridge\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("network.mode must be"), "{e}");
        assert_eq!(Config::default().network.mode, "redirect");
        assert_eq!(
            Config::parse("[network]\nmode = \"pod\"\n")
                .unwrap()
                .network
                .mode,
            "pod"
        );
        // upstream's [log] syslog is accepted
        assert!(Config::parse("[log]\nsyslog = true\n").unwrap().log.syslog);
    }

    #[test]
    fn a_fifo_or_a_huge_file_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo.toml");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let e = Config::load_from(&fifo).unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        let big = d.path().join("big.toml");
        std::fs::File::create(&big)
            .unwrap()
            .set_len(MAX_CONFIG + 1)
            .unwrap();
        let e = Config::load_from(&big).unwrap_err();
        assert!(e.to_string().contains("larger than"), "{e}");
    }
}
