//! The workload's exit status from what the supervisor saw: how the monitor ended, what the
//! guest reported on urunit's channel, and which signal it forwarded. One rule: never report
//! a success that did not happen. Every status that is not the guest's own report comes with
//! the reason, which the supervisor logs.

use crate::guest::urunit_channel::GuestState;

/// Reported when nothing says how the program ended (the guest never reported and the
/// monitor's status carries no guest value): nonzero, and distinct from the statuses a
/// program or a signal gives (1..=128+64), so it is not mistaken for either.
pub const STATUS_UNKNOWN: i32 = 255;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Exited(i32),
    Signaled(i32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// urunit's channel, when the guest was given one.
    pub channel: Option<GuestState>,
    /// QEMU has isa-debug-exit (`LaunchPlan::debug_exit`).
    pub debug_exit: bool,
    /// The last terminating signal the supervisor forwarded (to the monitor or the guest).
    pub forwarded: Option<i32>,
    /// Whether QEMU acknowledged starting the guest (`qmp.rs`); None without that gate.
    pub started: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub code: i32,
    /// Why the status is not the guest's own report; None when it is.
    pub reason: Option<String>,
}

/// Signals whose default action ends a process: forwarding one means "stop".
pub fn terminates(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGTERM | libc::SIGINT | libc::SIGHUP | libc::SIGQUIT | libc::SIGKILL
    )
}

/// What QEMU's status means with isa-debug-exit. QEMU exits with `(v << 1) | 1` when the
/// guest writes v to the port (real-guests.md: a Nanos program that exited 0 made QEMU exit
/// 1), so an odd status above 1 carries v = status >> 1 (only v <= 127 fits in a status).
/// Status 1 is also QEMU's own failure (bad option, missing file, failed device): it means
/// "the guest wrote 0" only when `started` confirms QEMU got as far as running the guest.
/// 0 is a shutdown that did not go through the port (ACPI power-off, -no-reboot reset, or a
/// signal QEMU handled). Even statuses above 0 are QEMU's own errors.
pub fn debug_exit_value(qemu: i32, started: bool) -> Option<i32> {
    match qemu {
        1 if started => Some(0),
        q if q > 1 && q & 1 == 1 => Some(q >> 1),
        _ => None,
    }
}

fn because(code: i32, reason: String) -> Outcome {
    Outcome {
        code,
        reason: Some(reason),
    }
}

/// The status to exit with.
pub fn decide(ended: Ended, f: &Facts) -> Outcome {
    if let Some(code) = f.channel.and_then(|c| c.exit) {
        return Outcome { code, reason: None };
    }
    let q = match ended {
        Ended::Signaled(sig) => {
            return because(128 + sig, format!("the monitor was killed by signal {sig}"))
        }
        Ended::Exited(q) => q,
    };
    if f.debug_exit {
        if let Some(v) = debug_exit_value(q, f.started == Some(true)) {
            return Outcome {
                code: v,
                reason: None,
            };
        }
    }
    if q != 0 {
        let what = match (f.debug_exit && q == 1, f.started) {
            (true, Some(false)) => "the monitor failed before the guest started",
            (true, _) => "the monitor exited 1: it failed, or the guest wrote 0 to isa-debug-exit (not told apart)",
            _ => "the monitor failed or was stopped with an error",
        };
        return because(q, format!("{what} (status {q})"));
    }
    if let Some(sig) = f.forwarded.filter(|s| terminates(*s)) {
        return because(
            128 + sig,
            format!("the workload was stopped by signal {sig} and the guest reported no status"),
        );
    }
    match f.channel {
        Some(GuestState { hello: None, .. }) => because(
            STATUS_UNKNOWN,
            "the guest never opened urunit's channel (no device or driver for it in the guest): its exit status is unknown".into(),
        ),
        Some(_) => because(
            STATUS_UNKNOWN,
            "the guest stopped without reporting a status (kernel panic, or a power-off before the program ended)".into(),
        ),
        None if f.debug_exit => because(
            STATUS_UNKNOWN,
            "the guest powered off without writing its status to isa-debug-exit".into(),
        ),
        // a unikernel with no status carrier: the monitor's clean exit is all there is
        None => Outcome {
            code: 0,
            reason: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chan(hello: bool, exit: Option<i32>) -> Option<GuestState> {
        Some(GuestState {
            hello: hello.then_some(1),
            ready: hello,
            exit,
            rejected: 0,
        })
    }

    #[test]
    fn debug_exit_mapping() {
        // real-guests.md: a Nanos program exiting 0 made QEMU exit 1, i.e. (0 << 1) | 1
        assert_eq!(debug_exit_value(1, true), Some(0));
        assert_eq!(debug_exit_value(1, false), None);
        assert_eq!(debug_exit_value((3 << 1) | 1, false), Some(3));
        assert_eq!(debug_exit_value((127 << 1) | 1, false), Some(127));
        assert_eq!(debug_exit_value(0, true), None);
        assert_eq!(debug_exit_value(2, true), None);
        let f = Facts {
            debug_exit: true,
            ..Default::default()
        };
        assert_eq!(decide(Ended::Exited(7), &f).code, 3);
        let one = decide(Ended::Exited(1), &f);
        assert_eq!(one.code, 1);
        assert!(one.reason.unwrap().contains("isa-debug-exit"));
        // with the QMP start gate, 1 is the guest's 0 once the guest ran, a failure before
        let ran = Facts {
            started: Some(true),
            ..f
        };
        assert_eq!(
            decide(Ended::Exited(1), &ran),
            Outcome {
                code: 0,
                reason: None
            }
        );
        let failed = decide(
            Ended::Exited(1),
            &Facts {
                started: Some(false),
                ..f
            },
        );
        assert_eq!(failed.code, 1);
        assert!(failed.reason.unwrap().contains("before the guest started"));
        let off = decide(Ended::Exited(0), &f);
        assert_eq!(off.code, STATUS_UNKNOWN);
    }

    #[test]
    fn the_guest_report_wins_else_never_zero() {
        let ok = Facts {
            channel: chan(true, Some(3)),
            forwarded: Some(libc::SIGTERM),
            ..Default::default()
        };
        assert_eq!(
            decide(Ended::Exited(0), &ok),
            Outcome {
                code: 3,
                reason: None
            }
        );
        // panic or power-off without EXIT: QEMU's 0 is not the program's status
        let silent = Facts {
            channel: chan(true, None),
            ..Default::default()
        };
        assert_eq!(decide(Ended::Exited(0), &silent).code, STATUS_UNKNOWN);
        let no_channel = Facts {
            channel: chan(false, None),
            ..Default::default()
        };
        let o = decide(Ended::Exited(0), &no_channel);
        assert!(o.code != 0 && o.reason.unwrap().contains("never opened"));
        // QEMU failing to start
        assert_eq!(decide(Ended::Exited(1), &no_channel).code, 1);
    }

    #[test]
    fn a_forwarded_stop_signal_is_128_plus_n() {
        let f = Facts {
            forwarded: Some(libc::SIGTERM),
            ..Default::default()
        };
        assert_eq!(decide(Ended::Exited(0), &f).code, 128 + libc::SIGTERM);
        let usr = Facts {
            forwarded: Some(libc::SIGUSR1),
            ..Default::default()
        };
        assert_eq!(
            decide(Ended::Exited(0), &usr),
            Outcome {
                code: 0,
                reason: None
            }
        );
        assert_eq!(decide(Ended::Signaled(9), &Facts::default()).code, 137);
    }
}
