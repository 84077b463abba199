//! `urunc exec`'s command line, in runc's two forms:
//! `exec [-t] [-e K=V]... [-u UID[:GID]] [--cwd DIR] ID CMD [ARG...]` (attached) and
//! `exec --process FILE [--console-socket SOCK] [--detach] [--pid-file FILE] ID` (the shim's
//! and conmon's). Options end at the container id: what follows is the command, untouched.

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecArgs {
    pub id: String,
    pub command: Vec<String>,
    pub process: Option<String>,
    pub console_socket: Option<String>,
    pub pid_file: Option<String>,
    pub detach: bool,
    pub tty: bool,
    pub env: Vec<String>,
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
    pub cwd: Option<String>,
}

const USAGE: &str = "exec: usage: urunc exec [options] <container-id> [command [args...]]";

fn user(v: &str) -> Result<(u32, Option<u32>), String> {
    let bad = || format!("exec: --user {v:?}: expected UID or UID:GID (numbers)");
    match v.split_once(':') {
        Some((u, g)) => Ok((
            u.parse().map_err(|_| bad())?,
            Some(g.parse().map_err(|_| bad())?),
        )),
        None => Ok((v.parse().map_err(|_| bad())?, None)),
    }
}

pub fn parse(rest: Vec<String>) -> Result<ExecArgs, String> {
    let mut a = ExecArgs::default();
    let mut it = rest.into_iter();
    while let Some(arg) = it.next() {
        if !arg.starts_with('-') || arg == "-" {
            a.id = arg;
            a.command = it.collect();
            break;
        }
        if arg == "--" {
            a.id = it.next().ok_or(USAGE)?;
            a.command = it.collect();
            break;
        }
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |inline: Option<String>| {
            inline
                .or_else(|| it.next())
                .ok_or_else(|| format!("exec: option {flag} needs a value"))
        };
        match flag.as_str() {
            "-t" | "--tty" => a.tty = true,
            "-d" | "--detach" => a.detach = true,
            "--no-new-privs" => {}
            "-p" | "--process" => a.process = Some(value(inline)?),
            "--console-socket" => a.console_socket = Some(value(inline)?),
            "--pid-file" => a.pid_file = Some(value(inline)?),
            "-e" | "--env" => a.env.push(value(inline)?),
            "-u" | "--user" => a.user = Some(user(&value(inline)?)?),
            "-g" | "--additional-gids" => {
                let v = value(inline)?;
                a.additional_gids.push(
                    v.parse()
                        .map_err(|_| format!("exec: --additional-gids {v:?} is not a number"))?,
                );
            }
            "--cwd" => a.cwd = Some(value(inline)?),
            "--preserve-fds" | "--process-label" | "--apparmor" | "--cap" | "--cgroup" => {
                let _ = value(inline)?;
            }
            other => return Err(format!("exec: unknown option {other}")),
        }
    }
    if a.id.is_empty() {
        return Err(USAGE.into());
    }
    if a.process.is_none() && a.command.is_empty() {
        return Err("exec: no command given (and no --process file)".into());
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_end_at_the_id_and_the_command_is_kept_whole() {
        let a = parse(v(&[
            "-t",
            "-e",
            "A=1",
            "--env=B=2",
            "-u",
            "1000:1001",
            "--cwd",
            "/tmp",
            "c1",
            "sh",
            "-c",
            "--cwd x",
        ]))
        .unwrap();
        assert_eq!(a.id, "c1");
        assert_eq!(a.command, v(&["sh", "-c", "--cwd x"]));
        assert_eq!(a.env, v(&["A=1", "B=2"]));
        assert_eq!(
            (a.tty, a.user, a.cwd.as_deref()),
            (true, Some((1000, Some(1001))), Some("/tmp"))
        );
    }

    #[test]
    fn the_shims_form() {
        let a = parse(v(&[
            "--process",
            "/run/p.json",
            "--console-socket",
            "/run/c.sock",
            "--detach",
            "--pid-file",
            "/run/pid",
            "c2",
        ]))
        .unwrap();
        assert_eq!(a.process.as_deref(), Some("/run/p.json"));
        assert_eq!(a.console_socket.as_deref(), Some("/run/c.sock"));
        assert_eq!(a.pid_file.as_deref(), Some("/run/pid"));
        assert!(a.detach && a.command.is_empty());
    }

    #[test]
    fn bad_command_lines_say_what_is_wrong() {
        assert!(parse(v(&[])).unwrap_err().contains("usage"));
        assert!(parse(v(&["c3"])).unwrap_err().contains("no command"));
        assert!(parse(v(&["-u", "root", "c3", "id"]))
            .unwrap_err()
            .contains("UID"));
        assert!(parse(v(&["--bogus", "c3", "id"]))
            .unwrap_err()
            .contains("--bogus"));
        assert!(
            parse(v(&["c3", "--pid-file"])).is_ok(),
            "after the id it is the command"
        );
    }
}
