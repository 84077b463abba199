//! `update`: change the container's cgroup limits live (memory, cpu, pids); anything else is
//! refused by name.

use super::Ctx;
use crate::error::{Error, Result};
use crate::spec::{Cpu, Memory, Pids, Resources};
use std::io::Read;

pub fn run(
    ctx: &Ctx,
    id: &str,
    resources: Option<&str>,
    flags: &[(String, String)],
) -> Result<i32> {
    let st = ctx.load(id)?;
    let mut r: Resources = match resources {
        Some(src) => {
            let mut text = String::new();
            if src == "-" {
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(crate::error::io("read resources from stdin"))?;
            } else {
                text = std::fs::read_to_string(src)
                    .map_err(crate::error::io(format!("read {src}")))?;
            }
            serde_json::from_str(&text)
                .map_err(|e| Error::Msg(format!("invalid resources JSON: {e}")))?
        }
        None => Resources::default(),
    };
    for (flag, v) in flags {
        let num = || {
            v.parse::<i64>()
                .map_err(|_| Error::Msg(format!("invalid value {v:?} for {flag}")))
        };
        let mem = r.memory.get_or_insert_with(Memory::default);
        match flag.as_str() {
            "--memory" => mem.limit = Some(num()?),
            "--memory-reservation" => mem.reservation = Some(num()?),
            "--memory-swap" => mem.swap = Some(num()?),
            "--pids-limit" => r.pids = Some(Pids { limit: num()? }),
            _ => {
                let cpu = r.cpu.get_or_insert_with(Cpu::default);
                match flag.as_str() {
                    "--cpu-quota" => cpu.quota = Some(num()?),
                    "--cpu-period" => cpu.period = Some(num()? as u64),
                    "--cpu-share" => cpu.shares = Some(num()? as u64),
                    "--cpuset-cpus" => cpu.cpus = Some(v.clone()),
                    "--cpuset-mems" => cpu.mems = Some(v.clone()),
                    _ => {}
                }
            }
        }
    }
    let cg = st
        .cgroup()
        .ok_or_else(|| Error::Msg("container has no cgroup".into()))?;
    let unsupported: Vec<String> = std::mem::take(&mut r.other)
        .into_iter()
        .filter(|(_, v)| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
        .map(|(k, _)| k)
        .collect();
    cg.apply(&r)?;
    if !unsupported.is_empty() {
        return Err(Error::Msg(format!(
            "applied memory, cpu and pids limits; not supported by urunc: {}",
            unsupported.join(", ")
        )));
    }
    Ok(0)
}
