//! Command-line parsing: global flags before the verb (as go-runc and conmon place them), then
//! one struct per verb. No logic here.

use std::ffi::OsString;
use std::path::PathBuf;

mod verbs;

pub const USAGE: &str = "usage: urunc [global options] COMMAND [options] <container-id>

urunc runs unikernels and Linux guests as OCI containers inside a VM or sandbox monitor.

commands:
  create    create a container (--bundle DIR, --pid-file FILE, --console-socket SOCK)
  start     start a created container
  run       create and start a container, wait for it unless --detach
  state     print the state of a container as JSON
  kill      send a signal (default SIGTERM) to a container (--all)
  delete    delete a container (--force)
  ps        list the processes of a container (--format table|json)
  list      list containers (--format table|json)
  pause     freeze a container
  resume    thaw a paused container
  update    change resource limits (--resources FILE|-)
  exec      run a process in a Linux guest (urunit); unikernels refuse at once; delegated: runc
  features  print the features this runtime supports as JSON
  spec      write a starting config.json with urunc annotations
  check     tell whether this host can run unikernels

global options:
  --root DIR            state directory (default /run/urunc, or $XDG_RUNTIME_DIR/urunc when not root)
  --log FILE            log file (default stderr)
  --log-format FMT      text or json
  --debug               debug logging
  --systemd-cgroup      cgroupsPath is slice:prefix:name
  --rootless BOOL       accepted for compatibility
  --version, --help";

#[derive(Debug, Clone, Default)]
pub struct Global {
    pub root: Option<PathBuf>,
    pub log: Option<PathBuf>,
    pub log_json: bool,
    pub debug: bool,
    pub systemd_cgroup: bool,
    pub rootless: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CreateArgs {
    pub id: String,
    pub bundle: PathBuf,
    pub pid_file: Option<PathBuf>,
    pub console_socket: Option<PathBuf>,
    pub preserve_fds: u32,
    pub detach: bool,
}

#[derive(Debug, Clone)]
pub enum Command {
    Create(CreateArgs),
    Run(CreateArgs),
    Start {
        id: String,
    },
    State {
        id: String,
    },
    Kill {
        id: String,
        signal: String,
        all: bool,
    },
    Delete {
        id: String,
        force: bool,
    },
    Ps {
        id: String,
        json: bool,
    },
    List {
        json: bool,
        quiet: bool,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Update {
        id: String,
        resources: Option<String>,
        flags: Vec<(String, String)>,
    },
    Exec(crate::exec_args::ExecArgs),
    Features,
    Spec {
        bundle: PathBuf,
    },
    Check {
        json: bool,
    },
    Version,
    Help,
    /// One verb's usage (`urunc VERB --help`).
    Usage(&'static str),
}

fn global_takes_value(flag: &str) -> bool {
    matches!(
        flag,
        "--root"
            | "--log"
            | "--log-format"
            | "--log-level"
            | "--rootless"
            | "--cgroup-manager"
            | "--criu"
    )
}

#[cfg(test)]
pub fn parse(argv: Vec<OsString>) -> Result<(Global, Command), String> {
    parse_keeping_globals(argv).map_err(|(_, e)| e)
}

/// `parse`, also returning the global options read before a failure (the error must reach the
/// log they name, in its format).
pub fn parse_keeping_globals(argv: Vec<OsString>) -> Result<(Global, Command), (Global, String)> {
    let mut g = Global::default();
    match parse_into(argv, &mut g) {
        Ok(c) => Ok((g, c)),
        Err(e) => Err((g, e)),
    }
}

fn parse_into(argv: Vec<OsString>, g: &mut Global) -> Result<Command, String> {
    let mut it = argv.into_iter().map(|a| {
        a.into_string()
            .map_err(|a| format!("argument {a:?} is not UTF-8"))
    });
    let verb = match globals(&mut it, g)? {
        Leading::Verb(v) => v,
        Leading::Done(c) => return Ok(c),
    };
    let rest: Vec<String> = it.collect::<Result<Vec<String>, String>>()?;
    if let Some(u) = crate::cli_usage::verb(&verb) {
        if crate::cli_usage::wants_help(&verb, &rest) {
            return Ok(Command::Usage(u));
        }
    }
    if verb == "help" {
        return Ok(match rest.first() {
            Some(v) => {
                Command::Usage(crate::cli_usage::verb(v).ok_or(format!("unknown command {v:?}"))?)
            }
            None => Command::Help,
        });
    }
    if verb == "exec" {
        return crate::exec_args::parse(rest).map(Command::Exec);
    }
    let rest: Vec<OsString> = rest.into_iter().map(OsString::from).collect();
    let mut a = pico_args::Arguments::from_vec(rest);
    use verbs as v;
    let cmd = match verb.as_str() {
        "create" | "run" => v::create_or_run(&mut a, &verb)?,
        "start" => Command::Start {
            id: one_id(&mut a, &verb)?,
        },
        "state" => Command::State {
            id: one_id(&mut a, &verb)?,
        },
        "kill" => v::kill(a)?,
        "delete" => {
            let force = a.contains(["-f", "--force"]);
            Command::Delete {
                force,
                id: one_id(&mut a, &verb)?,
            }
        }
        "ps" => v::ps(a)?,
        "list" => v::list(a)?,
        "pause" => Command::Pause {
            id: one_id(&mut a, &verb)?,
        },
        "resume" => Command::Resume {
            id: one_id(&mut a, &verb)?,
        },
        "update" => v::update(&mut a, &verb)?,
        "features" => {
            no_more(a, "features")?;
            Command::Features
        }
        "spec" => v::spec(a)?,
        "check" => v::check(a)?,
        "version" => Command::Version,
        other => return Err(format!("unknown command {other:?}")),
    };
    Ok(cmd)
}

/// What the global options end with: the verb, or a command of their own (`--version`).
enum Leading {
    Verb(String),
    Done(Command),
}

/// Reads the global options into `g`, up to the verb.
fn globals(
    it: &mut impl Iterator<Item = Result<String, String>>,
    g: &mut Global,
) -> Result<Leading, String> {
    while let Some(arg) = it.next() {
        let arg = arg?;
        if !arg.starts_with('-') {
            return Ok(Leading::Verb(arg));
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            match &inline {
                Some(v) => Ok(v.clone()),
                None => it
                    .next()
                    .transpose()?
                    .ok_or_else(|| format!("flag {flag} needs a value")),
            }
        };
        match flag.as_str() {
            "--version" | "-v" => return Ok(Leading::Done(Command::Version)),
            "--help" | "-h" => return Ok(Leading::Done(Command::Help)),
            "--debug" => g.debug = true,
            "--systemd-cgroup" => g.systemd_cgroup = inline.as_deref() != Some("false"),
            "--root" => g.root = Some(PathBuf::from(value()?)),
            "--log" => g.log = Some(PathBuf::from(value()?)).filter(|p| !p.as_os_str().is_empty()),
            "--log-format" => {
                g.log_json = match value()?.as_str() {
                    "json" => true,
                    "text" | "" => false,
                    other => return Err(format!("invalid log-format: {other}")),
                }
            }
            "--rootless" => g.rootless = Some(value()?),
            f if global_takes_value(f) => {
                value()?;
            }
            other => return Err(format!("unknown global option {other}")),
        }
    }
    Err("no command given".into())
}

fn free(a: pico_args::Arguments) -> Result<Vec<String>, String> {
    let rest = a.finish();
    let mut out = Vec::new();
    for r in rest {
        let s = r
            .into_string()
            .map_err(|r| format!("argument {r:?} is not UTF-8"))?;
        if s.starts_with('-') && s.len() > 1 && s.parse::<i64>().is_err() {
            return Err(format!("unknown option {s}"));
        }
        out.push(s);
    }
    Ok(out)
}

fn one_id(a: &mut pico_args::Arguments, verb: &str) -> Result<String, String> {
    let rest = free(std::mem::replace(
        a,
        pico_args::Arguments::from_vec(Vec::new()),
    ))?;
    match rest.len() {
        1 => Ok(rest.into_iter().next().unwrap_or_default()),
        0 => Err(format!(
            "{verb}: requires exactly 1 argument: <container-id>"
        )),
        _ => Err(format!(
            "{verb}: requires exactly 1 argument: <container-id>, got {rest:?}"
        )),
    }
}

fn no_more(a: pico_args::Arguments, verb: &str) -> Result<(), String> {
    let rest = free(a)?;
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("{verb}: unexpected arguments {rest:?}"))
    }
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
