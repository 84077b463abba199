//! The urunc engine as a library: everything but the command line. The binary (`main.rs`,
//! `cli.rs`, `cli_usage.rs`, `commands/`) parses, calls and prints; the fuzz targets (`fuzz/`)
//! reach the parsers of untrusted input from here: annotations and `/urunc.json`
//! (`unikernel`), `config.toml` (`config`), `state.json` (`container::State::parse`), the Solo5
//! ELF manifest note (`monitor::solo5_manifest`), mountinfo (`storage::mountinfo`), resolv.conf
//! (`net::dns`).

pub mod accel;
pub mod bundle;
pub mod config;
pub mod container;
pub mod delegate;
pub mod error;
pub mod fault;
pub mod guest;
pub mod hooks;
pub mod hostcheck;
pub mod launch;
pub mod lifecycle;
pub mod log;
pub mod monitor;
pub mod net;
pub mod plan;
pub mod proctitle;
pub mod sandbox;
pub mod spec;
pub mod storage;
pub mod supervisor;
pub mod sys;
pub mod timestamps;
pub mod unikernel;
