//! The guest's DNS servers: from the `/etc/resolv.conf` the engine bind-mounts into the
//! container (its source on the host), else the host's own. Loopback servers (docker's
//! embedded 127.0.0.11, systemd-resolved's 127.0.0.53) answer on the container's or the host's
//! loopback, which the guest cannot reach (urunc issues #709, #1039): they are dropped, and
//! the next source is tried. Search domains and options (`ndots:5` in Kubernetes pods) come
//! from the first readable source, the container's own file when it has one.

use crate::spec::Mount;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Nameservers of a resolv.conf text, in order.
pub fn parse(text: &str) -> Vec<IpAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            if w.next()? != "nameserver" {
                return None;
            }
            // IPv6 link-local servers may carry a zone (`fe80::1%eth0`): not usable by a guest.
            w.next()?.parse().ok()
        })
        .collect()
}

/// The host path bind-mounted on `/etc/resolv.conf`, if the spec has one.
pub fn mounted_resolv_conf(mounts: &[Mount]) -> Option<PathBuf> {
    mounts
        .iter()
        .rev()
        .find(|m| m.destination.trim_end_matches('/') == "/etc/resolv.conf")
        .and_then(|m| m.source.as_ref())
        .map(PathBuf::from)
}

fn usable(ip: &IpAddr) -> bool {
    !ip.is_loopback() && !ip.is_unspecified()
}

/// The servers the guest gets, trying `sources` in order; the first source with at least one
/// usable server wins.
pub fn servers(sources: &[&Path]) -> Vec<IpAddr> {
    for src in sources {
        let Ok(text) = std::fs::read_to_string(src) else {
            continue;
        };
        let all = parse(&text);
        let ok: Vec<IpAddr> = all.iter().copied().filter(usable).collect();
        if !ok.is_empty() {
            return ok;
        }
        if !all.is_empty() {
            log::info!(
                "{}: nameservers {all:?} are on a loopback the guest cannot reach; trying the next source",
                src.display()
            );
        }
    }
    Vec::new()
}

/// `search` domains (or the older `domain`, which the last of them wins) and `options` of a
/// resolv.conf text.
pub fn search_and_options(text: &str) -> (Vec<String>, Vec<String>) {
    let (mut search, mut options) = (Vec::new(), Vec::new());
    for l in text.lines() {
        let mut w = l.split_whitespace();
        match w.next() {
            Some("search" | "domain") => search = w.map(String::from).collect(),
            Some("options") => options.extend(w.map(String::from)),
            _ => {}
        }
    }
    (search, options)
}

/// What the guest's resolv.conf holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dns {
    pub servers: Vec<IpAddr>,
    pub search: Vec<String>,
    pub options: Vec<String>,
}

/// DNS for a container with these mounts.
pub fn for_container(mounts: &[Mount]) -> Dns {
    let mounted = mounted_resolv_conf(mounts);
    let mut sources: Vec<&Path> = Vec::new();
    if let Some(m) = &mounted {
        sources.push(m);
    }
    sources.push(Path::new("/etc/resolv.conf"));
    // systemd-resolved's upstream list, behind its 127.0.0.53 stub
    sources.push(Path::new("/run/systemd/resolve/resolv.conf"));
    let (search, options) = sources
        .iter()
        .find_map(|s| std::fs::read_to_string(s).ok())
        .map(|t| search_and_options(&t))
        .unwrap_or_default();
    Dns {
        servers: servers(&sources),
        search,
        options,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nameservers_and_ignores_the_rest() {
        let t = "# comment\nsearch a.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\nnameserver  2001:db8::53 \noptions ndots:5\nnameserver fe80::1%eth0\nnameserver bogus\n";
        assert_eq!(
            parse(t),
            vec![
                "10.96.0.10".parse::<IpAddr>().unwrap(),
                "2001:db8::53".parse().unwrap()
            ]
        );
    }

    #[test]
    fn mounted_source_wins_and_loopback_falls_through() {
        let d = tempfile::tempdir().unwrap();
        let docker = d.path().join("docker");
        std::fs::write(&docker, "nameserver 127.0.0.11\noptions ndots:0\n").unwrap();
        let host = d.path().join("host");
        std::fs::write(&host, "nameserver 192.0.2.53\n").unwrap();
        let cni = d.path().join("cni");
        std::fs::write(&cni, "nameserver 10.0.0.10\n").unwrap();
        assert_eq!(
            servers(&[&cni, &host]),
            vec!["10.0.0.10".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(
            servers(&[&docker, &host]),
            vec!["192.0.2.53".parse::<IpAddr>().unwrap()]
        );
        assert!(servers(&[&docker, &d.path().join("missing")]).is_empty());
    }

    #[test]
    fn search_domains_and_options() {
        let t = "domain old.example\nsearch a.svc.cluster.local svc.cluster.local\nnameserver 10.96.0.10\noptions ndots:5\noptions edns0 timeout:1\n";
        assert_eq!(
            search_and_options(t),
            (
                vec!["a.svc.cluster.local".into(), "svc.cluster.local".into()],
                vec!["ndots:5".into(), "edns0".into(), "timeout:1".into()]
            )
        );
        assert_eq!(search_and_options("nameserver 1.1.1.1\n"), (vec![], vec![]));
    }

    #[test]
    fn finds_the_resolv_conf_mount() {
        let m = |dst: &str, src: &str| Mount {
            destination: dst.into(),
            source: Some(src.into()),
            ..Default::default()
        };
        let mounts = vec![
            m("/etc/hosts", "/x/hosts"),
            m("/etc/resolv.conf", "/x/resolv.conf"),
        ];
        assert_eq!(
            mounted_resolv_conf(&mounts),
            Some(PathBuf::from("/x/resolv.conf"))
        );
        assert_eq!(mounted_resolv_conf(&mounts[..1]), None);
    }
}
