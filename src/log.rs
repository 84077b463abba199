//! The runc logging contract: `--log FILE --log-format json` gives one object per line with a
//! lowercase `level`, `msg` and an RFC3339 `time`; text goes to stderr otherwise.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

enum Sink {
    File(std::fs::File),
    Stderr,
    /// `create` without `--log`: stderr belongs to the container; only the final error is shown.
    Quiet,
}

struct Logger {
    sink: Mutex<Sink>,
    format: Format,
    level: log::LevelFilter,
}

impl log::Log for Logger {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= self.level
    }

    fn log(&self, record: &log::Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let line = format_line(self.format, record.level(), &record.args().to_string());
        if let Ok(mut sink) = self.sink.lock() {
            let _ = match &mut *sink {
                Sink::File(f) => f.write_all(line.as_bytes()),
                Sink::Stderr => std::io::stderr().write_all(line.as_bytes()),
                Sink::Quiet => Ok(()),
            };
        }
    }

    fn flush(&self) {}
}

fn level_name(l: log::Level) -> &'static str {
    match l {
        log::Level::Error => "error",
        log::Level::Warn => "warning",
        log::Level::Info => "info",
        log::Level::Debug => "debug",
        log::Level::Trace => "trace",
    }
}

pub fn format_line(format: Format, level: log::Level, msg: &str) -> String {
    let time = rfc3339_secs_now();
    match format {
        Format::Json => {
            let obj = serde_json::json!({"level": level_name(level), "msg": msg, "time": time});
            format!("{obj}\n")
        }
        Format::Text => format!(
            "time=\"{time}\" level={} msg={}\n",
            level_name(level),
            serde_json::Value::String(msg.to_string())
        ),
    }
}

/// Where the final error goes: (a log file is open, the format, create's quiet stderr).
static FINAL: std::sync::OnceLock<(bool, Format, bool)> = std::sync::OnceLock::new();

/// Reports the error that ends this urunc invocation, once: into the log file when there is
/// one (and as a plain `urunc: ...` line on stderr, which callers that capture stderr show);
/// else on stderr in the log's format, so with `--log-format json` every verb's error is one
/// JSON object. Only text-format `create`/`run`, whose stderr is the container's, print the
/// bare `urunc: ...` line.
pub fn report_error(msg: &str) {
    let (to_file, format, quiet) = FINAL.get().copied().unwrap_or((false, Format::Text, false));
    if to_file {
        log::error!("{msg}");
        eprintln!("urunc: {msg}");
    } else if quiet && format == Format::Text {
        eprintln!("urunc: {msg}");
    } else {
        let line = format_line(format, log::Level::Error, msg);
        let _ = std::io::stderr().write_all(line.as_bytes());
    }
}

/// Installs the global logger. `quiet_stderr` is set for `create`, whose stderr is the
/// container's: without `--log` it then logs nothing but the final error.
pub fn init(
    file: Option<&std::path::Path>,
    format: Format,
    debug: bool,
    quiet_stderr: bool,
) -> std::io::Result<()> {
    let sink = match file {
        Some(p) => Sink::File(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)?,
        ),
        None if quiet_stderr => Sink::Quiet,
        None => Sink::Stderr,
    };
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    let _ = FINAL.set((
        matches!(sink, Sink::File(_)),
        format,
        matches!(sink, Sink::Quiet),
    ));
    let logger = Box::new(Logger {
        sink: Mutex::new(sink),
        format,
        level,
    });
    log::set_max_level(level);
    let _ = log::set_boxed_logger(logger);
    Ok(())
}

/// Log lines carry RFC3339 seconds, UTC, as runc's (logrus' default): the delegate writes into
/// the same log file, and one file has one precision.
pub fn rfc3339_secs_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let full = rfc3339(d.as_secs() as i64, 0);
    full.replace(".000000000Z", "Z")
}

/// RFC3339 with nanoseconds, UTC: `2026-08-22T10:00:00.123456789Z`.
pub fn rfc3339_now() -> String {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(d.as_secs() as i64, d.subsec_nanos())
}

pub fn rfc3339(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        // 2000-02-29T12:34:56Z (leap day)
        assert_eq!(rfc3339(951_827_696, 5), "2000-02-29T12:34:56.000000005Z");
        // 2026-11-23T00:00:00Z
        assert_eq!(rfc3339(1_795_392_000, 0), "2026-11-23T00:00:00.000000000Z");
    }

    #[test]
    fn json_line_has_runc_keys() {
        let l = format_line(Format::Json, log::Level::Error, "boom \"x\"");
        let v: serde_json::Value = serde_json::from_str(l.trim_end()).unwrap();
        assert_eq!(v["level"], "error");
        assert_eq!(v["msg"], "boom \"x\"");
        assert!(v["time"].as_str().unwrap().ends_with('Z'));
    }
}
