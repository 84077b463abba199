//! urunit's configuration: the one definition is the `urunit-proto` crate (encoding v1,
//! length-prefixed: no value can rewrite another). urunit reads only that encoding, never the
//! legacy `UES`/`UCS`/`UBS` text a host may put before it for upstream's urunit.
//!
//! The file is named by `URUNIT_CONFIG=` on the kernel command line: a file in the initrd
//! (`/urunit.conf`), or `/sys/firmware/initrd` (with `retain_initrd`), where the retained
//! image is either the file as is or a newc cpio archive holding `urunit.conf`. Without a
//! network in the configuration, urunit takes it from the kernel's `ip=` parameter (urunc's
//! `ip=<IP>::<GW>:<MASK>:<host>:<dev>:off`), because distribution kernels lack `CONFIG_IP_PNP`.

use std::net::Ipv4Addr;
pub use urunit_proto::{Block, Config, Net};

/// The largest configuration file urunit reads.
pub const MAX_FILE: u64 = (urunit_proto::config::MAX_FILE + (1 << 20)) as u64;

/// The configuration bytes in `data`: itself, or the `urunit.conf` entry of a newc cpio.
pub fn bytes_of(data: &[u8]) -> &[u8] {
    if data.starts_with(b"070701") || data.starts_with(b"070702") {
        if let Some(t) = crate::cpio::find(data, "urunit.conf") {
            return t;
        }
    }
    data
}

/// Decodes the file's v1 encoding.
pub fn decode(data: &[u8]) -> Result<Config, String> {
    Config::decode_file(bytes_of(data)).map_err(|e| format!("config: {e}"))
}

/// Parses the kernel's `ip=<client>:<server>:<gw>:<netmask>:<host>:<dev>:<autoconf>`.
pub fn parse_ip_param(v: &str) -> Option<(Net, Option<String>)> {
    let f: Vec<&str> = v.split(':').collect();
    let ip: Ipv4Addr = f.first()?.parse().ok()?;
    let gw = f.get(2).and_then(|g| g.parse().ok());
    let prefix = f
        .get(3)
        .and_then(|m| m.parse::<Ipv4Addr>().ok())
        .map(|m| u32::from(m).count_ones() as u8)
        .unwrap_or(24);
    let host = f.get(4).filter(|h| !h.is_empty()).map(|h| h.to_string());
    let iface = f.get(5).filter(|d| !d.is_empty()).map(|d| d.to_string());
    Some((
        Net {
            ip: Some((ip, prefix)),
            gw,
            iface,
            ..Default::default()
        },
        host,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_blob_in_a_cpio_or_after_legacy_text() {
        let c = Config {
            env: vec!["UEE".into(), "A=1".into()],
            uid: 7,
            ..Default::default()
        };
        let (file, _) = urunit_proto::encode_file(&c).unwrap();
        assert_eq!(decode(&file).unwrap(), c);
        // padding after the blob (a retained initrd is page-padded) is ignored
        let mut padded = file.clone();
        padded.extend_from_slice(&[0; 4096]);
        assert_eq!(decode(&padded).unwrap(), c);
        // legacy text alone is not read
        assert!(decode(b"UES\nA=1\nUEE\n").is_err());
    }

    #[test]
    fn ip_param() {
        let (n, h) = parse_ip_param("10.244.1.7::10.244.1.1:255.255.255.0:urunc:eth0:off").unwrap();
        assert_eq!(n.ip, Some(("10.244.1.7".parse().unwrap(), 24)));
        assert_eq!(n.gw, Some("10.244.1.1".parse().unwrap()));
        assert_eq!(n.iface.as_deref(), Some("eth0"));
        assert_eq!(h.as_deref(), Some("urunc"));
    }
}
