//! Starting the program and looking after it: identity, environment, signals, zombies.

use crate::channel::{Channel, Command};
use crate::config::Config;
use crate::exec::Execs;
use crate::fds;
use crate::sys;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The signals urunit takes over (blocked and read from a signalfd).
pub const SIGNALS: [libc::c_int; 9] = [
    libc::SIGCHLD,
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGPWR,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
];

pub fn home_of(uid: u32) -> String {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && f[2].parse() == Ok(uid))
        .map(|f| f[5].to_string())
        .unwrap_or_else(|| "/".into())
}

/// The program's environment: the container's, plus PATH and HOME when missing.
pub fn environment(cfg: &Config, hostname: &str) -> Vec<String> {
    let mut env = cfg.env.clone();
    let has = |env: &[String], k: &str| env.iter().any(|e| e.split('=').next() == Some(k));
    if !has(&env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    if !has(&env, "HOME") {
        env.push(format!("HOME={}", home_of(cfg.uid)));
    }
    if !has(&env, "HOSTNAME") {
        env.push(format!("HOSTNAME={hostname}"));
    }
    env
}

/// `prog` itself if it holds a `/`, else the first executable match in PATH.
pub fn resolve(prog: &str, env: &[String]) -> String {
    if prog.contains('/') {
        return prog.to_string();
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    use std::os::unix::fs::PermissionsExt;
    path.split(':')
        .map(|d| format!("{}/{prog}", if d.is_empty() { "." } else { d }))
        .find(|p| {
            std::fs::metadata(p)
                .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
                .unwrap_or(false)
        })
        .unwrap_or_else(|| prog.to_string())
}

/// Forks and execs the program; returns its pid. Exec failures end the child with 127
/// (not found) or 126 (other), after printing the reason.
pub fn spawn(args: &[String], cfg: &Config, env: &[String]) -> Result<libc::pid_t, String> {
    let path = resolve(&args[0], env);
    let c = |s: &str| sys::cstr(s).map_err(|e| format!("{s:?}: {e}"));
    let cpath = c(&path)?;
    let argv = args.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
    let cenv = env.iter().map(|a| c(a)).collect::<Result<Vec<_>, _>>()?;
    let pid = sys::fork().map_err(|e| format!("fork: {e}"))?;
    if pid > 0 {
        return Ok(pid);
    }
    sys::reset_signals();
    if let Err((step, e)) = sys::become_user(cfg.uid, cfg.gid, &cfg.groups, &cfg.cwd) {
        let what = if step == "chdir" {
            format!("chdir {}", cfg.cwd)
        } else {
            step.into()
        };
        eprintln!("urunit: {what}: {e}");
        sys::exit_now(126);
    }
    let e = sys::execve(&cpath, &argv, &cenv);
    eprintln!("urunit: exec {path}: {e}");
    sys::exit_now(if e.raw_os_error() == Some(libc::ENOENT) {
        127
    } else {
        126
    })
}

/// Forwards signals and host commands to the program, serves exec sessions (`exec.rs`),
/// reaps every zombie, and returns the program's status once it has exited.
pub fn supervise(
    pid: libc::pid_t,
    sigfd: &std::os::fd::OwnedFd,
    mut chan: Option<&mut Channel>,
    grace: Duration,
    debug: bool,
) -> i32 {
    let mut deadline: Option<Instant> = None;
    let mut killed = false;
    let mut execs = Execs::new(debug);
    loop {
        while let Some(r) = fds::reap() {
            if r.pid == pid {
                return if r.signaled {
                    128 + i32::from(r.value)
                } else {
                    r.value.into()
                };
            }
            if let Some(c) = chan.as_deref_mut() {
                execs.reaped(&r, c);
            }
        }
        if let Some(d) = deadline {
            if !killed && Instant::now() >= d {
                if debug {
                    eprintln!("urunit: grace period over, killing the program");
                }
                sys::kill(-1, libc::SIGKILL);
                killed = true;
            }
        }
        let timeout = match deadline {
            Some(d) if !killed => {
                d.saturating_duration_since(Instant::now()).as_millis() as i32 + 1
            }
            _ => -1,
        };
        let cfd = chan.as_ref().map(|c| c.fd()).unwrap_or(-1);
        let mut set = vec![(sigfd.as_raw_fd(), libc::POLLIN), (cfd, libc::POLLIN)];
        set.extend(execs.poll_set());
        let rev = fds::poll(&set, timeout);
        let mut term = false;
        if rev[0] != 0 {
            while let Some(sig) = sys::read_signal(sigfd.as_raw_fd()) {
                match sig {
                    libc::SIGCHLD => {}
                    libc::SIGTERM | libc::SIGINT | libc::SIGPWR => term = true,
                    s => sys::kill(pid, s),
                }
            }
        }
        if let Some(c) = chan.as_deref_mut() {
            if rev[1] != 0 {
                for cmd in c.read_commands() {
                    match cmd {
                        Command::Term => term = true,
                        Command::Signal(s) => sys::kill(pid, s),
                        Command::Exec(stream, m) => execs.on_message(stream, m, c),
                    }
                }
            }
            execs.on_events(&rev[2..], c);
        }
        if term && deadline.is_none() {
            if debug {
                eprintln!("urunit: shutdown requested, SIGTERM to the program");
            }
            sys::kill(pid, libc::SIGTERM);
            deadline = Some(Instant::now() + grace);
        }
    }
}

/// Waits for `pid` without a signalfd (fallback), reaping others on the way.
pub fn wait_for(pid: libc::pid_t) -> i32 {
    loop {
        match sys::reap() {
            sys::Reaped::Exited(p, code) if p == pid => return code,
            sys::Reaped::Exited(..) => {}
            sys::Reaped::None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// After the program: SIGKILL whatever is left and reap it (bounded).
pub fn kill_remaining() {
    sys::kill(-1, libc::SIGKILL);
    let end = Instant::now() + Duration::from_secs(2);
    while Instant::now() < end {
        let r = sys::wait_any_nohang();
        if r < 0 {
            return; // ECHILD: nothing left
        }
        if r == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_defaults() {
        let cfg = Config {
            env: vec!["A=1".into(), "PATH=/x".into()],
            uid: 4242,
            ..Default::default()
        };
        let env = environment(&cfg, "h");
        assert_eq!(env, ["A=1", "PATH=/x", "HOME=/", "HOSTNAME=h"]);
        assert_eq!(resolve("/bin/sh", &env), "/bin/sh");
        assert_eq!(resolve("nonexistent-xyz", &env), "nonexistent-xyz");
    }
}
