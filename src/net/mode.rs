//! Which network mode a container gets, and the ports a pod-mode guest serves.
//!
//! `com.urunc.network.mode` (`redirect` or `pod`) chooses per container (`KEY.<name>`, with
//! the CRI container name, before `KEY`, for both annotations); without it the
//! config file's `[network] mode` does (default `redirect`), except that Knative's
//! `user-container` keeps its static mode. `com.urunc.network.ports` lists the pod-mode
//! guest's ports (`80`, `8080/tcp`, `53/udp`, comma-separated); without it the guest gets
//! every TCP and UDP port of the pod IP that no local socket (a sidecar) is bound to.

use std::collections::BTreeMap;

pub const MODE_ANNOTATION: &str = "com.urunc.network.mode";
pub const PORTS_ANNOTATION: &str = "com.urunc.network.ports";
/// Bound on declared ports: their list travels in the nf_tables table's user data (256 bytes).
pub const MAX_PORTS: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    /// `IPPROTO_TCP`, `IPPROTO_UDP`.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }

    fn letter(self) -> char {
        match self {
            Proto::Tcp => 't',
            Proto::Udp => 'u',
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Port {
    pub proto: Proto,
    pub port: u16,
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = if self.proto == Proto::Tcp {
            "tcp"
        } else {
            "udp"
        };
        write!(f, "{}/{p}", self.port)
    }
}

/// The pod-mode guest's ports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    Listed(Vec<Port>),
    /// Every port no local socket is bound to.
    Unbound,
}

impl Ports {
    /// Compact form kept in the table's user data: `*`, `t80,u53`, or `-` for none.
    pub fn encode(&self) -> String {
        match self {
            Ports::Unbound => "*".into(),
            Ports::Listed(v) if v.is_empty() => "-".into(),
            Ports::Listed(v) => v
                .iter()
                .map(|p| format!("{}{}", p.proto.letter(), p.port))
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    pub fn decode(s: &str) -> Option<Ports> {
        if s == "*" {
            return Some(Ports::Unbound);
        }
        if s == "-" {
            return Some(Ports::Listed(Vec::new()));
        }
        let mut v = Vec::new();
        for item in s.split(',').filter(|i| !i.is_empty()) {
            let proto = match item.as_bytes()[0] {
                b't' => Proto::Tcp,
                b'u' => Proto::Udp,
                _ => return None,
            };
            v.push(Port {
                proto,
                port: item[1..].parse().ok()?,
            });
        }
        Some(Ports::Listed(v))
    }

    /// What both claim, as the subject of a sentence (`None`: no overlap). `Unbound` claims
    /// every port; an empty list (static mode's masquerade) claims none.
    pub fn overlap(&self, other: &Ports) -> Option<String> {
        match (self, other) {
            (Ports::Listed(v), _) | (_, Ports::Listed(v)) if v.is_empty() => None,
            (Ports::Unbound, _) | (_, Ports::Unbound) => {
                Some("every port (no com.urunc.network.ports list) is".into())
            }
            (Ports::Listed(a), Ports::Listed(b)) => a
                .iter()
                .find(|p| b.contains(p))
                .map(|p| format!("port {p} is")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Redirect,
    /// Knative's `user-container` (`static_mode`).
    Static,
    Pod(Ports),
}

#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error("invalid value {0:?} for annotation {MODE_ANNOTATION}: use redirect or pod")]
    BadMode(String),
    #[error("invalid port {item:?} in annotation {PORTS_ANNOTATION}: {why} (write ports as 80, 8080/tcp or 53/udp, separated by commas)")]
    BadPort { item: String, why: &'static str },
    #[error("annotation {PORTS_ANNOTATION} lists {0} ports: at most {MAX_PORTS} are supported")]
    TooMany(usize),
    #[error("annotation {PORTS_ANNOTATION} is set but the network mode is not pod: set {MODE_ANNOTATION}=pod or remove it")]
    PortsWithoutPod,
}

/// The container's own value of `key`: `KEY.<container name>` (Kubernetes users can set only
/// pod annotations, which containerd passes to every container of the pod; the CRI container
/// name tells them apart), else `KEY`.
fn lookup<'a>(annotations: &'a BTreeMap<String, String>, key: &str) -> Option<&'a String> {
    annotations
        .get(CONTAINER_NAME)
        .and_then(|name| annotations.get(&format!("{key}.{name}")))
        .or_else(|| annotations.get(key))
}

const CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";

/// `default`: the config file's `[network] mode` (already validated, `redirect` or `pod`).
impl From<ModeError> for crate::error::Error {
    fn from(e: ModeError) -> Self {
        crate::error::Error::Module(Box::new(e))
    }
}

pub fn of(annotations: &BTreeMap<String, String>, default: &str) -> Result<Mode, ModeError> {
    let chosen = lookup(annotations, MODE_ANNOTATION).map(String::as_str);
    let pod = match chosen {
        Some("pod") => true,
        Some("redirect") => false,
        Some(v) => return Err(ModeError::BadMode(v.into())),
        None if super::static_mode::wanted(annotations) => {
            if lookup(annotations, PORTS_ANNOTATION).is_some() {
                return Err(ModeError::PortsWithoutPod);
            }
            return Ok(Mode::Static);
        }
        None => default == "pod",
    };
    let ports = lookup(annotations, PORTS_ANNOTATION);
    if !pod {
        return match ports {
            Some(_) => Err(ModeError::PortsWithoutPod),
            None => Ok(Mode::Redirect),
        };
    }
    match ports.map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(Mode::Pod(Ports::Unbound)),
        Some(s) => Ok(Mode::Pod(Ports::Listed(parse_ports(s)?))),
    }
}

fn parse_ports(s: &str) -> Result<Vec<Port>, ModeError> {
    let mut v: Vec<Port> = Vec::new();
    let items: Vec<&str> = s.split(',').map(str::trim).collect();
    if items.len() > MAX_PORTS {
        return Err(ModeError::TooMany(items.len()));
    }
    for item in items {
        let bad = |why| ModeError::BadPort {
            item: item.to_string(),
            why,
        };
        let (num, proto) = match item.split_once('/') {
            None => (item, Proto::Tcp),
            Some((n, "tcp")) => (n, Proto::Tcp),
            Some((n, "udp")) => (n, Proto::Udp),
            Some(_) => return Err(bad("the protocol must be tcp or udp")),
        };
        let port: u16 = num
            .parse()
            .map_err(|_| bad("not a number from 1 to 65535"))?;
        if port == 0 {
            return Err(bad("not a number from 1 to 65535"));
        }
        let p = Port { proto, port };
        if v.contains(&p) {
            return Err(bad("listed twice"));
        }
        v.push(p);
    }
    Ok(v)
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
    fn the_annotation_overrides_the_config_default() {
        assert_eq!(of(&ann(&[]), "redirect").unwrap(), Mode::Redirect);
        assert_eq!(of(&ann(&[]), "pod").unwrap(), Mode::Pod(Ports::Unbound));
        let r = ann(&[(MODE_ANNOTATION, "redirect")]);
        assert_eq!(of(&r, "pod").unwrap(), Mode::Redirect);
        let k = ann(&[("io.kubernetes.cri.container-name", "user-container")]);
        assert_eq!(of(&k, "pod").unwrap(), Mode::Static);
    }

    #[test]
    fn a_container_named_key_wins_over_the_pod_wide_one() {
        let pod = [
            (MODE_ANNOTATION, "pod"),
            (PORTS_ANNOTATION, "80"),
            ("com.urunc.network.ports.api", "9090/udp"),
        ];
        let mut a = ann(&pod);
        a.insert(CONTAINER_NAME.into(), "api".into());
        let want = Ports::decode("u9090").unwrap();
        assert_eq!(of(&a, "redirect").unwrap(), Mode::Pod(want));
        a.insert(CONTAINER_NAME.into(), "web".into());
        let want = Ports::decode("t80").unwrap();
        assert_eq!(of(&a, "redirect").unwrap(), Mode::Pod(want));
        a.insert("com.urunc.network.mode.web".into(), "redirect".into());
        a.remove(PORTS_ANNOTATION);
        assert_eq!(of(&a, "redirect").unwrap(), Mode::Redirect);
    }

    #[test]
    fn ports_parse_with_protocols() {
        let a = ann(&[
            (MODE_ANNOTATION, "pod"),
            (PORTS_ANNOTATION, "80, 8443/tcp,53/udp"),
        ]);
        let Mode::Pod(Ports::Listed(p)) = of(&a, "redirect").unwrap() else {
            panic!("pod mode with listed ports")
        };
        assert_eq!(p.len(), 3);
        assert_eq!(p[2].to_string(), "53/udp");
        let enc = Ports::Listed(p.clone()).encode();
        assert_eq!(enc, "t80,t8443,u53");
        assert_eq!(Ports::decode(&enc), Some(Ports::Listed(p)));
    }

    #[test]
    fn bad_values_are_clear_errors() {
        let e = of(&ann(&[(MODE_ANNOTATION, "bridge")]), "redirect").unwrap_err();
        assert!(e.to_string().contains("use redirect or pod"), "{e}");
        for bad in ["0", "70000", "80/sctp", "http", "80,80"] {
            let a = ann(&[(MODE_ANNOTATION, "pod"), (PORTS_ANNOTATION, bad)]);
            assert!(
                matches!(of(&a, "redirect"), Err(ModeError::BadPort { .. })),
                "{bad}"
            );
        }
        let many = (1..=30)
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let a = ann(&[(MODE_ANNOTATION, "pod"), (PORTS_ANNOTATION, &many)]);
        assert!(matches!(of(&a, "redirect"), Err(ModeError::TooMany(30))));
        let a = ann(&[(PORTS_ANNOTATION, "80")]);
        assert!(matches!(
            of(&a, "redirect"),
            Err(ModeError::PortsWithoutPod)
        ));
    }

    #[test]
    fn overlaps() {
        let a = Ports::decode("t80,u53").unwrap();
        let b = Ports::decode("t53,t81").unwrap();
        assert_eq!(a.overlap(&b), None, "53/udp and 53/tcp are different ports");
        let c = Ports::decode("u53").unwrap();
        assert_eq!(a.overlap(&c).as_deref(), Some("port 53/udp is"));
        assert!(Ports::Unbound.overlap(&a).is_some());
        let none = Ports::Listed(Vec::new());
        assert_eq!(Ports::decode(&none.encode()), Some(none.clone()));
        assert_eq!(none.overlap(&a), None);
        assert_eq!(none.overlap(&Ports::Unbound), None);
    }

    #[test]
    fn the_longest_encoding_fits_the_user_data() {
        let v: Vec<Port> = (0..MAX_PORTS as u16)
            .map(|i| Port {
                proto: Proto::Udp,
                port: 65535 - i,
            })
            .collect();
        // "urunc <pid> <start time> <ports> ": pid and start time at most 10 and 20 digits
        let header = "urunc 4294967295 18446744073709551615 ".len();
        assert!(header + Ports::Listed(v).encode().len() + 1 < super::super::nft::USERDATA_MAX);
    }
}
