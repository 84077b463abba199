//! Bundles that are not unikernels (the pause container, ordinary containers) go to runc (or
//! crun) with our exact argv.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    #[error("this bundle is not a unikernel and no delegate runtime was found: install runc or crun, or set [delegate] runtime in the urunc config")]
    NotFound,
    #[error("cannot exec delegate runtime {path}: {source}")]
    Exec {
        path: String,
        source: std::io::Error,
    },
}

pub fn find(configured: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    let candidates: Vec<&str> = if configured.is_empty() {
        vec!["runc", "crun"]
    } else {
        vec![configured]
    };
    let self_exe = std::fs::canonicalize("/proc/self/exe").ok();
    for c in candidates {
        if c.starts_with('/') {
            return Some(PathBuf::from(c)).filter(|p| p.is_file());
        }
        for dir in std::env::split_paths(&path) {
            let p = dir.join(c);
            // never delegate to ourselves (urunc installed as "runc" would loop)
            if p.is_file() && std::fs::canonicalize(&p).ok() != self_exe {
                return Some(p);
            }
        }
    }
    None
}

/// Replaces this process with the delegate runtime, same argv.
pub fn exec(configured: &str) -> DelegateError {
    let Some(rt) = find(configured) else {
        return DelegateError::NotFound;
    };
    log::debug!("delegating to {}", rt.display());
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let err = std::process::Command::new(&rt).arg0(&rt).args(args).exec();
    DelegateError::Exec {
        path: rt.display().to_string(),
        source: err,
    }
}
