//! A fake Solo5 tender that keeps the rules of solo5-hvt / solo5-spt v0.12.1. It runs when
//! the fake is executed under the name `solo5-hvt` or `solo5-spt` (a copy of the binary with
//! that name), before the general fake and before Rust's runtime starts (an `.init_array`
//! entry, as a C tender's `main`), so that under urunc's hvt seccomp allow-list it makes only
//! the syscalls the real tender makes. Sources (solo5 v0.12.1):
//!
//! - `tenders/hvt/hvt_main.c`, `tenders/spt/spt_main.c`: options up to the first non-option
//!   (or `--`), which is the unikernel; `--help`/`--version` end the first pass; the ELF must
//!   carry an ABI1 note for this target (hvt 1, spt 2; ABI version 2) and a valid MFT1
//!   manifest; an option no module takes is `Invalid option` (exit 1); every declared device
//!   must be attached; the remaining arguments, joined with spaces, are the guest's command line;
//!   SIGTERM/SIGINT end the tender with `Exiting on signal N`, status 1;
//! - `tenders/*/..._module_net.c`: `--net:%67[A-Za-z0-9]=%19s`, `--net-mac:NAME=xx:..:xx`, NAME
//!   declared as a network in the manifest; `tenders/common/tap_attach.c` (see `net`);
//! - `tenders/hvt/hvt_module_blk.c`, `tenders/common/block_attach.c`: `--block:NAME=%4096s`
//!   opened read-write (failure: exit 1), `--block-sector-size:NAME=N`, a power of two >= 512;
//! - `tenders/common/elf.c` (`elf_load_note`), `tenders/common/mft.c` (`mft_validate`).
//!
//! Then it plays the guest: with a network it answers ARP and ICMP echo on the tap for the
//! address of its command line (`--ipv4=A.B.C.D/N` as MirageOS takes it, or rumprun's
//! `"addr":"A.B.C.D"`; Solo5's own test_net serves a fixed 10.0.0.2 instead) until SIGTERM, as
//! test_net does; without one it prints its command line and exits 0. For hvt it opens
//! `/dev/kvm` and asks KVM_GET_API_VERSION (what `hvt_init` does first) but creates no VM:
//! the fake needs no working KVM. Test lines on stdout start with `FAKESOLO5-`.

mod elf;
mod net;
mod net_echo;

use std::ffi::CStr;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Hvt,
    Spt,
}

impl Target {
    fn prog(self) -> &'static str {
        match self {
            Target::Hvt => "solo5-hvt",
            Target::Spt => "solo5-spt",
        }
    }
}

type Entry = extern "C" fn(libc::c_int, *const *const libc::c_char, *const *const libc::c_char);

// SAFETY (of the entry below): glibc calls `.init_array` functions with (argc, argv, envp).
#[used]
#[link_section = ".init_array"]
static ENTRY: Entry = entry;

extern "C" fn entry(
    argc: libc::c_int,
    argv: *const *const libc::c_char,
    _: *const *const libc::c_char,
) {
    if argv.is_null() || argc < 1 {
        return;
    }
    let args: Vec<String> = (0..argc as usize)
        // SAFETY: argv holds argc valid NUL-terminated strings.
        .map(|i| unsafe { CStr::from_ptr(*argv.add(i)) })
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    let target = match args[0].rsplit('/').next() {
        Some("solo5-hvt") => Target::Hvt,
        Some("solo5-spt") => Target::Spt,
        _ => return,
    };
    let code = run(target, &args[1..]);
    // SAFETY: ends the process (exit_group) without running Rust's runtime.
    unsafe { libc::_exit(code) }
}

pub fn out(s: &str) {
    write_all(1, s.as_bytes());
}

/// `warnx`: `prog: message` on stderr.
fn warnx(t: Target, s: &str) {
    write_all(2, format!("{}: {s}\n", t.prog()).as_bytes());
}

fn write_all(fd: i32, mut b: &[u8]) {
    while !b.is_empty() {
        // SAFETY: writes from a buffer we own, of its length.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            return;
        }
        b = &b[n as usize..];
    }
}

fn usage(t: Target) -> i32 {
    let text = format!(
        "usage: {} [ CORE OPTIONS ] [ -- ] KERNEL [ ARGS ]\n    --net:NAME=IFACE | @NN\n  [ --net-mac:NAME=HWADDR ]\n    --block:NAME=PATH\n  [ --block-sector-size:NAME=SECTORSIZE ]\n",
        t.prog()
    );
    write_all(2, text.as_bytes());
    1
}

/// A device of the manifest and what was attached to it.
pub struct Device {
    pub name: String,
    pub net: bool,
    pub attached: bool,
    pub mac: Option<[u8; 6]>,
    pub fd: i32,
    pub mtu: i32,
    pub iface: String,
}

fn run(t: Target, args: &[String]) -> i32 {
    // first pass: find the unikernel
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        match args[i].as_str() {
            "--" => {
                i += 1;
                break;
            }
            "--help" => return usage(t),
            "--version" => {
                write_all(
                    2,
                    format!("{} tender, version v0.12.1\nABI version 2\n", t.prog()).as_bytes(),
                );
                return 0;
            }
            _ => i += 1,
        }
    }
    let Some(kernel) = args.get(i) else {
        warnx(t, "Missing KERNEL operand");
        return usage(t);
    };
    let mut devs = match elf::load(t, kernel) {
        Ok(d) => d,
        Err(msg) => {
            warnx(t, &msg);
            return 1;
        }
    };
    // second pass: options for the core and the modules
    let mut a = 0;
    while a < args.len() && args[a].starts_with('-') {
        let opt = args[a].as_str();
        if opt == "--" {
            break;
        }
        let ok = if let Some(m) = opt.strip_prefix("--mem=") {
            // sscanf("%zd"): leading digits; zero is refused
            let digits: String = m.chars().take_while(|c| c.is_ascii_digit()).collect();
            if !digits.parse::<u64>().is_ok_and(|v| v > 0) {
                warnx(t, "Malformed argument to --mem");
                return 1;
            }
            true
        } else if t == Target::Spt && opt == "--x-exec-heap" {
            true // spt's core module (`tenders/spt/spt_core.c`)
        } else {
            match module_option(t, opt, &mut devs) {
                Ok(ok) => ok,
                Err(code) => return code,
            }
        };
        if !ok {
            warnx(t, &format!("Invalid option: `{opt}'"));
            return usage(t);
        }
        a += 1;
    }
    let guest_args = &args[i + 1..];
    let mut missing = false;
    for d in devs.iter().filter(|d| !d.attached) {
        let kind = if d.net { "NET_BASIC" } else { "BLOCK_BASIC" };
        warnx(
            t,
            &format!(
                "Device '{}' of type {kind} declared but not attached.",
                d.name
            ),
        );
        missing = true;
    }
    if missing {
        warnx(
            t,
            "All declared devices must be attached. See --help for syntax.",
        );
        return 1;
    }
    if t == Target::Hvt {
        if let Err(e) = net::kvm_api_version() {
            warnx(t, &e);
            return 1;
        }
    }
    out(&format!("FAKESOLO5-REPORT {}\n", net::status_report()));
    guest(t, &devs, &guest_args.join(" "))
}

/// A module's option: `Ok(true)` taken, `Ok(false)` no module takes it, `Err(code)` fatal.
fn module_option(t: Target, opt: &str, devs: &mut [Device]) -> Result<bool, i32> {
    let (kind, rest) = if let Some(r) = opt.strip_prefix("--net-mac:") {
        ("net-mac", r)
    } else if let Some(r) = opt.strip_prefix("--net:") {
        ("net", r)
    } else if let Some(r) = opt.strip_prefix("--block-sector-size:") {
        ("sector", r)
    } else if let Some(r) = opt.strip_prefix("--block:") {
        ("block", r)
    } else {
        return Ok(false);
    };
    // sscanf("%67[A-Za-z0-9]=%Ns"): the name, then '=', then a word (up to white space)
    let name: String = rest
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .take(67)
        .collect();
    let Some(value) = rest[name.len()..].strip_prefix('=') else {
        return Ok(false);
    };
    let word = |max: usize| -> String {
        value
            .trim_start()
            .chars()
            .take_while(|c| !c.is_whitespace())
            .take(max)
            .collect()
    };
    if name.is_empty() || word(1).is_empty() {
        return Ok(false);
    }
    let net = matches!(kind, "net" | "net-mac");
    let Some(d) = devs.iter_mut().find(|d| d.name == name && d.net == net) else {
        warnx(t, &format!("Resource not declared in manifest: '{name}'"));
        return Ok(false);
    };
    match kind {
        "net" => {
            let iface = word(19);
            match net::tap_attach(&iface) {
                Ok((fd, mtu)) => {
                    (d.fd, d.mtu, d.iface, d.attached) = (fd, mtu, iface.clone(), true);
                    out(&format!(
                        "FAKESOLO5-ATTACH {name} iface={iface} mtu={mtu}\n"
                    ));
                }
                Err(e) => {
                    warnx(t, &format!("Could not attach interface: {iface}: {e}"));
                    return Ok(false);
                }
            }
        }
        "net-mac" => match parse_mac(value) {
            Some(m) => d.mac = Some(m),
            None => return Ok(false),
        },
        "sector" => match value.trim().parse::<u16>() {
            Ok(s) if s >= 512 && s.is_power_of_two() => {}
            Ok(_) => {
                warnx(
                    t,
                    "Block size must be a multiple of 2 greater than or equal 512",
                );
                return Ok(false);
            }
            Err(_) => return Ok(false),
        },
        _ => {
            let path = word(4096);
            match net::block_attach(&path) {
                Ok(cap) => {
                    d.attached = true;
                    out(&format!(
                        "FAKESOLO5-BLOCK {name} path={path} capacity={cap}\n"
                    ));
                }
                Err(e) => {
                    let e = net::strerror(&e);
                    warnx(t, &format!("Could not open block device: {path}: {e}"));
                    return Err(1);
                }
            }
        }
    }
    Ok(true)
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut m = [0u8; 6];
    let mut parts = s.split(':');
    for b in m.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    Some(m)
}

/// The guest: test_net's ping responder with a network, else print the command line. Test
/// only (no Solo5 rule): each word `escape:KIND:ARG` of the command line first runs the probe
/// `KIND ARG` of `escape.rs` in the tender, as an escaped tender attached to its tap would.
fn guest(t: Target, devs: &[Device], cmdline: &str) -> i32 {
    out(&format!("FAKESOLO5-CMDLINE {cmdline}\n"));
    let probes: Vec<String> = cmdline
        .split_whitespace()
        .filter_map(|w| w.trim_matches('"').strip_prefix("escape:"))
        .map(|p| p.replacen(':', " ", 1))
        .collect();
    for p in &probes {
        out(&format!(
            "FAKESOLO5-ESCAPE {p} {}\n",
            crate::escape::probe(p)
        ));
    }
    if !probes.is_empty() {
        out("FAKESOLO5-ESCAPE-DONE\n");
    }
    let Some(d) = devs.iter().find(|d| d.net) else {
        return 0;
    };
    let ip = net::guest_ip(cmdline);
    let mac = match d.mac {
        Some(m) => m,
        None => match net::genmac() {
            Ok(m) => m,
            Err(e) => {
                warnx(
                    t,
                    &format!("Could not open /dev/urandom: {}", net::strerror(&e)),
                );
                return 1;
            }
        },
    };
    let sig = net::serve(d.fd, ip, mac);
    warnx(t, &format!("Exiting on signal {sig}"));
    1
}
