//! Linux guests (reference 4.6): a kernel command line for urunit (or any other init) and
//! urunit's configuration, as an extra initrd or appended to a copy of the image's initrd.

use super::urunit::{self, Volume};
use super::{all_blocks, gateway_on_link, gw, linux_console, mask, squote, Guest, GuestSetup};
use crate::plan::MonitorKind;
use crate::plan::{Accel, CpioRecord, GeneratedFile, PlanError, PlanInput, RootfsKind};
use crate::plan::{GuestKind, StorageCaps};

pub struct Linux;

/// The kernel passes init at most 31 arguments after `--` (`CONFIG_INIT_ENV_ARG_LIMIT` 32,
/// splitting on blanks outside double quotes) and panics beyond ("Too many boot init vars");
/// its whole command line holds 2048 bytes on x86 (`COMMAND_LINE_SIZE`).
const MAX_INIT_WORDS: usize = 30;
const MAX_INIT_BYTES: usize = 1024;

/// Whether the program's argv can follow `--` on the kernel command line, quoted as urunc
/// does. When it cannot, urunit receives it in its configuration instead (`urunit_proto::Config::args`).
fn fits_kernel_cmdline(args: &[String]) -> bool {
    let line = args.iter().map(|a| squote(a)).collect::<Vec<_>>().join(" ");
    !args
        .iter()
        .any(|a| a.contains(|c: char| c.is_ascii_control() && c != '\t'))
        && line.split_ascii_whitespace().count() <= MAX_INIT_WORDS
        && line.len() <= MAX_INIT_BYTES
}

/// The Linux block id prefix on Firecracker (urunc names its drives `FC<ID>`).
const FC_PREFIX: &str = "FC";

impl Guest for Linux {
    fn kind(&self) -> GuestKind {
        GuestKind::Linux
    }

    fn storage(&self) -> StorageCaps {
        StorageCaps {
            block: true,
            fs: &["ext2", "ext3", "ext4", "9pfs", "virtiofs"],
        }
    }

    fn monitors(&self) -> &'static [MonitorKind] {
        &[
            MonitorKind::Qemu,
            MonitorKind::Firecracker,
            MonitorKind::CloudHypervisor,
        ]
    }

    fn prepare(&self, input: &PlanInput, monitor: MonitorKind) -> Result<GuestSetup, PlanError> {
        let args = input.app_args();
        let Some((app, rest)) = args.split_first() else {
            return Err(PlanError::Invalid("no init was specified".into()));
        };
        let uses_urunit = app.contains("urunit");
        let on_cmdline = fits_kernel_cmdline(rest);
        if !on_cmdline && !uses_urunit {
            return Err(PlanError::Invalid(format!(
                "the program's arguments do not fit on the kernel command line (at most {MAX_INIT_WORDS} blank-separated words, {MAX_INIT_BYTES} bytes, no line breaks); use urunit as the init"
            )));
        }
        let rootfs = input.rootfs_kind();
        // quiet: the container's stdout is the console; kernel messages are not the workload's
        let mut p = vec![
            "panic=-1".to_string(),
            linux_console(input.arch, monitor).into(),
            "quiet".into(),
            "loglevel=2".into(),
        ];
        p.extend(root_param(rootfs).map(String::from));
        if let Some(n) = &input.net {
            p.push(format!(
                "ip={}::{}:{}:urunc:eth0:off",
                n.ip,
                gw(n),
                mask(n.prefix)
            ));
        }
        let prefix = if monitor == MonitorKind::Firecracker {
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
            urunit_setup(
                input,
                (prefix, rootfs),
                (!on_cmdline).then_some(rest),
                &mut p,
                &mut setup,
            )?;
        } else {
            // without urunit the kernel hands init its environment from the command line
            p.extend(input.process.env.iter().map(|e| match e.split_once('=') {
                Some((k, v)) if v.contains(char::is_whitespace) => format!("{k}=\"{v}\""),
                _ => e.clone(),
            }));
        }
        if input.net.as_ref().is_some_and(|n| !gateway_on_link(n)) {
            p.push("URUNIT_DEFROUTE=1".into());
        }
        if monitor == MonitorKind::Qemu && input.machine == "microvm" && input.accel == Accel::Tcg {
            // Under TCG the kernel hangs calibrating the TSC on microvm without this.
            p.push("tsc_early_khz=2000000".into());
        }
        let init = if rootfs == RootfsKind::Initrd {
            "rdinit"
        } else {
            "init"
        };
        p.push(format!("{init}={}", squote(app)));
        if !rest.is_empty() && on_cmdline {
            p.push("--".into());
            p.extend(rest.iter().map(|a| squote(a)));
        }
        setup.cmdline = p.join(" ");
        if monitor == MonitorKind::Qemu {
            setup.extra_args = vec!["-no-reboot".into()];
        }
        Ok(setup)
    }
}

/// The kernel's root parameter for the rootfs kind.
fn root_param(rootfs: RootfsKind) -> Option<&'static str> {
    Some(match rootfs {
        RootfsKind::Block => "root=/dev/vda rw",
        RootfsKind::Initrd => "root=/dev/ram0 rw",
        RootfsKind::NineP => "root=fs0 rw rootfstype=9p rootflags=trans=virtio,version=9p2000.L,msize=5000000,cache=mmap,posixacl",
        RootfsKind::Virtiofs => "root=fs0 rw rootfstype=virtiofs",
        RootfsKind::None => return None,
    })
}

/// urunit's configuration, and where the guest finds it: in its initrd (the image's, or the
/// boot initrd), or as an extra initrd the kernel retains. `args`: the program's arguments
/// when they do not fit on the kernel command line.
fn urunit_setup(
    input: &PlanInput,
    (prefix, rootfs): (&str, RootfsKind),
    args: Option<&[String]>,
    p: &mut Vec<String>,
    setup: &mut GuestSetup,
) -> Result<(), PlanError> {
    let volumes: Vec<Volume> = input
        .blocks
        .iter()
        .filter(|b| b.mount_point != "/")
        .map(|b| Volume {
            id: format!("{prefix}{}", b.id),
            mount_point: b.mount_point.clone(),
        })
        .collect();
    let extras = urunit::Extras {
        volumes: &volumes,
        net: input.net.as_ref(),
        args,
        channel: super::urunit_channel::device(input),
    };
    let conf = urunit::config(&input.process, &extras).map_err(PlanError::Invalid)?;
    if rootfs == RootfsKind::Initrd || input.boot_initrd.is_some() {
        // in the image's initrd, or in the boot initrd that mounts the real root
        p.push("URUNIT_CONFIG=/urunit.conf".into());
        setup.initrd_records.push(CpioRecord {
            name: "urunit.conf".into(),
            mode: 0o100400,
            contents: conf,
            ..Default::default()
        });
    } else {
        p.push("retain_initrd URUNIT_CONFIG=/sys/firmware/initrd".into());
        let path = input.work_dir.join("urunit.conf");
        setup.extra_initrd = Some(path.clone());
        setup.files.push(GeneratedFile {
            path,
            contents: conf,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::fixture::input;
    use crate::plan::MonitorKind;

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn argv_that_the_kernel_cannot_carry_goes_to_urunit_config() {
        let short = strs(&["-c", "echo 'hi there'; exit 3"]);
        assert!(fits_kernel_cmdline(&short));
        let words = vec!["w".to_string(); MAX_INIT_WORDS];
        assert!(fits_kernel_cmdline(&words));
        let script = strs(&["-c", &["echo"; MAX_INIT_WORDS].join(" ")]);
        assert!(!fits_kernel_cmdline(&script));
        assert!(!fits_kernel_cmdline(&strs(&["-c", "a\nb"])));
        assert!(!fits_kernel_cmdline(&["x".repeat(MAX_INIT_BYTES + 1)]));

        let mut i = input("linux", "qemu");
        i.initrd = Some("/b/rootfs/initrd".into());
        i.process.args = strs(&["/urunit", "/bin/sh", "-c", "echo a\necho b"]);
        let s = Linux.prepare(&i, MonitorKind::Qemu).unwrap();
        assert!(s.cmdline.ends_with(" rdinit=/urunit"), "{}", s.cmdline);
        let conf = urunit_proto::Config::decode_file(&s.initrd_records[0].contents).unwrap();
        assert_eq!(
            conf.args.unwrap(),
            strs(&["/bin/sh", "-c", "echo a\necho b"])
        );

        i.process.args = strs(&["/sbin/init", "-c", "a\nb"]);
        assert!(Linux.prepare(&i, MonitorKind::Qemu).is_err());
    }
}
