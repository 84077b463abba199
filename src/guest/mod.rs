//! Guest types: each turns the container into a kernel command line and guest-side devices.

use crate::plan::{PlanError, PlanInput};

mod linux;
pub mod urunit_channel;
pub mod urunit_conf;

/// What a guest type contributes to the plan, monitor-independent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuestSetup {
    /// The guest's command line (kernel args, or the unikernel's own format).
    pub cmdline: String,
    /// Extra initrd (urunit's configuration) to pass beside the image's.
    pub extra_initrd: Option<std::path::PathBuf>,
    /// Monitor-specific extra arguments (e.g. QEMU's `-no-reboot`).
    pub extra_args: Vec<String>,
}

pub trait Guest {
    fn name(&self) -> &'static str;
    /// Monitors this guest type runs on.
    fn monitors(&self) -> &'static [&'static str];
    fn prepare(&self, input: &PlanInput) -> Result<GuestSetup, PlanError>;
}

pub const TYPES: &[&str] = &["linux"];

pub fn lookup(name: &str) -> Result<Box<dyn Guest>, PlanError> {
    match name {
        "linux" => Ok(Box::new(linux::Linux)),
        _ => Err(PlanError::UnknownGuest(name.into(), TYPES.join(", "))),
    }
}
