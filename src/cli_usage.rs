//! Each verb's usage, printed by `urunc VERB --help` (and `urunc help VERB`) on stdout with
//! exit status 0, as runc does.

/// Each verb and its usage text.
const USAGES: &[(&str, &str)] = &[
    (
        "create",
        "usage: urunc [global options] create [options] <container-id>

create a container from a bundle; `start` then runs it

options:
  -b, --bundle DIR        the bundle (config.json and rootfs), default the current directory
  --pid-file FILE         write the container process's pid to FILE
  --console-socket SOCK   send the pty master to this unix socket (process.terminal)
  --preserve-fds N        pass fds 3..3+N to the monitor
  --no-pivot, --no-new-keyring, --pidfd-socket SOCK
                          accepted for compatibility",
    ),
    (
        "run",
        "usage: urunc [global options] run [options] <container-id>

create and start a container; waits for it and exits with its status unless --detach

options:
  -b, --bundle DIR        the bundle (config.json and rootfs), default the current directory
  -d, --detach            return once the container runs
  --pid-file FILE         write the container process's pid to FILE
  --console-socket SOCK   send the pty master to this unix socket (process.terminal)
  --preserve-fds N        pass fds 3..3+N to the monitor",
    ),
    (
        "start",
        "usage: urunc [global options] start <container-id>

start a created container",
    ),
    (
        "state",
        "usage: urunc [global options] state <container-id>

print the state of a container as JSON (status derived from the kernel)",
    ),
    (
        "kill",
        "usage: urunc [global options] kill [--all] <container-id> [signal]

send a signal (default SIGTERM; a name like KILL or SIGKILL, or a number) to a container

options:
  -a, --all               accepted for compatibility (the container is one process tree)",
    ),
    (
        "delete",
        "usage: urunc [global options] delete [--force] <container-id>

delete a stopped container and everything it set up

options:
  -f, --force             kill a running container first; also cleans up a half-made one",
    ),
    (
        "ps",
        "usage: urunc [global options] ps [--format table|json] <container-id>

list the host processes of a container

options:
  -f, --format FMT        table (default) or json (pids only)",
    ),
    (
        "list",
        "usage: urunc [global options] list [--format table|json] [--quiet]

list the containers under --root

options:
  -f, --format FMT        table (default) or json
  -q, --quiet             ids only",
    ),
    (
        "pause",
        "usage: urunc [global options] pause <container-id>

freeze a running container (cgroup freezer)",
    ),
    (
        "resume",
        "usage: urunc [global options] resume <container-id>

thaw a paused container",
    ),
    (
        "update",
        "usage: urunc [global options] update [options] <container-id>

change a container's cgroup limits

options:
  -r, --resources FILE    OCI linux.resources JSON, or - for stdin
  --memory, --memory-reservation, --memory-swap, --cpu-quota, --cpu-period, --cpu-share,
  --cpuset-cpus, --cpuset-mems, --pids-limit VALUE",
    ),
    (
        "exec",
        "usage: urunc [global options] exec [options] <container-id> <command> [args...]
       urunc [global options] exec --process FILE [--console-socket SOCK] [--detach]
                                    [--pid-file FILE] <container-id>

run a process inside a running Linux guest whose init is urunit (QEMU; x86_64 and aarch64),
with the output on this command's stdio and its exit status (128+N for signal N); with
--detach a small relay carries the streams and its pid goes to --pid-file. Unikernels (no
processes) and guests without urunit's channel refuse at once; containers handed to runc are
exec'd by runc.

options:
  -t, --tty                   a terminal in the guest (the caller's, or --console-socket's)
  -e, --env K=V               add or replace an environment variable
  -u, --user UID[:GID]        run as this user (numeric)
  -g, --additional-gids GID   a supplementary group (repeatable)
  --cwd DIR                   working directory in the guest
  -p, --process FILE          a runtime-spec process (JSON) instead of the options above
  --console-socket SOCK       where the pty master goes (terminal processes)
  -d, --detach                return once the process started
  --pid-file FILE             write the relay's pid here",
    ),
    (
        "features",
        "usage: urunc [global options] features

print the features this runtime supports as JSON (OCI runtime features)",
    ),
    (
        "spec",
        "usage: urunc [global options] spec [--bundle DIR]

write a starting config.json with urunc annotations into DIR (default the current directory)",
    ),
    (
        "check",
        "usage: urunc [global options] check [--format text|json]

tell whether this host can run guests, with which monitors and accelerators;
exit status 0 when at least one monitor can run guests",
    ),
    (
        "help",
        "usage: urunc help [COMMAND]

print the usage of urunc or of one command",
    ),
    (
        "version",
        "usage: urunc version

print urunc's version and the OCI runtime spec version it implements",
    ),
];

/// The usage text of `verb`, or None for an unknown verb.
pub fn verb(verb: &str) -> Option<&'static str> {
    USAGES.iter().find(|(v, _)| *v == verb).map(|(_, u)| *u)
}

/// Whether `args` (what follows the verb) ask for the verb's help. For `exec`, only options
/// before the container id count: what follows it is the command to run.
pub fn wants_help(verb: &str, args: &[String]) -> bool {
    const EXEC_VALUE_FLAGS: &[&str] = &[
        "-p",
        "--process",
        "--pid-file",
        "--console-socket",
        "--cwd",
        "-e",
        "--env",
        "-u",
        "--user",
        "--process-label",
        "--apparmor",
        "--cgroup",
        "-g",
        "--additional-gids",
        "--preserve-fds",
        "--cap",
    ];
    let mut after_value_flag = false;
    for a in args {
        if a == "--help" || a == "-h" {
            return true;
        }
        if a == "--" {
            return false;
        }
        if verb == "exec" && !a.starts_with('-') && !after_value_flag {
            return false;
        }
        after_value_flag = EXEC_VALUE_FLAGS.contains(&a.as_str());
    }
    false
}
