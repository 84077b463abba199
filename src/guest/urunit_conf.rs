//! Host side of urunit (the init of Linux guests): its configuration file and urunc's argument
//! quoting. The format is documented in `init/src/config.rs`; this writes the urunc sections
//! (`UES`, `UCS`, `UBS`) plus the extensions `GROUPS:` and `UNS`.
//! (Placeholder wiring by the urunit branch; the guest-types branch owns the final shape.)

use crate::plan::PlanInput;
use std::io::Write;
use std::path::Path;

/// Path of the file inside the guest's initrd, as passed in `URUNIT_CONFIG=`.
pub const GUEST_PATH: &str = "/urunit.conf";

/// urunc's convention (each argument trimmed, wrapped in single quotes if it has a space),
/// extended as urunit parses it: arguments holding a `'` (or empty) are quoted too, with
/// each `'` written as `'\''`, so any argument survives.
pub fn quote_args(args: &[String]) -> String {
    args.iter()
        .map(|a| {
            let a = a.trim();
            if a.contains([' ', '\'', '\t']) || a.is_empty() {
                format!("'{}'", a.replace('\'', "'\\''"))
            } else {
                a.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn render(input: &PlanInput) -> String {
    let p = &input.process;
    let mut s = String::from("UES\n");
    for e in &p.env {
        s.push_str(e);
        s.push('\n');
    }
    s.push_str(&format!("UEE\nUCS\nUID:{}\nGID:{}\n", p.uid, p.gid));
    if !p.additional_gids.is_empty() {
        let g: Vec<String> = p.additional_gids.iter().map(|g| g.to_string()).collect();
        s.push_str(&format!("GROUPS:{}\n", g.join(",")));
    }
    s.push_str(&format!("WD:{}\nUCE\nUBS\n", p.cwd));
    for b in input.blocks.iter().filter(|b| b.mount_point != "/") {
        s.push_str(&format!("ID:{}\nMP:{}\n", b.id, b.mount_point));
    }
    s.push_str("UBE\n");
    if let Some(n) = &input.net {
        s.push_str(&format!("UNS\nMAC:{}\nIP:{}/{}\n", n.mac, n.ip, n.prefix));
        if let Some(gw) = n.gateway {
            s.push_str(&format!("GW:{gw}\n"));
        }
        s.push_str(&format!("MTU:{}\n", n.mtu));
        for d in &n.dns {
            s.push_str(&format!("DNS:{d}\n"));
        }
        for (ip, pfx) in &n.ipv6 {
            s.push_str(&format!("IP6:{ip}/{pfx}\n"));
        }
        if let Some(gw) = n.ipv6_gateway {
            s.push_str(&format!("GW6:{gw}\n"));
        }
        s.push_str("UNE\n");
    }
    s
}

/// Appends `/urunit.conf` (mode 0400, root) as a newc cpio record to the initrd, as urunc
/// does; the kernel unpacks concatenated archives and the last record of a name wins.
pub fn append_to_initrd(initrd: &Path, text: &str) -> std::io::Result<()> {
    let name = GUEST_PATH.trim_start_matches('/');
    let mut rec = Vec::new();
    let mut entry = |name: &str, mode: u32, body: &[u8]| {
        rec.extend_from_slice(
            format!(
                "070701{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}{:08X}",
                0,
                mode,
                0,
                0,
                1,
                0,
                body.len(),
                0,
                0,
                0,
                0,
                name.len() + 1,
                0
            )
            .as_bytes(),
        );
        rec.extend_from_slice(name.as_bytes());
        rec.push(0);
        while rec.len() % 4 != 0 {
            rec.push(0);
        }
        rec.extend_from_slice(body);
        while rec.len() % 4 != 0 {
            rec.push(0);
        }
    };
    entry(name, 0o100400, text.as_bytes());
    entry("TRAILER!!!", 0, b"");
    let mut f = std::fs::OpenOptions::new().append(true).open(initrd)?;
    // keep the archive 4-byte aligned where the previous one ended unaligned
    let len = f.metadata()?.len();
    let pad = vec![0u8; ((4 - len % 4) % 4) as usize];
    f.write_all(&pad)?;
    f.write_all(&rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_matches_urunc() {
        let a: Vec<String> = ["/bin/echo", " hello world ", "x"]
            .map(String::from)
            .to_vec();
        assert_eq!(quote_args(&a), "/bin/echo 'hello world' x");
        let b: Vec<String> = ["it's", ""].map(String::from).to_vec();
        assert_eq!(quote_args(&b), r"'it'\''s' ''");
    }

    #[test]
    fn appends_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("initrd");
        std::fs::write(&p, b"abc").unwrap();
        append_to_initrd(&p, "UES\nUEE\n").unwrap();
        let d = std::fs::read(&p).unwrap();
        assert_eq!(&d[4..10], b"070701");
        assert!(d.windows(11).any(|w| w == b"urunit.conf"));
    }
}
