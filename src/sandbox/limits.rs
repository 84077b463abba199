//! Cgroup limits: memory (and memory+swap), cpu and pids, from `linux.resources` at create and
//! from `update` later; they apply to the whole sandbox (supervisor, monitor, its children).

use super::cgroups::{ioerr, Cgroup, CgroupError};
use crate::spec::{Cpu, Memory, Resources};
use std::path::PathBuf;

impl Cgroup {
    /// `create`: applies the limits; a rootless runtime applies them only where the cgroup was
    /// delegated to it. Resources urunc does not enforce are logged: `devices` (the monitor's
    /// devices are governed by Landlock), blockIO, hugepageLimits, network, rdma, unified.
    pub fn apply_checked(&self, r: &Resources, rootless: bool) -> Result<(), CgroupError> {
        let ignored: Vec<&str> = r
            .other
            .iter()
            .filter(|(k, v)| *k != "devices" && !v.is_null())
            .map(|(k, _)| k.as_str())
            .collect();
        if !ignored.is_empty() {
            log::warn!("resources not enforced by urunc: {}", ignored.join(", "));
        }
        match self.apply(r) {
            Err(CgroupError::Io { source, path, .. })
                if rootless
                    && matches!(
                        source.kind(),
                        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::NotFound
                    ) =>
            {
                log::warn!(
                    "rootless: cgroup {path} is not delegated to this user; limits not applied"
                );
                Ok(())
            }
            other => other,
        }
    }

    /// Applies memory, cpu and pids limits; anything else in `resources` is reported.
    pub fn apply(&self, r: &Resources) -> Result<(), CgroupError> {
        if let Some(m) = &r.memory {
            self.apply_memory(m)?;
        }
        if let Some(c) = &r.cpu {
            self.apply_cpu(c)?;
        }
        if let Some(p) = &r.pids {
            let v = if p.limit <= 0 {
                "max".to_string()
            } else {
                p.limit.to_string()
            };
            let dir = if self.unified {
                self.v2_dir()
            } else {
                self.v1_dir("pids")
            };
            write(dir, "pids.max", v)?;
        }
        Ok(())
    }

    fn v2_dir(&self) -> Option<&PathBuf> {
        if self.unified {
            self.v2.as_ref()
        } else {
            None
        }
    }

    fn apply_memory(&self, m: &Memory) -> Result<(), CgroupError> {
        let w = write;
        let v2 = self.v2_dir();
        // v1: memory+swap must stay >= memory; whichever order keeps that holds
        if let (Some(l), Some(sw), false) = (m.limit, m.swap, self.unified) {
            let memsw = self
                .v1_dir("memory")
                .map(|d| d.join("memory.memsw.limit_in_bytes"));
            if let Some(f) = memsw.filter(|f| f.exists()) {
                let lim = self
                    .v1_dir("memory")
                    .map(|d| d.join("memory.limit_in_bytes"));
                let (l, sw) = (l.max(-1).to_string(), sw.max(-1).to_string());
                let lim = lim.unwrap_or_default();
                let first = std::fs::write(&lim, &l).and_then(|_| std::fs::write(&f, &sw));
                if first.is_err() {
                    std::fs::write(&f, &sw).map_err(ioerr(&f, format!("write {sw}")))?;
                    std::fs::write(&lim, &l).map_err(ioerr(&lim, format!("write {l}")))?;
                }
            }
        }
        if let (Some(l), Some(sw), true) = (m.limit, m.swap, self.unified) {
            // v2 counts swap alone: the spec's swap is memory+swap
            let v = if sw < 0 {
                "max".into()
            } else {
                (sw - l.max(0)).max(0).to_string()
            };
            w(v2, "memory.swap.max", v)?;
        }
        if let Some(l) = m.limit {
            let v = if l < 0 {
                "max".to_string()
            } else {
                l.to_string()
            };
            if self.unified {
                w(v2, "memory.max", v)?;
            } else {
                let v = if l < 0 { "-1".into() } else { v };
                w(self.v1_dir("memory"), "memory.limit_in_bytes", v)?;
            }
        }
        if let Some(s) = m.reservation {
            if self.unified {
                w(v2, "memory.low", s.to_string())?;
            } else {
                w(
                    self.v1_dir("memory"),
                    "memory.soft_limit_in_bytes",
                    s.to_string(),
                )?;
            }
        }
        Ok(())
    }

    fn apply_cpu(&self, c: &Cpu) -> Result<(), CgroupError> {
        let w = write;
        let v2 = self.v2_dir();
        if self.unified {
            if c.quota.is_some() || c.period.is_some() {
                let q = c
                    .quota
                    .filter(|q| *q > 0)
                    .map(|q| q.to_string())
                    .unwrap_or("max".into());
                w(
                    v2,
                    "cpu.max",
                    format!("{q} {}", c.period.unwrap_or(100_000)),
                )?;
            }
            if let Some(s) = c.shares {
                // the conversion runc and crun use
                let weight = 1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142;
                w(v2, "cpu.weight", weight.to_string())?;
            }
        } else {
            let d = self.v1_dir("cpu");
            if let Some(p) = c.period {
                w(d, "cpu.cfs_period_us", p.to_string())?;
            }
            if let Some(q) = c.quota {
                w(d, "cpu.cfs_quota_us", q.to_string())?;
            }
            if let Some(s) = c.shares {
                w(d, "cpu.shares", s.to_string())?;
            }
        }
        if let Some(cpus) = c.cpus.as_ref().filter(|s| !s.is_empty()) {
            if self.unified {
                w(v2, "cpuset.cpus", cpus.clone())?
            } else {
                w(self.v1_dir("cpuset"), "cpuset.cpus", cpus.clone())?
            }
        }
        if let Some(mems) = c.mems.as_ref().filter(|s| !s.is_empty()) {
            if self.unified {
                w(v2, "cpuset.mems", mems.clone())?
            } else {
                w(self.v1_dir("cpuset"), "cpuset.mems", mems.clone())?
            }
        }
        Ok(())
    }
}

/// Writes `val` to the controller file `file` in `dir`; a controller that is not mounted
/// (`dir` None) cannot take the limit.
fn write(dir: Option<&PathBuf>, file: &str, val: String) -> Result<(), CgroupError> {
    match dir {
        Some(d) => {
            std::fs::write(d.join(file), &val).map_err(ioerr(&d.join(file), format!("write {val}")))
        }
        None => Err(CgroupError::Unsupported(format!(
            "{file} (controller not mounted)"
        ))),
    }
}
