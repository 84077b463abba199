//! The legacy text for upstream's urunit (`UES`/`UCS`/`UBS` sections, reference
//! urunc-behaviour.md section 4.6), written only where no value can be misread.
//!
//! Upstream's reader (nubificus/urunit `main.c`) splits the file on `\n` with `strtok`
//! (empty lines vanish), stops at the first `NUL`, ends the environment list at any line
//! whose first three bytes are `UEE`, matches `UID`/`GID`/`WD`/`ID`/`MP` by prefix, and skips
//! blanks after the `:` of a value. A value is therefore safe when it is non-empty and holds
//! no `\n`, `\r` or `NUL`; an environment line also must not start, after trimming Unicode
//! whitespace (as earlier urunit releases of this project trimmed), with any section marker
//! (`UES`, `UEE`, `UCS`, `UCE`, `UBS`, `UBE`, `UNS`, `UNE`, `UXS`, `UXE`, `UAS`, `UAE`); a
//! `KEY:value` value also must not start with whitespace.
//!
//! Unsafe environment: `UES` is left out (a warning names the variable). Unsafe working
//! directory or volume: an error, since leaving `UCS` out would run the program as root and
//! leaving a volume out would hide its data.

use crate::config::Config;
use std::fmt;

/// Every section marker a line-based reader of this format may act on.
pub const MARKERS: [&str; 12] = [
    "UES", "UEE", "UCS", "UCE", "UBS", "UBE", "UNS", "UNE", "UXS", "UXE", "UAS", "UAE",
];

/// A value that cannot be carried for a legacy reader and must not be left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyError(pub String);

impl fmt::Display for LegacyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for LegacyError {}

fn plain(v: &str) -> bool {
    !v.is_empty() && !v.contains(['\n', '\r', '\0'])
}

/// Whether an environment line is read back exactly by a line-based reader.
pub fn env_line_safe(e: &str) -> bool {
    let t = e.trim();
    plain(e) && !MARKERS.iter().any(|m| t.starts_with(m))
}

/// Whether the value of a `KEY:value` line is read back exactly.
pub fn value_safe(v: &str) -> bool {
    plain(v) && !v.starts_with(char::is_whitespace)
}

fn name_of(e: &str) -> String {
    let n = e.split('=').next().unwrap_or_default();
    n.escape_debug().take(64).collect()
}

/// The legacy sections and the warnings to log.
pub fn text(c: &Config) -> Result<(String, Vec<String>), LegacyError> {
    let mut warnings = Vec::new();
    let mut s = String::new();
    match c.env.iter().find(|e| !env_line_safe(e)) {
        None => {
            s.push_str("UES\n");
            for e in &c.env {
                s.push_str(e);
                s.push('\n');
            }
            s.push_str("UEE\n");
        }
        Some(bad) => warnings.push(format!(
            "environment variable \"{}\" cannot be written in the legacy UES format (empty, a line break, NUL, or a section marker): a guest with upstream's urunit gets no environment, urunc's urunit gets all of it",
            name_of(bad)
        )),
    }
    if !value_safe(&c.cwd) {
        return Err(LegacyError(format!(
            "the working directory {:?} cannot be given to urunit safely (empty, leading blank, line break or NUL): set a plain process.cwd",
            c.cwd.escape_debug().take(256).collect::<String>()
        )));
    }
    s.push_str(&format!(
        "UCS\nUID:{}\nGID:{}\nWD:{}\nUCE\n",
        c.uid, c.gid, c.cwd
    ));
    s.push_str("UBS\n");
    for b in &c.blocks {
        if !value_safe(&b.id) || !value_safe(&b.mount_point) {
            return Err(LegacyError(format!(
                "the volume mount point {:?} cannot be given to urunit safely (leading blank, line break or NUL): rename it",
                b.mount_point.escape_debug().take(256).collect::<String>()
            )));
        }
        s.push_str(&format!("ID:{}\nMP:{}\n", b.id, b.mount_point));
    }
    s.push_str("UBE\n");
    Ok((s, warnings))
}
