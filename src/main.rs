//! urunc: an OCI runtime whose containers are virtual machines.

mod cli;
mod cli_usage;
mod commands;
mod exec_args;
use urunc::config;
use urunc::container;
use urunc::delegate;
use urunc::error;
use urunc::guest;
use urunc::log;
use urunc::monitor;
use urunc::sandbox;
use urunc::spec;
use urunc::unikernel;

use cli::Command;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let (g, cmd) = match cli::parse_keeping_globals(argv) {
        Ok(v) => v,
        Err((g, e)) => std::process::exit(fail_early(&g, &e)),
    };
    let format = if g.log_json {
        log::Format::Json
    } else {
        log::Format::Text
    };
    let quiet = matches!(cmd, Command::Create(_) | Command::Run(_));
    if let Err(e) = log::init(g.log.as_deref(), format, g.debug, quiet) {
        let _ = log::init(None, format, false, false);
        log::report_error(&format!("cannot open log file: {e}"));
        std::process::exit(1);
    }
    if prints_only(&cmd) {
        // `urunc state ID | grep -q running`: a reader that goes away ends us quietly, as it
        // ends other CLIs (verbs that run hooks or guests keep SIGPIPE ignored)
        default_sigpipe();
    }
    ::log::debug!("urunc invoked: {:?}", std::env::args().collect::<Vec<_>>());
    let code = match dispatch(g, cmd) {
        Ok(code) => code,
        Err(e) => {
            log::report_error(&e.to_string());
            1
        }
    };
    std::process::exit(code);
}

/// A command line that cannot be parsed: the error goes where the global options say the
/// log goes, in its format; a text-format error also points at the usage.
fn fail_early(g: &cli::Global, e: &str) -> i32 {
    let format = if g.log_json {
        log::Format::Json
    } else {
        log::Format::Text
    };
    if log::init(g.log.as_deref(), format, false, false).is_err() {
        let _ = log::init(None, format, false, false);
    }
    log::report_error(e);
    if !g.log_json {
        eprintln!("run 'urunc --help' for the usage, 'urunc COMMAND --help' for a command's");
    }
    1
}

fn default_sigpipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: restoring the default disposition installs no handler code.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// Verbs that only print: they run no hooks and no guests.
fn prints_only(cmd: &Command) -> bool {
    matches!(
        cmd,
        Command::State { .. }
            | Command::List { .. }
            | Command::Ps { .. }
            | Command::Features
            | Command::Spec { .. }
            | Command::Check { .. }
            | Command::Version
            | Command::Help
            | Command::Usage(_)
    )
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
        Command::Usage(u) => {
            println!("{u}");
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
        Command::Exec(a) => commands::exec::run(&ctx, &a),
        Command::Version
        | Command::Help
        | Command::Usage(_)
        | Command::Features
        | Command::Spec { .. }
        | Command::Check { .. } => Ok(0),
    }
}
