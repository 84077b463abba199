//! What `create` knows before it forks: the launch plan's inputs, resolved and validated.

use super::LifecycleError;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::{Accel, MonitorConfig, PlanInput, ProcessParams};
use crate::spec::Spec;
use crate::unikernel::UnikernelConfig;
use std::path::{Path, PathBuf};

/// Everything the plan needs that is known at create: paths resolved inside the rootfs, the
/// monitor binary, memory, vCPUs, acceleration. `mounts` is read only if a path's filesystem
/// matters (storage::select).
#[allow(clippy::too_many_arguments)]
pub fn plan_input(
    id: &str,
    uk: &UnikernelConfig,
    cfg: &Config,
    spec: &Spec,
    rootfs: &Path,
    bundle: &Path,
    root: &Path,
    mounts: &crate::storage::mountinfo::Table,
) -> Result<(PlanInput, crate::storage::Pending)> {
    let (guest, monitor) = kinds(uk)?;
    let mcfg = cfg.monitor(monitor.name());
    let requested_accel = match uk.accel.as_str() {
        "" => mcfg.accel.as_str(),
        a => a,
    };
    let emulates = monitor.caps().support == crate::monitor::caps::Support::Emulates;
    let arch_asked = spec.annotations.get(crate::plan::ARCH_ANNOTATION);
    let arch = crate::plan::guest_arch(
        arch_asked.map(String::as_str),
        (monitor.name(), emulates),
        requested_accel,
    )?;
    let monitor_path = crate::monitor::find_binary(monitor.name(), &mcfg, arch)?;
    let kernel = crate::bundle::resolve_file(rootfs, &uk.binary, "kernel")?;
    let initrd = match uk.initrd.as_str() {
        "" => None,
        p => Some(crate::bundle::resolve_file(rootfs, p, "initrd")?),
    };
    let process = process_params(spec)?;
    let (memory_bytes, memory_limit, vcpus) = sizing(spec, monitor.name(), &mcfg)?;
    let accel = choose_accel(
        &*monitor,
        &monitor_path,
        (requested_accel, arch),
        root,
        &mcfg.kvm_group,
    )?;
    if let Some(w) = crate::accel::tcg_warning(guest.name(), accel) {
        log::warn!("{w}");
    }
    let seccomp = spec.linux.as_ref().is_some_and(|l| l.seccomp.is_some());
    let sel = select_storage(uk, cfg, spec, (rootfs, bundle), initrd.is_some(), mounts)?;
    let dhcp_requested = network_annotations(spec, cfg)?;
    let input = PlanInput {
        id: id.to_string(),
        arch,
        unikernel: uk.clone(),
        monitor_cfg: mcfg,
        monitor_path,
        kernel,
        initrd,
        blocks: sel.blocks,
        rootfs: rootfs.to_path_buf(),
        process,
        net: None,
        memory_bytes,
        vcpus,
        seccomp,
        accel,
        work_dir: PathBuf::new(),
        memory_limit,
        machine: spec
            .annotations
            .get(crate::plan::MACHINE_ANNOTATION)
            .cloned()
            .unwrap_or_default(),
        shared_fs: sel.shared_fs,
        guest_channel_fd: None,
        qmp_fd: None,
        initrd_files: sel.initrd_files,
        boot_initrd: None,
        dhcp_requested,
    };
    let pending = crate::storage::Pending {
        takeovers: sel.takeovers,
        copy_into_rootfs: sel.copy_into_rootfs,
    };
    Ok((input, pending))
}

fn process_params(spec: &Spec) -> Result<ProcessParams> {
    let p = spec.process()?;
    Ok(ProcessParams {
        args: p.args.clone(),
        env: p.env.clone(),
        uid: p.user.uid,
        gid: p.user.gid,
        additional_gids: p.user.additional_gids.clone(),
        cwd: p.cwd.clone(),
        terminal: p.terminal,
        hostname: spec.hostname.clone().unwrap_or_default(),
    })
}

/// Guest memory (bytes), the container's memory limit, and vCPUs: the monitor's defaults, or
/// what `linux.resources` gives (the CPU quota rounded up).
fn sizing(spec: &Spec, monitor: &str, mcfg: &MonitorConfig) -> Result<(u64, Option<u64>, u32)> {
    let resources = spec.linux.as_ref().and_then(|l| l.resources.as_ref());
    let mut memory_bytes = mcfg.default_memory_mb.checked_mul(1 << 20).ok_or_else(|| {
        LifecycleError::MemoryTooLarge {
            monitor: monitor.to_string(),
            mb: mcfg.default_memory_mb,
            max: u64::MAX >> 20,
        }
    })?;
    let memory_limit = resources
        .and_then(|r| r.memory.as_ref())
        .and_then(|m| m.limit)
        .filter(|l| *l > 0)
        .map(|l| l as u64);
    if let Some(limit) = memory_limit {
        memory_bytes = limit;
    }
    let mut vcpus = mcfg.default_vcpus;
    if let Some(c) = resources.and_then(|r| r.cpu.as_ref()) {
        if let (Some(q), Some(per)) = (c.quota.filter(|q| *q > 0), c.period.filter(|p| *p > 0)) {
            vcpus = u32::try_from((q as u64).div_ceil(per).max(1)).map_err(|_| {
                LifecycleError::TooManyVcpus {
                    quota: q,
                    period: per,
                }
            })?;
        }
    }
    Ok((memory_bytes, memory_limit, vcpus))
}

/// The `com.urunc.unikernel.dhcp` annotation.
/// Checks the network annotations before anything is made (a bad network mode or port list
/// fails here); returns whether the guest asked for DHCP.
fn network_annotations(spec: &Spec, cfg: &Config) -> Result<bool> {
    crate::net::mode_of(&spec.annotations, cfg)?;
    dhcp_requested(spec)
}

fn dhcp_requested(spec: &Spec) -> Result<bool> {
    Ok(
        match spec
            .annotations
            .get(crate::plan::DHCP_ANNOTATION)
            .map(String::as_str)
        {
            None | Some("false") => false,
            Some("true") => true,
            Some(v) => {
                return Err(LifecycleError::NotABool {
                    key: crate::plan::DHCP_ANNOTATION,
                    value: v.to_string(),
                }
                .into())
            }
        },
    )
}

/// Where the guest's root filesystem and volumes come from (`storage::select`).
fn select_storage(
    uk: &UnikernelConfig,
    cfg: &Config,
    spec: &Spec,
    (rootfs, bundle): (&Path, &Path),
    has_initrd: bool,
    mounts: &crate::storage::mountinfo::Table,
) -> Result<crate::storage::select::Selection> {
    let block = match uk.block.as_str() {
        "" => None,
        p => Some(crate::bundle::resolve_file(rootfs, p, "block image")?),
    };
    let annotation_blocks = crate::plan::annotation_blocks(uk, block)?;
    let virtiofsd = cfg
        .extra_binaries
        .get("virtiofsd")
        .map(|b| PathBuf::from(&b.path))
        .filter(|p| p.is_file());
    crate::storage::select::select(crate::storage::select::Request {
        guest: &uk.unikernel_type,
        monitor: &uk.hypervisor,
        rootfs,
        initrd: has_initrd,
        mount_rootfs: uk.mount_rootfs,
        annotation_blocks,
        binds: crate::storage::binds::from_spec(&spec.mounts, bundle),
        virtiofsd,
        mounts,
    })
    .map_err(Error::from)
}

/// KVM when it runs this monitor's guests (probed, cached under the root), else TCG where the
/// monitor emulates; KVM-only monitors fail here with the reason (`crate::accel`), and so does
/// a `kvm_group` that names no group.
fn choose_accel(
    monitor: &dyn crate::monitor::Monitor,
    binary: &Path,
    (requested, arch): (&str, crate::plan::Arch),
    root: &Path,
    kvm_group: &str,
) -> Result<Accel> {
    let accel = crate::accel::choose(&crate::accel::Request {
        monitor: monitor.name(),
        binary,
        requested,
        arch,
        cache_root: Some(root),
    })?
    .accel;
    if accel == Accel::Kvm {
        crate::sandbox::identity::kvm_gid(kvm_group).map_err(crate::sandbox::SandboxError::from)?;
    }
    Ok(accel)
}

type Kinds = (
    Box<dyn crate::guest::Guest>,
    Box<dyn crate::monitor::Monitor>,
);

/// The guest type and the monitor the annotations name, and that the one runs on the other.
fn kinds(uk: &UnikernelConfig) -> Result<Kinds> {
    let from = |key: &str, source| LifecycleError::Annotation {
        origin: uk.origin(key).to_string(),
        source,
    };
    let guest =
        crate::guest::lookup(&uk.unikernel_type).map_err(|e| from(crate::unikernel::TYPE, e))?;
    let monitor = crate::monitor::lookup(&uk.hypervisor)
        .map_err(|e| from(crate::unikernel::HYPERVISOR, e))?;
    crate::launch::compatible(&*guest, &*monitor)?;
    Ok((guest, monitor))
}
