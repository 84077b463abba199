//! urunc-compatible timestamps (TS00..TS18), enabled by `[timestamps]` in the config file:
//! one JSON object per line appended to `destination`, time in Unix nanoseconds, so the phases
//! can be compared with the Go urunc's own measurements. Our process model does the network
//! and plan work during `create`, so TS15..TS17 come before TS11 here.

use std::io::Write;
use std::sync::OnceLock;

struct Sink {
    file: std::fs::File,
    id: String,
}

static SINK: OnceLock<Option<Sink>> = OnceLock::new();

const NAMES: [&str; 19] = [
    "CR.invoked",
    "CR.unikontainer_created",
    "CR.initial_setup",
    "CR.start_reexec",
    "RX.create_invoked",
    "RX.close_pipes_and_setup_base",
    "CR.received_pids",
    "CR.hooks_executed",
    "CR.sent_ack",
    "RX.received_ack",
    "CR.terminated",
    "ST.invoked",
    "ST.unikontainer_created",
    "ST.sent_start_msg",
    "RX.received_start_msg",
    "RX.joined_netns",
    "RX.network_setup_completed",
    "RX.disk_setup_completed",
    "RX.execve_hypervisor",
];

/// Turns timestamps on for this process when the config enables them. An unwritable
/// destination is a warning, never a crash (urunc crashed there).
pub fn init(cfg: &crate::config::Timestamps, id: &str) {
    let sink = if cfg.enabled {
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cfg.destination)
        {
            Ok(file) => Some(Sink {
                file,
                id: id.to_string(),
            }),
            Err(e) => {
                log::warn!(
                    "timestamps disabled: cannot open {}: {e}",
                    cfg.destination.display()
                );
                None
            }
        }
    } else {
        None
    };
    let _ = SINK.set(sink);
}

/// Records timestamp `n` (0..=18) now.
pub fn capture(n: usize) {
    capture_at(n, std::time::SystemTime::now());
}

/// Records timestamp `n` taken earlier (before the config was known).
pub fn capture_at(n: usize, t: std::time::SystemTime) {
    let Some(Some(sink)) = SINK.get() else { return };
    let now = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let line = serde_json::json!({
        "containerID": sink.id,
        "timestampID": format!("TS{n:02}"),
        "timestampName": NAMES.get(n).copied().unwrap_or("invalid"),
        "timestampOrder": n,
        "time": now.as_nanos() as u64,
    });
    // one write per line: O_APPEND keeps lines from concurrent processes whole
    let _ = (&sink.file).write_all(format!("{line}\n").as_bytes());
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_match_urunc_ids() {
        assert_eq!(super::NAMES[0], "CR.invoked");
        assert_eq!(super::NAMES[13], "ST.sent_start_msg");
        assert_eq!(super::NAMES[18], "RX.execve_hypervisor");
    }
}
