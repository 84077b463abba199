//! `ps`: the container's processes (its cgroup), as a JSON array of pids or a table.

use super::Ctx;
use crate::error::Result;

pub fn run(ctx: &Ctx, id: &str, json: bool) -> Result<i32> {
    let st = ctx.load(id)?;
    let mut pids = st.cgroup().map(|c| c.procs()).unwrap_or_default();
    if pids.is_empty() && st.is_alive() {
        pids.push(st.pid);
    }
    if json {
        println!("{}", serde_json::to_string(&pids).unwrap_or_default());
    } else {
        println!("PID CMD");
        for p in pids {
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
            let cmd: Vec<String> = cmd
                .split(|b| *b == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect();
            println!("{p} {}", cmd.join(" "));
        }
    }
    Ok(0)
}
