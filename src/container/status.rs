//! Status is derived at every call, never trusted from the state file: pid + start time for
//! liveness, the barrier for `created`, the freezer for `paused`.

use super::State;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// Field 22 of `/proc/<pid>/stat` (start time in clock ticks since boot), `None` if the process
/// is gone or a zombie. Read into a stack buffer and parsed in place (`list` calls this once
/// per container).
pub fn process_start_time(pid: i32) -> Option<u64> {
    process_start_and_state(pid).map(|(start, _)| start)
}

/// Field 22 and field 3 (the state letter: `R`, `S`, `D`, ...) of `/proc/<pid>/stat`, read
/// once; `None` if the process is gone or a zombie.
pub fn process_start_and_state(pid: i32) -> Option<(u64, u8)> {
    if pid <= 0 {
        return None;
    }
    // the line is about 300 bytes; comm is at most 64 (TASK_COMM_LEN 16 today), every
    // other field a number: 1 KiB holds it whole, and a line that fills it is not trusted
    let mut buf = [0u8; 1024];
    let n = crate::sys::read_small(Path::new(&format!("/proc/{pid}/stat")), &mut buf).ok()?;
    if n == buf.len() {
        return None;
    }
    start_and_state_of(&buf[..n])
}

/// Field 22 and the state letter of a `/proc/<pid>/stat` line; `None` for a zombie or a dead
/// process.
fn start_and_state_of(stat: &[u8]) -> Option<(u64, u8)> {
    // comm may contain spaces and parentheses: fields resume after the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = stat.get(close + 2..)?.split(|&b| b == b' ');
    // the first is field 3 (state); field 22 is 19 further on.
    let state = fields.next()?;
    if matches!(state, b"Z" | b"X" | b"x") {
        return None;
    }
    let f22 = fields.nth(18)?;
    let start = std::str::from_utf8(f22).ok()?.trim_end().parse().ok()?;
    Some((start, *state.first()?))
}

/// The status of the container whose process is `pid` (started at `pid_start`), whose cgroup
/// is `frozen` (asked only of a live one, with the process's state letter: see
/// `cgroups::may_be_frozen`), with its state directory `dir`.
pub(super) fn derive(
    pid: i32,
    pid_start: u64,
    frozen: impl FnOnce(u8) -> bool,
    dir: &Path,
) -> Status {
    let Some((start, state)) = process_start_and_state(pid) else {
        return Status::Stopped;
    };
    if start != pid_start {
        return Status::Stopped;
    }
    if frozen(state) {
        return Status::Paused;
    }
    if dir.join(super::BARRIER).exists() {
        return Status::Created;
    }
    Status::Running
}

impl State {
    pub fn is_alive(&self) -> bool {
        process_start_time(self.pid).is_some_and(|t| t == self.pid_start)
    }

    pub fn status(&self) -> Status {
        let frozen = |state| {
            self.cgroup().is_some_and(|c| {
                crate::sandbox::cgroups::may_be_frozen(c.unified, state) && c.is_frozen()
            })
        };
        derive(self.pid, self.pid_start, frozen, &self.dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_of_self_and_of_nothing() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert_eq!(process_start_time(me), process_start_time(me));
        assert!(process_start_time(0).is_none());
        assert!(process_start_time(i32::MAX).is_none());
    }

    /// Lines shaped as proc_pid_stat(5) documents them: field 22 is starttime; comm (field 2)
    /// is in parentheses and may hold spaces and parentheses itself.
    #[test]
    fn start_time_after_an_awkward_comm_and_not_of_a_zombie() {
        let tail = "S 1 1 1 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50\n";
        let line = format!("42 (a) b) (c ) {tail}");
        assert_eq!(start_and_state_of(line.as_bytes()), Some((987654, b'S')));
        let frozen = line.replace(") S 1", ") D 1");
        assert_eq!(start_and_state_of(frozen.as_bytes()), Some((987654, b'D')));
        let zombie = line.replace(") S 1", ") Z 1");
        assert_eq!(start_and_state_of(zombie.as_bytes()), None);
        assert_eq!(start_and_state_of(b"42 (x) S 1 2"), None, "too few fields");
        assert_eq!(start_and_state_of(b"no parenthesis"), None);
    }

    /// The fact `cgroups::may_be_frozen` rests on, checked on this kernel: a task the v1
    /// freezer holds reads `D` in /proc/<pid>/stat. Needs root and a v1 freezer hierarchy
    /// (hybrid hosts, as these machines and CI are); without one there is nothing to check.
    #[test]
    fn a_task_in_a_frozen_v1_cgroup_reads_uninterruptible() {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let Some(mnt) = info.lines().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let mut post = post.split(' ');
            let ok = post.next()? == "cgroup" && post.nth(1)?.split(',').any(|o| o == "freezer");
            ok.then(|| pre.split(' ').nth(4).map(String::from))?
        }) else {
            eprintln!("no v1 freezer hierarchy here: nothing to check");
            return;
        };
        let dir = Path::new(&mnt).join(format!("urunc-test-frozen-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        // SAFETY: the child only sleeps in a loop of raw syscalls.
        let child = match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => loop {
                // SAFETY: pause takes no argument.
                unsafe { libc::pause() };
            },
            nix::unistd::ForkResult::Parent { child } => child,
        };
        let cleanup = |dir: &Path| {
            let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
            let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(child, None);
            let _ = std::fs::remove_dir(dir);
        };
        let checked = (|| {
            std::fs::write(dir.join("tasks"), child.as_raw().to_string()).ok()?;
            let (_, before) = process_start_and_state(child.as_raw())?;
            std::fs::write(dir.join("freezer.state"), "FROZEN").ok()?;
            for _ in 0..500 {
                let s = std::fs::read_to_string(dir.join("freezer.state")).ok()?;
                if s.trim() == "FROZEN" {
                    let (_, after) = process_start_and_state(child.as_raw())?;
                    return Some((before, after));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            None
        })();
        cleanup(&dir);
        let (before, after) = checked.expect("freeze the child");
        assert_eq!(before, b'S', "a task sleeping in pause() reads S");
        assert_eq!(after, b'D', "a task the v1 freezer holds reads D");
        assert!(crate::sandbox::cgroups::may_be_frozen(false, after));
        assert!(!crate::sandbox::cgroups::may_be_frozen(false, before));
    }
}
