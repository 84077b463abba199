//! `list`: the containers under `--root` that are ours.

use super::Ctx;
use crate::container::State;
use crate::error::Result;

pub fn run(ctx: &Ctx, json: bool, quiet: bool) -> Result<i32> {
    let mut rows = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&ctx.root) {
        for e in rd.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            if let Ok(st) = State::load(&ctx.root, &id) {
                rows.push(st);
            }
        }
    }
    rows.sort_by(|a, b| a.id.cmp(&b.id));
    if json {
        let v: Vec<serde_json::Value> = rows.iter().map(|s| s.oci(s.status().as_str())).collect();
        println!("{}", serde_json::to_string(&v).unwrap_or_default());
    } else if quiet {
        for s in &rows {
            println!("{}", s.id);
        }
    } else {
        println!("ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER");
        for s in &rows {
            let status = s.status();
            let pid = if status == crate::container::Status::Stopped {
                0
            } else {
                s.pid
            };
            println!(
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
    Ok(0)
}
