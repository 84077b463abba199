//! urunit: PID 1 inside Linux guests started by urunc.
//!
//! It mounts what programs expect, reads its configuration (`config`), loads the kernel
//! modules shipped in the initrd (`modules`), configures the network over netlink (`net`),
//! mounts block volumes, runs the program given after `--` on the kernel command line
//! (`cmdline`) with the container's environment and identity, forwards signals and host
//! requests to it, reaps zombies, reports its exit status to the host over the channel the
//! configuration names (`channel`: the ISA serial port ttyS1 on x86, a virtio-serial port on
//! aarch64; framing in `urunit-proto`), and powers off.
//! It prints nothing of its own unless debugging is on (`URUNIT_DEBUG=1`, or the
//! configuration's `debug`); errors go to the console prefixed with `urunit:`.

mod channel;
mod cmdline;
mod config;
mod cpio;
mod exec;
mod exec_spawn;
mod fds;
mod modules;
mod mounts;
mod net;
mod netlink;
mod process;
mod root;
mod sys;

use std::time::Duration;

pub fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_default()
}

/// Reads the configuration named on the command line; an absent name means the defaults.
fn load_config(cl: &cmdline::Cmdline) -> Result<config::Config, String> {
    let mut cfg = match cl.config.as_deref() {
        None => config::Config::default(),
        Some(path) => {
            use std::io::Read;
            let mut data = Vec::new();
            std::fs::File::open(path)
                .and_then(|f| f.take(config::MAX_FILE).read_to_end(&mut data))
                .map_err(|e| format!("read config {path}: {e}"))?;
            config::decode(&data)?
        }
    };
    cfg.debug |= cl.debug;
    if cfg.net.is_none() {
        if let Some((net, host)) = cl.ip.as_deref().and_then(config::parse_ip_param) {
            cfg.net = Some(net);
            cfg.hostname = cfg.hostname.or(host);
        }
    }
    Ok(cfg)
}

/// Everything up to the program's start; an error here is fatal (status 1).
fn setup(cl: &cmdline::Cmdline, cfg: &config::Config) -> Result<Vec<String>, String> {
    let debug = cfg.debug;
    let host = cfg.hostname.clone().unwrap_or_else(|| "urunc".into());
    if let Err(e) = sys::sethostname(&host) {
        eprintln!("urunit: sethostname {host}: {e}");
    }
    if let Err(e) = net::configure(cfg.net.as_ref(), debug) {
        eprintln!("urunit: network: {e}");
    }
    if let Err(e) = net::write_resolv_conf(cfg.net.as_ref()) {
        eprintln!("urunit: {e}");
    }
    let mounted = mounts::volumes(&cfg.blocks, debug)?;
    if cl.args.is_empty() {
        return Err("no program given after -- on the kernel command line".into());
    }
    Ok(mounted)
}

fn main() {
    if std::process::id() != 1 {
        eprintln!("urunit: must run as PID 1 inside a guest (it mounts, kills every process and powers off)");
        std::process::exit(1);
    }
    for e in mounts::basic() {
        eprintln!("urunit: {e}");
    }
    sys::disable_cad();
    let sigfd = match sys::signalfd(&process::SIGNALS) {
        Ok(fd) => Some(fd),
        Err(e) => {
            eprintln!("urunit: signalfd: {e}");
            None
        }
    };
    let cmdline_text = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let mut cl = cmdline::parse(&cmdline_text);
    let (mut cfg, cfg_err) = match load_config(&cl) {
        Ok(c) => (c, None),
        Err(e) => (
            config::Config {
                debug: cl.debug,
                ..Default::default()
            },
            Some(e),
        ),
    };
    if let Some(args) = cfg.args.take() {
        cl.args = args;
    }
    let debug = cfg.debug;
    if debug {
        eprintln!("urunit: started at {}s, argv {:?}", uptime(), cl.args);
    }
    for e in modules::load_all(debug) {
        eprintln!("urunit: {e}");
    }
    if debug {
        eprintln!("urunit: modules loaded at {}s", uptime());
    }
    // a boot initrd: mount the real root and move there (see root.rs)
    let mut root_err = None;
    if let Some(r) = root::parse(&cmdline_text).filter(|_| sys::root_is_initramfs()) {
        match root::switch(&r, debug) {
            Ok(()) => {
                for e in mounts::basic() {
                    eprintln!("urunit: {e}");
                }
            }
            Err(e) => root_err = Some(e),
        }
    }
    let mut chan = channel::Channel::open(cfg.channel.as_ref(), debug);
    let mut mounted = Vec::new();
    let status = match cfg_err.or(root_err).map_or_else(|| setup(&cl, &cfg), Err) {
        Err(e) => {
            eprintln!("urunit: {e}");
            1
        }
        Ok(m) => {
            mounted = m;
            let host = cfg.hostname.clone().unwrap_or_else(|| "urunc".into());
            let env = process::environment(&cfg, &host);
            match (process::spawn(&cl.args, &cfg, &env), sigfd.as_ref()) {
                (Err(e), _) => {
                    eprintln!("urunit: {e}");
                    127
                }
                (Ok(pid), Some(sfd)) => {
                    if debug {
                        eprintln!("urunit: program started at {}s (pid {pid})", uptime());
                    }
                    let grace = Duration::from_secs(cfg.grace_secs.into());
                    process::supervise(pid, sfd, chan.as_mut(), grace, debug)
                }
                (Ok(pid), None) => process::wait_for(pid),
            }
        }
    };
    if debug {
        eprintln!("urunit: program exited with {status} at {}s", uptime());
    }
    process::kill_remaining();
    for m in mounted.iter().rev() {
        if let Err(e) = sys::umount(m) {
            eprintln!("urunit: umount {m}: {e}");
        }
    }
    if let Some(c) = chan.as_mut() {
        c.report_exit(status);
    }
    if !debug {
        // Hide the kernel's final "reboot: Power down" from the program's output.
        let _ = std::fs::write("/proc/sys/kernel/printk", "0");
    }
    let e = sys::power_off();
    eprintln!("urunit: power off: {e}");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
