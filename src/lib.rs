//! The parsers of untrusted input, as a library for the fuzz targets (`fuzz/`). The binary
//! (`main.rs`) keeps its own module tree; this crate compiles only the modules those parsers
//! need (and what they depend on), until the runtime is split into a library and a thin binary.
//!
//! Parsers reachable from here: annotations and `/urunc.json` (`unikernel`), `config.toml`
//! (`config`), `state.json` (`container::State::parse`), the Solo5 ELF manifest note
//! (`monitor::solo5_manifest`), mountinfo (`storage::mountinfo`), resolv.conf (`net::dns`).

pub mod bundle;
pub mod config;
pub mod container;
pub mod spec;
pub mod unikernel;

pub mod monitor {
    pub mod solo5_manifest;
}

pub mod net {
    pub mod dns;
}

pub mod sandbox {
    pub mod cgroups;
}

pub mod storage {
    pub mod mountinfo;
    pub mod workdir;
}
