//! Loads the kernel modules shipped in the image under `/lib/modules/$(uname -r)`, every
//! module listed in its `modules.dep`, dependencies first, with `finit_module(2)`. Modules
//! must be uncompressed `.ko` files (the asset script decompresses `.ko.xz`/`.ko.zst`);
//! compressed ones are reported and skipped. A module that is already loaded or built in
//! (`EEXIST`) is fine.

use crate::sys;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::AsRawFd;

/// `modules.dep`: module path -> its dependencies, in file order.
pub fn parse_dep(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|l| {
            let (m, deps) = l.split_once(':')?;
            let m = m.trim();
            (!m.is_empty()).then(|| {
                (
                    m.to_string(),
                    deps.split_ascii_whitespace().map(String::from).collect(),
                )
            })
        })
        .collect()
}

/// Every module once, each after its dependencies. In `modules.dep` a module's list holds
/// all its dependencies, the ones to load last first, so they are visited in reverse.
pub fn load_order(dep: &[(String, Vec<String>)]) -> Vec<String> {
    let map: BTreeMap<&str, &Vec<String>> = dep.iter().map(|(m, d)| (m.as_str(), d)).collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    fn visit<'a>(
        m: &'a str,
        map: &BTreeMap<&'a str, &'a Vec<String>>,
        seen: &mut BTreeSet<&'a str>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(m) {
            return;
        }
        if let Some(deps) = map.get(m) {
            for d in deps.iter().rev() {
                visit(d, map, seen, out);
            }
        }
        out.push(m.to_string());
    }
    for (m, _) in dep {
        visit(m, &map, &mut seen, &mut out);
    }
    out
}

/// Loads everything; returns the errors (not fatal: the program may not need the device).
pub fn load_all(debug: bool) -> Vec<String> {
    let dir = format!("/lib/modules/{}", sys::uname_release());
    let Ok(text) = std::fs::read_to_string(format!("{dir}/modules.dep")) else {
        if debug {
            eprintln!("urunit: no {dir}/modules.dep, loading no modules");
        }
        return Vec::new();
    };
    let mut errs = Vec::new();
    for m in load_order(&parse_dep(&text)) {
        if !m.ends_with(".ko") {
            errs.push(format!(
                "module {m}: compressed modules are not supported, ship .ko"
            ));
            continue;
        }
        let path = if m.starts_with('/') {
            m.clone()
        } else {
            format!("{dir}/{m}")
        };
        let r = std::fs::File::open(&path).and_then(|f| sys::finit_module(f.as_raw_fd()));
        match r {
            Ok(()) => {
                if debug {
                    eprintln!("urunit: loaded {m} at {}s", crate::uptime());
                }
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => errs.push(format!("load module {m}: {e}")),
        }
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_first() {
        let dep = parse_dep(
            "kernel/drivers/net/virtio_net.ko: kernel/drivers/net/net_failover.ko kernel/net/core/failover.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/net/net_failover.ko: kernel/net/core/failover.ko\n\
             kernel/net/core/failover.ko:\n\
             kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/virtio/virtio_ring.ko:\n\
             kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n",
        );
        let o = load_order(&dep);
        let pos = |s: &str| o.iter().position(|m| m.ends_with(s)).unwrap();
        assert_eq!(o.len(), 6);
        assert!(pos("/virtio_ring.ko") < pos("/virtio.ko"));
        assert!(pos("/virtio.ko") < pos("/virtio_net.ko"));
        assert!(pos("/failover.ko") < pos("/net_failover.ko"));
        assert!(pos("/net_failover.ko") < pos("/virtio_net.ko"));
        assert!(pos("/virtio.ko") < pos("/virtio_blk.ko"));
    }
}
