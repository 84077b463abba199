//! The leftover check: after a container is gone, nothing it made may remain. A [`Watch`] is
//! taken before `create` and lists, afterwards, every leftover of each kind:
//! - processes: any live process carrying the watch's tag in its environment (`create` is run
//!   with it, and every process forked from it inherits it);
//! - the state directory `<root>/<id>`, and temporary directories (`.new-*`) in the root;
//! - the container's cgroup in every mounted hierarchy (each cgroup v1 controller mount and the
//!   unified one), from /proc/self/mountinfo;
//! - in the test's network namespace: links, ingress qdiscs and filters on eth0 that were not
//!   there before;
//! - mounts under the test's directory that appeared or disappeared (/proc/self/mountinfo);
//! - monitor uid leases naming the container (`<root>/<id>`, their second line) in the test's
//!   registry, `<scope>/monitor-uids` (the `Env` layout), live or stale.
//!
//! Only what the test owns is looked at (its tag, its root, its netns, its directory), so other
//! tests running at the same time on the machine cannot make it fail or pass.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const TAG_VAR: &str = "URUNC_LEAK_TAG";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Process,
    StateDir,
    Cgroup,
    Link,
    Qdisc,
    Filter,
    Mount,
    Lease,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub kind: Kind,
    pub what: String,
}

pub struct Watch {
    pub tag: String,
    root: PathBuf,
    id: String,
    cgroup: String,
    netns: Option<String>,
    scope: PathBuf,
    links: Vec<String>,
    qdiscs: String,
    filters: String,
    tables: String,
    mounts: Vec<String>,
}

fn run(args: &[&str]) -> String {
    let o = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Mount points (field 5 of mountinfo, with their source) under `scope`.
fn mounts_under(scope: &Path) -> Vec<String> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    let mut v: Vec<String> = info
        .lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let mp = left.split(' ').nth(4)?;
            let source = right.split(' ').nth(1).unwrap_or("");
            Path::new(mp)
                .starts_with(scope)
                .then(|| format!("{mp} ({source})"))
        })
        .collect();
    v.sort();
    v
}

/// Every cgroup hierarchy mounted here: (fstype, mount point).
pub fn cgroup_mounts() -> Vec<(String, PathBuf)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let fstype = right.split(' ').next()?;
            let mp = left.split(' ').nth(4)?;
            matches!(fstype, "cgroup" | "cgroup2").then(|| (fstype.to_string(), mp.into()))
        })
        .collect()
}

impl Watch {
    /// `cgroup`: the container's cgroup path relative to each hierarchy (`/urunc/<id>`);
    /// `netns`: the name of the test's network namespace (with `eth0`), if any; `scope`: the
    /// directory under which mounts are watched.
    pub fn new(root: &Path, id: &str, cgroup: &str, netns: Option<&str>, scope: &Path) -> Watch {
        let mut w = Watch {
            tag: format!("{}-{}", id, std::process::id()),
            root: root.to_path_buf(),
            id: id.to_string(),
            cgroup: cgroup.to_string(),
            netns: netns.map(str::to_string),
            scope: scope.to_path_buf(),
            links: Vec::new(),
            qdiscs: String::new(),
            filters: String::new(),
            tables: String::new(),
            mounts: mounts_under(scope),
        };
        w.links = w.links_now();
        w.qdiscs = w.qdiscs_now();
        w.filters = w.filters_now();
        w.tables = w.tables_now();
        w
    }

    /// nf_tables tables in the namespace (pod mode's; empty without the `nft` tool).
    fn tables_now(&self) -> String {
        let Some(ns) = &self.netns else {
            return String::new();
        };
        run(&["ip", "netns", "exec", ns, "nft", "list", "tables"])
    }

    fn links_now(&self) -> Vec<String> {
        let Some(ns) = &self.netns else {
            return Vec::new();
        };
        let mut v: Vec<String> = run(&["ip", "-n", ns, "-o", "link", "show"])
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .collect();
        v.sort();
        v
    }

    fn qdiscs_now(&self) -> String {
        let Some(ns) = &self.netns else {
            return String::new();
        };
        run(&["tc", "-n", ns, "qdisc", "show", "dev", "eth0", "ingress"])
    }

    fn filters_now(&self) -> String {
        let Some(ns) = &self.netns else {
            return String::new();
        };
        run(&["tc", "-n", ns, "filter", "show", "dev", "eth0", "ingress"])
    }

    fn processes(&self) -> Vec<Leftover> {
        let needle = format!("{TAG_VAR}={}", self.tag);
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_err() {
                continue;
            }
            // a zombie's environment reads empty: it is dead already
            let Ok(env) = std::fs::read(e.path().join("environ")) else {
                continue;
            };
            if env.split(|b| *b == 0).any(|v| v == needle.as_bytes()) {
                let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                out.push(Leftover {
                    kind: Kind::Process,
                    what: format!("pid {name} ({})", comm.trim()),
                });
            }
        }
        out
    }

    fn state(&self) -> Vec<Leftover> {
        let mut out = Vec::new();
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return out;
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == self.id || name.starts_with(".new-") {
                out.push(Leftover {
                    kind: Kind::StateDir,
                    what: e.path().display().to_string(),
                });
            }
        }
        out
    }

    fn cgroups(&self) -> Vec<Leftover> {
        cgroup_mounts()
            .into_iter()
            .map(|(_, mp)| mp.join(self.cgroup.trim_start_matches('/')))
            .filter(|d| d.exists())
            .map(|d| Leftover {
                kind: Kind::Cgroup,
                what: d.display().to_string(),
            })
            .collect()
    }

    fn network(&self) -> Vec<Leftover> {
        let mut out = Vec::new();
        for l in self.links_now() {
            if !self.links.contains(&l) {
                out.push(Leftover {
                    kind: Kind::Link,
                    what: l,
                });
            }
        }
        let q = self.qdiscs_now();
        if q != self.qdiscs {
            out.push(Leftover {
                kind: Kind::Qdisc,
                what: format!("eth0 qdiscs were {:?}, now {:?}", self.qdiscs, q),
            });
        }
        let f = self.filters_now();
        if f != self.filters {
            out.push(Leftover {
                kind: Kind::Filter,
                what: format!("eth0 ingress filters were {:?}, now {:?}", self.filters, f),
            });
        }
        let t = self.tables_now();
        if t != self.tables {
            out.push(Leftover {
                kind: Kind::Filter,
                what: format!("nf_tables tables were {:?}, now {:?}", self.tables, t),
            });
        }
        out
    }

    fn mounts(&self) -> Vec<Leftover> {
        let now = mounts_under(&self.scope);
        let gone = self.mounts.iter().filter(|m| !now.contains(m));
        let new = now.iter().filter(|m| !self.mounts.contains(m));
        gone.map(|m| format!("missing: {m}"))
            .chain(new.map(|m| format!("new: {m}")))
            .map(|what| Leftover {
                kind: Kind::Mount,
                what,
            })
            .collect()
    }

    fn leases(&self) -> Vec<Leftover> {
        let key = self.root.join(&self.id);
        let Ok(rd) = std::fs::read_dir(self.scope.join("monitor-uids")) else {
            return Vec::new();
        };
        rd.flatten()
            .filter(|e| {
                std::fs::read_to_string(e.path()).is_ok_and(|t| t.lines().nth(1) == key.to_str())
            })
            .map(|e| Leftover {
                kind: Kind::Lease,
                what: e.path().display().to_string(),
            })
            .collect()
    }

    /// Everything left now.
    pub fn leftovers(&self) -> Vec<Leftover> {
        let mut v = self.processes();
        v.extend(self.state());
        v.extend(self.cgroups());
        v.extend(self.network());
        v.extend(self.mounts());
        v.extend(self.leases());
        v
    }

    /// What is still left after `timeout` (processes SIGKILLed a moment ago may still be
    /// exiting); empty as soon as everything is gone.
    pub fn settle(&self, timeout: Duration) -> Vec<Leftover> {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.leftovers();
            if v.is_empty() || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
