//! The process an exec runs: the shim's `--process` file, or runc's plain form built from the
//! container's own process in `config.json` with the command line's overrides.

use super::exec::ExecError;
use crate::spec::Process;
use std::path::Path;

/// Largest `--process` file read (a process spec is a few KiB).
const MAX_PROCESS_FILE: u64 = 4 << 20;

/// runc's plain form: what the command line asked for.
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    pub command: Vec<String>,
    pub tty: bool,
    /// `-e K=V`, each replacing a variable of the same name.
    pub env: Vec<String>,
    pub cwd: Option<String>,
    /// `-u UID[:GID]`.
    pub user: Option<(u32, Option<u32>)>,
    pub additional_gids: Vec<u32>,
}

/// The shim's process file: a runtime-spec Process (bounded like every input) and its
/// `consoleSize` (rows, cols) when it has one.
pub fn from_file(path: &Path) -> Result<(Process, Option<(u16, u16)>), ExecError> {
    let data = crate::sys::read_regular_capped(path, MAX_PROCESS_FILE).map_err(|source| {
        ExecError::ProcessFile {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let bad = |source| ExecError::NotAProcess {
        path: path.to_path_buf(),
        source,
    };
    let v: serde_json::Value = serde_json::from_slice(&data).map_err(bad)?;
    let size = console_size(&v);
    Ok((serde_json::from_value::<Process>(v).map_err(bad)?, size))
}

/// runc's plain form: the container's own process (its user, cwd and environment, from the
/// bundle's config.json when it is still readable) with the command, `-e` (added after the
/// container's variables), `-u`, `--cwd`, `--additional-gids`, `-t`.
pub fn from_command_line(a: &CommandLine, bundle: &Path) -> Process {
    let mut p = crate::spec::Spec::load(bundle)
        .ok()
        .and_then(|s| s.process().ok().cloned())
        .unwrap_or_default();
    p.terminal = a.tty;
    p.args = a.command.clone();
    for e in &a.env {
        let key = e.split('=').next().unwrap_or_default();
        p.env.retain(|old| old.split('=').next() != Some(key));
        p.env.push(e.clone());
    }
    if let Some(cwd) = &a.cwd {
        p.cwd = cwd.clone();
    }
    if let Some((uid, gid)) = a.user {
        p.user.uid = uid;
        p.user.gid = gid.unwrap_or(0);
        p.user.additional_gids.clear();
    }
    if !a.additional_gids.is_empty() {
        p.user.additional_gids = a.additional_gids.clone();
    }
    p
}

/// `consoleSize` {height, width} of a process spec, when both fit a terminal's u16.
fn console_size(v: &serde_json::Value) -> Option<(u16, u16)> {
    let dim = |k: &str| u16::try_from(v["consoleSize"][k].as_u64()?).ok();
    Some((dim("height")?, dim("width")?)).filter(|(h, w)| *h > 0 && *w > 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn console_size_is_read_when_it_fits() {
        let v = serde_json::json!({"consoleSize": {"height": 33, "width": 99}});
        assert_eq!(super::console_size(&v), Some((33, 99)));
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"consoleSize": {"height": 70000, "width": 99}}),
            serde_json::json!({"consoleSize": {"height": 0, "width": 99}}),
            serde_json::json!({"consoleSize": {"height": "33", "width": 99}}),
        ] {
            assert_eq!(super::console_size(&bad), None, "{bad}");
        }
    }

    #[test]
    fn a_bad_process_file_names_itself() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("p.json");
        std::fs::write(&f, b"{\"args\": 3}").unwrap();
        let e = super::from_file(&f).unwrap_err().to_string();
        assert!(
            e.contains("p.json") && e.contains("not a process spec"),
            "{e}"
        );
        let e = super::from_file(&d.path().join("none"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cannot read --process"), "{e}");
    }
}
