//! urunit's protocol, defined once for the runtime (host) and urunit (guest init).
//!
//! Two things cross the host/guest boundary:
//!
//! 1. **The configuration** ([`config`]), a file the host writes and urunit reads once at boot
//!    (`URUNIT_CONFIG=` on the kernel command line). Encoding v1 is binary and
//!    length-prefixed: no value (environment entry, argument, path, hostname) can end its
//!    record early or start another, whatever bytes it holds. Every count and length is
//!    bounded when decoding and the decoder never panics.
//! 2. **The channel** ([`frame`]), a byte stream between the supervisor and urunit (an ISA
//!    serial port or a virtio-serial port, see the runtime's `guest/urunit_channel.rs`):
//!    versioned, checksummed frames, COBS-encoded between zero bytes, so a reader resyncs at
//!    the next zero whatever noise came before.
//!
//! ## Compatibility decision: legacy readers
//!
//! Images built for the Go urunc ship upstream's urunit, which reads only the legacy text
//! `UES`/`UEE` (environment), `UCS`/`UCE` (uid, gid, working directory), `UBS`/`UBE` (block
//! volumes). It matches lines by their first bytes (`memcmp(line, "UEE", 3)`), so an
//! environment entry starting with `UEE` ends the list and the lines after it are read as
//! other sections: that is the injection this crate exists to close.
//!
//! The file the host writes is therefore `legacy text` followed by `NUL` and the v1 encoding
//! ([`config::encode_file`]):
//!
//! - Our urunit reads **only** the v1 encoding, found at the first `NUL` (legacy text never
//!   holds a `NUL`: a value with one is never written there). It never reads the legacy text.
//! - Upstream's urunit reads the legacy text from offset 0 and stops at the `NUL`.
//! - A legacy section is written only when no value in it can be misread by a line-based
//!   reader ([`legacy`] states the rule). When the environment cannot be written safely, the
//!   `UES` section is left out and the host logs which variable caused it (upstream's urunit
//!   then runs the program with no environment of the container's, never with injected
//!   lines). When the identity/working directory or a volume cannot be written safely, the
//!   host refuses the container: leaving `UCS` out would make upstream's urunit run the
//!   program as root, and leaving a volume out would hide data.
//! - urunc's extensions (network, hostname, argv, debug, grace period, channel) travel only
//!   in the v1 encoding.

pub mod config;
mod decode;
pub mod exec;
pub mod frame;
pub mod legacy;
mod wire;

pub use config::{Block, Channel, Config, DecodeError, Net};
pub use frame::{Decoder, Frame, FrameError, Message};
pub use legacy::LegacyError;

/// The whole file: legacy text (when it can be written safely, see `crate::legacy`) and the
/// v1 blob. Returns the bytes and the warnings the host should log.
pub fn encode_file(c: &Config) -> Result<(Vec<u8>, Vec<String>), LegacyError> {
    let (mut out, warnings) = legacy::text(c)?;
    let blob = c.encode().map_err(|e| LegacyError(e.to_string()))?;
    let mut bytes = std::mem::take(&mut out).into_bytes();
    bytes.extend_from_slice(&blob);
    Ok((bytes, warnings))
}
