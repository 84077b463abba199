//! urunit's configuration file, built with the one definition in `urunit-proto` (see that
//! crate's docs for the encoding and the compatibility decision): the legacy `UES`/`UCS`/`UBS`
//! text for upstream's urunit where no value can be misread, then the v1 length-prefixed
//! encoding, the only part our urunit reads. The guest reads the file from `/urunit.conf`
//! (initrd rootfs) or `/sys/firmware/initrd` (passed as an extra initrd).

use crate::plan::{NetParams, ProcessParams};
use urunit_proto::{Block, Channel, Config, Net};

/// A volume for urunit to mount.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub id: String,
    pub mount_point: String,
}

/// What urunit is told besides the process.
#[derive(Debug, Clone, Default)]
pub struct Extras<'a> {
    pub volumes: &'a [Volume],
    pub net: Option<&'a NetParams>,
    /// The program's argv when the kernel command line cannot carry it.
    pub args: Option<&'a [String]>,
    pub channel: Option<Channel>,
}

fn net_of(n: &NetParams, hostname: &str) -> (Net, Option<String>) {
    let net = Net {
        mac: Some(n.mac.clone()),
        ip: Some((n.ip, n.prefix)),
        gw: n.gateway,
        mtu: (n.mtu > 0).then_some(n.mtu),
        dns: n.dns.clone(),
        search: n.dns_search.clone(),
        options: n.dns_options.clone(),
        ip6: n.ipv6.clone(),
        gw6: n.ipv6_gateway,
        iface: None,
    };
    (net, (!hostname.is_empty()).then(|| hostname.to_string()))
}

/// The configuration urunit decodes.
pub fn config_of(p: &ProcessParams, x: &Extras) -> Config {
    let (net, hostname) = match x.net {
        Some(n) => {
            let (net, h) = net_of(n, &p.hostname);
            (Some(net), h)
        }
        None => (None, (!p.hostname.is_empty()).then(|| p.hostname.clone())),
    };
    Config {
        env: p.env.clone(),
        uid: p.uid,
        gid: p.gid,
        groups: p.additional_gids.clone(),
        cwd: if p.cwd.is_empty() {
            "/".into()
        } else {
            p.cwd.clone()
        },
        blocks: x
            .volumes
            .iter()
            .map(|v| Block {
                id: v.id.clone(),
                mount_point: v.mount_point.clone(),
            })
            .collect(),
        net,
        hostname,
        args: x.args.map(|a| a.to_vec()),
        channel: x.channel.clone(),
        ..Default::default()
    }
}

/// The file's bytes; an error when a value cannot be given to urunit safely.
pub fn config(p: &ProcessParams, x: &Extras) -> Result<Vec<u8>, String> {
    let (bytes, warnings) = urunit_proto::encode_file(&config_of(p, x)).map_err(|e| e.0)?;
    for w in warnings {
        log::warn!("urunit configuration: {w}");
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_sections_then_the_blob_that_urunit_reads() {
        let p = ProcessParams {
            env: vec!["PATH=/bin".into(), "A=b c".into()],
            uid: 1000,
            gid: 42,
            additional_gids: vec![7],
            cwd: "/srv".into(),
            hostname: "web".into(),
            ..Default::default()
        };
        let v = [Volume {
            id: "vol3".into(),
            mount_point: "/mnt/data".into(),
        }];
        let n = crate::plan::fixture::net();
        let x = Extras {
            volumes: &v,
            net: Some(&n),
            channel: Some(Channel::Serial("ttyS1".into())),
            ..Default::default()
        };
        let bytes = config(&p, &x).unwrap();
        // reference 4.6: the text upstream's urunit reads, first in the file
        let legacy = "UES\nPATH=/bin\nA=b c\nUEE\nUCS\nUID:1000\nGID:42\nWD:/srv\nUCE\nUBS\nID:vol3\nMP:/mnt/data\nUBE\n";
        assert!(bytes.starts_with(legacy.as_bytes()));
        let c = Config::decode_file(&bytes).unwrap();
        assert_eq!(c, config_of(&p, &x));
        assert_eq!((c.groups, c.hostname.as_deref()), (vec![7], Some("web")));
        let net = c.net.unwrap();
        assert_eq!(
            (net.ip, net.gw, net.mtu),
            (Some((n.ip, n.prefix)), n.gateway, Some(n.mtu))
        );
    }

    #[test]
    fn injection_attempts_travel_as_plain_values() {
        let p = ProcessParams {
            env: vec![
                "UEE".into(),
                " UAS".into(),
                "UEE\u{2003}".into(),
                "X=a\nUCS\nUID:0".into(),
            ],
            uid: 1000,
            ..Default::default()
        };
        let bytes = config(&p, &Extras::default()).unwrap();
        let c = Config::decode_file(&bytes).unwrap();
        assert_eq!(c.env, p.env);
        assert_eq!((c.uid, c.args), (1000, None));
        // no UES for a legacy reader, and nothing of the values in the text part
        let text_end = bytes.iter().position(|b| *b == 0).unwrap();
        assert_eq!(
            &bytes[..text_end],
            b"UCS\nUID:1000\nGID:0\nWD:/\nUCE\nUBS\nUBE\n"
        );
        let bad_cwd = ProcessParams {
            cwd: "/a\nUCE".into(),
            ..Default::default()
        };
        assert!(config(&bad_cwd, &Extras::default())
            .unwrap_err()
            .contains("working directory"));
    }
}
