//! The arguments of each verb with options of its own (`cli` dispatches here).

use super::{free, no_more, one_id, Command, CreateArgs};
use std::path::PathBuf;

fn e(err: pico_args::Error) -> String {
    err.to_string()
}

/// `create` and `run` (runc's options that change nothing here are accepted).
pub fn create_or_run(a: &mut pico_args::Arguments, verb: &str) -> Result<Command, String> {
    let c = CreateArgs {
        bundle: a
            .opt_value_from_str(["-b", "--bundle"])
            .map_err(e)?
            .unwrap_or_else(|| PathBuf::from(".")),
        pid_file: a.opt_value_from_str("--pid-file").map_err(e)?,
        console_socket: a.opt_value_from_str("--console-socket").map_err(e)?,
        preserve_fds: a
            .opt_value_from_str("--preserve-fds")
            .map_err(e)?
            .unwrap_or(0),
        detach: a.contains(["-d", "--detach"]),
        id: {
            a.contains("--no-pivot");
            a.contains("--no-new-keyring");
            let _: Option<String> = a.opt_value_from_str("--pidfd-socket").map_err(e)?;
            String::new()
        },
    };
    let id = one_id(a, verb)?;
    let c = CreateArgs { id, ..c };
    Ok(if verb == "create" {
        Command::Create(c)
    } else {
        Command::Run(c)
    })
}

pub fn kill(mut a: pico_args::Arguments) -> Result<Command, String> {
    let all = a.contains(["-a", "--all"]);
    let mut free = free(a)?;
    if free.is_empty() || free.len() > 2 {
        return Err("kill: usage: urunc kill [--all] <container-id> [signal]".into());
    }
    let signal = if free.len() == 2 {
        free.pop().unwrap_or_default()
    } else {
        "SIGTERM".into()
    };
    Ok(Command::Kill {
        id: free.remove(0),
        signal,
        all,
    })
}

/// `--format table|json` (table by default).
fn format_json(a: &mut pico_args::Arguments) -> Result<bool, String> {
    let fmt: String = a
        .opt_value_from_str(["-f", "--format"])
        .map_err(e)?
        .unwrap_or_else(|| "table".into());
    match fmt.as_str() {
        "json" => Ok(true),
        "table" => Ok(false),
        other => Err(format!("invalid format option: {other}")),
    }
}

pub fn ps(mut a: pico_args::Arguments) -> Result<Command, String> {
    let json = format_json(&mut a)?;
    let free = free(a)?;
    // `ps` args after the id (runc passes them to ps(1)) are accepted and ignored.
    let id = free
        .into_iter()
        .next()
        .ok_or("ps: usage: urunc ps [--format table|json] <container-id>")?;
    Ok(Command::Ps { id, json })
}

pub fn list(mut a: pico_args::Arguments) -> Result<Command, String> {
    let json = format_json(&mut a)?;
    let quiet = a.contains(["-q", "--quiet"]);
    no_more(a, "list")?;
    Ok(Command::List { json, quiet })
}

/// runc's resource flags, passed on by name.
const UPDATE_FLAGS: [&str; 9] = [
    "--memory",
    "--memory-reservation",
    "--memory-swap",
    "--cpu-quota",
    "--cpu-period",
    "--cpu-share",
    "--cpuset-cpus",
    "--cpuset-mems",
    "--pids-limit",
];

pub fn update(a: &mut pico_args::Arguments, verb: &str) -> Result<Command, String> {
    let resources = a.opt_value_from_str(["-r", "--resources"]).map_err(e)?;
    let mut flags = Vec::new();
    for f in UPDATE_FLAGS {
        if let Some(v) = a.opt_value_from_str::<_, String>(f).map_err(e)? {
            flags.push((f.to_string(), v));
        }
    }
    Ok(Command::Update {
        resources,
        flags,
        id: one_id(a, verb)?,
    })
}

pub fn spec(mut a: pico_args::Arguments) -> Result<Command, String> {
    let bundle = a
        .opt_value_from_str(["-b", "--bundle"])
        .map_err(e)?
        .unwrap_or_else(|| PathBuf::from("."));
    no_more(a, "spec")?;
    Ok(Command::Spec { bundle })
}

pub fn check(mut a: pico_args::Arguments) -> Result<Command, String> {
    let fmt: Option<String> = a.opt_value_from_str(["-f", "--format"]).map_err(e)?;
    no_more(a, "check")?;
    Ok(Command::Check {
        json: fmt.as_deref() == Some("json"),
    })
}
