//! `list`: the containers under `--root` that are ours.

use super::Ctx;
use crate::container::{Status, Summary};
use crate::error::Result;
use std::io::Write;

pub fn run(ctx: &Ctx, json: bool, quiet: bool) -> Result<i32> {
    let mut rows = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&ctx.root) {
        for e in rd.flatten() {
            let id = e.file_name();
            // only what the state file needs: list reads no config, no hooks, no plan
            if let Some(s) = id.to_str().and_then(|id| Summary::load(&ctx.root, id)) {
                rows.push(s);
            }
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    // one write for the whole table (stdout is line-buffered: a write per row otherwise)
    let mut out = Vec::with_capacity(64 + 160 * rows.len());
    if json {
        let v: Vec<serde_json::Value> = rows.iter().map(|s| s.oci(s.status())).collect();
        let _ = serde_json::to_writer(&mut out, &v);
        out.push(b'\n');
    } else if quiet {
        for s in &rows {
            let _ = writeln!(out, "{}", s.id);
        }
    } else {
        out.extend_from_slice(b"ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n");
        for s in &rows {
            let status = s.status();
            let pid = if status == Status::Stopped { 0 } else { s.pid };
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}\t{}",
                s.id,
                pid,
                status.as_str(),
                s.bundle.display(),
                s.created,
                s.owner
            );
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&out)
        .and_then(|()| stdout.flush())
        .map_err(crate::error::io("write the list to stdout"))?;
    Ok(0)
}
