//! QEMU (placeholder: filled in by the guest-types issue).

use super::Monitor;
use crate::guest::GuestSetup;
use crate::plan::{Accel, Arch, LaunchPlan, PlanError, PlanInput, SeccompPolicy, Shutdown};

pub struct Qemu;

impl Monitor for Qemu {
    fn name(&self) -> &'static str {
        "qemu"
    }

    fn binary(&self, arch: Arch) -> &'static str {
        match arch {
            Arch::X86_64 => "qemu-system-x86_64",
            Arch::Aarch64 => "qemu-system-aarch64",
        }
    }

    fn plan(&self, input: &PlanInput, guest: &GuestSetup) -> Result<LaunchPlan, PlanError> {
        let mut argv = vec![input.monitor_path.display().to_string()];
        let mib = input.memory_bytes / (1024 * 1024);
        argv.extend([
            "-m".into(),
            format!("{mib}M"),
            "-smp".into(),
            input.vcpus.to_string(),
        ]);
        match input.accel {
            Accel::Kvm => {
                argv.extend(["-accel".into(), "kvm".into(), "-cpu".into(), "host".into()])
            }
            Accel::Tcg => argv.extend(["-accel".into(), "tcg".into(), "-cpu".into(), "max".into()]),
        }
        argv.extend(
            [
                "-display", "none", "-vga", "none", "-serial", "stdio", "-monitor", "none", "-nic",
                "none",
            ]
            .map(String::from),
        );
        argv.extend(["-kernel".into(), input.kernel.display().to_string()]);
        let mut read_paths = vec![input.kernel.clone()];
        if let Some(i) = &input.initrd {
            argv.extend(["-initrd".into(), i.display().to_string()]);
            read_paths.push(i.clone());
        }
        argv.extend(guest.extra_args.iter().cloned());
        if input.seccomp {
            // QEMU's own filter stacks on urunc's (sandbox::seccomp leaves seccomp/prctl open).
            argv.extend([
                "-sandbox".into(),
                "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny".into(),
            ]);
        }
        argv.extend(["-append".into(), guest.cmdline.clone()]);
        Ok(LaunchPlan {
            program: input.monitor_path.clone(),
            argv,
            env: Vec::new(),
            read_paths,
            exec_paths: vec![input.monitor_path.clone()],
            write_paths: Vec::new(),
            devices: Vec::new(),
            files: Vec::new(),
            keep_fds: Vec::new(),
            shutdown: Shutdown::Signal,
            needs_kvm: input.accel == Accel::Kvm,
            seccomp: if input.seccomp {
                SeccompPolicy::DenyList
            } else {
                SeccompPolicy::Off
            },
            guest_cmdline: guest.cmdline.clone(),
        })
    }
}
