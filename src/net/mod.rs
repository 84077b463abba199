//! Networking: the guest takes the container's place on its network (the networking issue
//! fills this in: interface discovery, the container's tap, tc redirect over netlink).

use crate::container::State;
use crate::plan::{NetParams, PlanInput};

/// In the container process, after the createContainer hooks: discover the container's network
/// and create this container's tap. `None`: no network (the guest boots without one).
pub fn setup(_state: &mut State, _input: &PlanInput) -> crate::error::Result<Option<NetParams>> {
    Ok(None)
}

/// The supervisor's exit: remove this container's tap (best effort).
pub fn teardown_own(_state: &State) {}

/// `delete`: remove this container's tap and redirect rules from its network namespace.
pub fn cleanup(_state: &State) {}
