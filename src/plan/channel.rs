//! Where urunit's control channel appears to the guest (the choice is explained in
//! `guest::urunit_channel`, the supervisor's side of it).

use super::{Arch, PlanInput};
use urunit_proto::Channel;

pub const PORT_NAME: &str = "urunc.urunit";
pub const SERIAL_TTY: &str = "ttyS1";

/// The device carrying the channel, once the supervisor made one (`guest_channel_fd`).
pub fn device(input: &PlanInput) -> Option<Channel> {
    input.guest_channel_fd?;
    Some(match input.arch {
        Arch::X86_64 => Channel::Serial(SERIAL_TTY.into()),
        Arch::Aarch64 => Channel::VirtioPort(PORT_NAME.into()),
    })
}
