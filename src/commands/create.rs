//! `create`: the engine's `lifecycle::create` with the command line's arguments.

use super::Ctx;
use crate::cli::CreateArgs;
use crate::error::Result;
use urunc::lifecycle::{self, CreateOptions, Created};

pub fn run(ctx: &Ctx, a: &CreateArgs) -> Result<i32> {
    create(ctx, a)?;
    Ok(0)
}

pub fn create(ctx: &Ctx, a: &CreateArgs) -> Result<Created> {
    lifecycle::create(&CreateOptions {
        id: a.id.clone(),
        bundle: a.bundle.clone(),
        pid_file: a.pid_file.clone(),
        console_socket: a.console_socket.clone(),
        preserve_fds: a.preserve_fds,
        root: ctx.root.clone(),
        rootless: ctx.rootless(),
        systemd_cgroup: ctx.g.systemd_cgroup,
    })
}
