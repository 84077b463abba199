//! Status is derived at every call, never trusted from the state file: pid + start time for
//! liveness, the barrier for `created`, the freezer for `paused`.

use super::State;

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
/// is gone or a zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest[0] is field 3 (state); field 22 is rest[19].
    if matches!(fields.first(), Some(&"Z") | Some(&"X") | Some(&"x")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl State {
    pub fn is_alive(&self) -> bool {
        process_start_time(self.pid).is_some_and(|t| t == self.pid_start)
    }

    pub fn status(&self) -> Status {
        if !self.is_alive() {
            return Status::Stopped;
        }
        if self.cgroup().is_some_and(|c| c.is_frozen()) {
            return Status::Paused;
        }
        if self.dir.join(super::BARRIER).exists() {
            return Status::Created;
        }
        Status::Running
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
}
