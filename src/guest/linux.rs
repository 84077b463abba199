//! Linux guests (reference 4.6): a kernel command line for urunit (or any other init) and
//! urunit's configuration, as an extra initrd or appended to a copy of the image's initrd.

use super::urunit::{self, Volume};
use super::{all_blocks, gateway_on_link, gw, linux_console, mask, squote, Guest, GuestSetup};
use crate::plan::{Accel, CpioRecord, GeneratedFile, PlanError, PlanInput, RootfsKind};

pub struct Linux;

/// The Linux block id prefix on Firecracker (urunc names its drives `FC<ID>`).
const FC_PREFIX: &str = "FC";

impl Guest for Linux {
    fn name(&self) -> &'static str {
        "linux"
    }

    fn monitors(&self) -> &'static [&'static str] {
        &["qemu", "firecracker", "cloud-hypervisor"]
    }

    fn prepare(&self, input: &PlanInput, monitor: &str) -> Result<GuestSetup, PlanError> {
        let args = input.app_args();
        let Some((app, rest)) = args.split_first() else {
            return Err(PlanError::Invalid("no init was specified".into()));
        };
        let uses_urunit = app.contains("urunit");
        let rootfs = input.rootfs_kind();
        // quiet: the container's stdout is the console; kernel messages are not the workload's
        let mut p = vec![
            "panic=-1".to_string(),
            linux_console(input.arch, monitor).into(),
            "quiet".into(),
            "loglevel=2".into(),
        ];
        match rootfs {
            RootfsKind::Block => p.push("root=/dev/vda rw".into()),
            RootfsKind::Initrd => p.push("root=/dev/ram0 rw".into()),
            RootfsKind::NineP => p.push(
                "root=fs0 rw rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl".into(),
            ),
            RootfsKind::Virtiofs => p.push("root=fs0 rw rootfstype=virtiofs".into()),
            RootfsKind::None => {}
        }
        if let Some(n) = &input.net {
            p.push(format!(
                "ip={}::{}:{}:urunc:eth0:off",
                n.ip,
                gw(n),
                mask(n.prefix)
            ));
        }
        let prefix = if monitor == "firecracker" {
            FC_PREFIX
        } else {
            ""
        };
        let blocks = all_blocks(input, prefix);
        let mut setup = GuestSetup {
            blocks,
            ..Default::default()
        };
        if uses_urunit {
            let volumes: Vec<Volume> = input
                .blocks
                .iter()
                .filter(|b| b.mount_point != "/")
                .map(|b| Volume {
                    id: format!("{prefix}{}", b.id),
                    mount_point: b.mount_point.clone(),
                })
                .collect();
            let conf = urunit::config(&input.process, &volumes, input.net.as_ref())
                .map_err(PlanError::Invalid)?;
            if rootfs == RootfsKind::Initrd || input.boot_initrd.is_some() {
                // in the image's initrd, or in the boot initrd that mounts the real root
                p.push("URUNIT_CONFIG=/urunit.conf".into());
                setup.initrd_records.push(CpioRecord {
                    name: "urunit.conf".into(),
                    mode: 0o100400,
                    contents: conf.into_bytes(),
                    ..Default::default()
                });
            } else {
                p.push("retain_initrd URUNIT_CONFIG=/sys/firmware/initrd".into());
                let path = input.work_dir.join("urunit.conf");
                setup.extra_initrd = Some(path.clone());
                setup.files.push(GeneratedFile {
                    path,
                    contents: conf.into_bytes(),
                });
            }
        } else {
            for e in &input.process.env {
                match e.split_once('=') {
                    Some((k, v)) if v.contains(char::is_whitespace) => {
                        p.push(format!("{k}=\"{v}\""))
                    }
                    _ => p.push(e.clone()),
                }
            }
        }
        if input.net.as_ref().is_some_and(|n| !gateway_on_link(n)) {
            p.push("URUNIT_DEFROUTE=1".into());
        }
        if monitor == "qemu" && input.machine == "microvm" && input.accel == Accel::Tcg {
            // Under TCG the kernel hangs calibrating the TSC on microvm without this.
            p.push("tsc_early_khz=2000000".into());
        }
        let init = if rootfs == RootfsKind::Initrd {
            "rdinit"
        } else {
            "init"
        };
        p.push(format!("{init}={}", squote(app)));
        if !rest.is_empty() {
            p.push("--".into());
            p.extend(rest.iter().map(|a| squote(a)));
        }
        setup.cmdline = p.join(" ");
        if monitor == "qemu" {
            setup.extra_args = vec!["-no-reboot".into()];
        }
        Ok(setup)
    }
}
