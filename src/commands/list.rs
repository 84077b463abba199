//! `list`: the containers under `--root` that are ours.

use super::Ctx;
use crate::container::{Status, Summary};
use crate::error::Result;
use std::io::Write;

pub fn run(ctx: &Ctx, json: bool, quiet: bool) -> Result<i32> {
    // each container's row is rendered as its file is read (one buffer for every file, its
    // fields borrowed from it), then the rows are put in order of id
    let mut rows: Vec<(String, std::ops::Range<usize>)> = Vec::new();
    let mut out = Vec::new();
    let mut buf = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&ctx.root) {
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(id) = name.to_str() else { continue };
            let Some(s) = Summary::load(&ctx.root, id, &mut buf) else {
                continue;
            };
            let start = out.len();
            if json {
                let o = s.oci(s.status(&e.path()));
                let _ = serde_json::to_writer(&mut out, &o);
            } else if quiet {
                out.extend_from_slice(s.id.as_bytes());
            } else {
                let status = s.status(&e.path());
                let pid = if status == Status::Stopped { 0 } else { s.pid };
                let (id, bundle, created, owner) = (&*s.id, &*s.bundle, &*s.created, &*s.owner);
                let st = status.as_str();
                let _ = write!(out, "{id}\t{pid}\t{st}\t{bundle}\t{created}\t{owner}");
            }
            rows.push((s.id.to_string(), start..out.len()));
        }
    }
    rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    // one write for the whole table (stdout is line-buffered: a write per row otherwise)
    let mut text = Vec::with_capacity(out.len() + 2 * rows.len() + 64);
    if json {
        text.push(b'[');
        for (i, (_, r)) in rows.iter().enumerate() {
            if i > 0 {
                text.push(b',');
            }
            text.extend_from_slice(&out[r.clone()]);
        }
        text.extend_from_slice(b"]\n");
    } else {
        if !quiet {
            text.extend_from_slice(b"ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER\n");
        }
        for (_, r) in &rows {
            text.extend_from_slice(&out[r.clone()]);
            text.push(b'\n');
        }
    }
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&text)
        .and_then(|()| stdout.flush())
        .map_err(crate::error::io("write the list to stdout"))?;
    Ok(0)
}
