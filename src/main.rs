//! urunc: an OCI runtime whose containers are virtual machines.

mod bundle;
mod cli;
mod commands;
mod config;
mod container;
mod delegate;
mod error;
mod fault;
mod guest;
mod hooks;
mod log;
mod monitor;
mod net;
mod plan;
mod sandbox;
mod spec;
mod storage;
mod supervisor;
mod sys;
mod timestamps;
mod unikernel;

use cli::Command;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (g, cmd) = match cli::parse(argv) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("urunc: {e}\n\n{}", cli::USAGE);
            std::process::exit(1);
        }
    };
    let format = if g.log_json {
        log::Format::Json
    } else {
        log::Format::Text
    };
    let quiet = matches!(cmd, Command::Create(_) | Command::Run(_));
    if let Err(e) = log::init(g.log.as_deref(), format, g.debug, quiet) {
        eprintln!("urunc: cannot open log file: {e}");
        std::process::exit(1);
    }
    ::log::debug!("urunc invoked: {:?}", std::env::args().collect::<Vec<_>>());
    let log_file = g.log.is_some();
    let code = match dispatch(g, cmd) {
        Ok(code) => code,
        Err(e) => {
            ::log::error!("{e}");
            // The final error always reaches the caller: on stderr too when logging elsewhere.
            if log_file || quiet {
                eprintln!("urunc: {e}");
            }
            1
        }
    };
    std::process::exit(code);
}

fn dispatch(g: cli::Global, cmd: Command) -> error::Result<i32> {
    match cmd {
        Command::Version => {
            println!("urunc version {}\nspec: 1.2.0", env!("CARGO_PKG_VERSION"));
            return Ok(0);
        }
        Command::Help => {
            println!("{}", cli::USAGE);
            return Ok(0);
        }
        Command::Features => return commands::features::run(),
        Command::Spec { bundle } => return commands::spec::run(&bundle),
        Command::Check { json } => return commands::check::run(json),
        _ => {}
    }
    let ctx = commands::Ctx::new(g)?;
    match cmd {
        Command::Create(a) => commands::create::run(&ctx, &a),
        Command::Run(a) => commands::run::run(&ctx, &a),
        Command::Start { id } => commands::start::run(&ctx, &id),
        Command::State { id } => commands::state::run(&ctx, &id),
        Command::Kill { id, signal, all } => commands::kill::run(&ctx, &id, &signal, all),
        Command::Delete { id, force } => commands::delete::run(&ctx, &id, force),
        Command::Ps { id, json } => commands::ps::run(&ctx, &id, json),
        Command::List { json, quiet } => commands::list::run(&ctx, json, quiet),
        Command::Pause { id } => commands::pause::run(&ctx, &id, true),
        Command::Resume { id } => commands::pause::run(&ctx, &id, false),
        Command::Update {
            id,
            resources,
            flags,
        } => commands::update::run(&ctx, &id, resources.as_deref(), &flags),
        Command::Exec { id } => commands::exec::run(&ctx, &id),
        Command::Version
        | Command::Help
        | Command::Features
        | Command::Spec { .. }
        | Command::Check { .. } => Ok(0),
    }
}
