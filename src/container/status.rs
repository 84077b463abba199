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
    start_time_of(&buf[..n])
}

/// Field 22 of a `/proc/<pid>/stat` line; `None` for a zombie or a dead process.
fn start_time_of(stat: &[u8]) -> Option<u64> {
    // comm may contain spaces and parentheses: fields resume after the last ')'.
    let close = stat.iter().rposition(|&b| b == b')')?;
    let mut fields = stat.get(close + 2..)?.split(|&b| b == b' ');
    // the first is field 3 (state); field 22 is 19 further on.
    if matches!(fields.next()?, b"Z" | b"X" | b"x") {
        return None;
    }
    let f22 = fields.nth(18)?;
    std::str::from_utf8(f22).ok()?.trim_end().parse().ok()
}

/// The status of the container whose process is `pid` (started at `pid_start`), whose cgroup
/// is `frozen` (asked only of a live one), with its state directory `dir`.
pub(super) fn derive(
    pid: i32,
    pid_start: u64,
    frozen: impl FnOnce() -> bool,
    dir: &Path,
) -> Status {
    if process_start_time(pid) != Some(pid_start) {
        return Status::Stopped;
    }
    if frozen() {
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
        let frozen = || self.cgroup().is_some_and(|c| c.is_frozen());
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
        assert_eq!(start_time_of(line.as_bytes()), Some(987654));
        let zombie = line.replace(") S 1", ") Z 1");
        assert_eq!(start_time_of(zombie.as_bytes()), None);
        assert_eq!(start_time_of(b"42 (x) S 1 2"), None, "too few fields");
        assert_eq!(start_time_of(b"no parenthesis"), None);
    }
}
