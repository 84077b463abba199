//! What `create` knows before it forks: the launch plan's inputs, resolved and validated.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::{Accel, PlanInput, ProcessParams};
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
    let from =
        |key: &str, e: crate::plan::PlanError| Error::Msg(format!("{}: {e}", uk.origin(key)));
    let guest =
        crate::guest::lookup(&uk.unikernel_type).map_err(|e| from(crate::unikernel::TYPE, e))?;
    let monitor = crate::monitor::lookup(&uk.hypervisor)
        .map_err(|e| from(crate::unikernel::HYPERVISOR, e))?;
    crate::launch::compatible(&*guest, &*monitor)?;
    let mcfg = cfg.monitor(monitor.name());
    let requested_accel = match uk.accel.as_str() {
        "" => mcfg.accel.as_str(),
        a => a,
    };
    let arch = crate::plan::guest_arch(
        spec.annotations
            .get(crate::plan::ARCH_ANNOTATION)
            .map(String::as_str),
        monitor.name(),
        requested_accel,
    )?;
    let monitor_path = crate::monitor::find_binary(monitor.name(), &mcfg, arch)?;
    let kernel = crate::bundle::resolve_file(rootfs, &uk.binary, "kernel")?;
    let initrd = match uk.initrd.as_str() {
        "" => None,
        p => Some(crate::bundle::resolve_file(rootfs, p, "initrd")?),
    };
    let p = spec.process()?;
    let process = ProcessParams {
        args: p.args.clone(),
        env: p.env.clone(),
        uid: p.user.uid,
        gid: p.user.gid,
        additional_gids: p.user.additional_gids.clone(),
        cwd: p.cwd.clone(),
        terminal: p.terminal,
        hostname: spec.hostname.clone().unwrap_or_default(),
    };
    let resources = spec.linux.as_ref().and_then(|l| l.resources.as_ref());
    let mut memory_bytes = mcfg.default_memory_mb.checked_mul(1 << 20).ok_or_else(|| {
        Error::Msg(format!(
            "[monitors.{}] default_memory_mb = {} in the config file is too large (at most {} MiB)",
            monitor.name(),
            mcfg.default_memory_mb,
            u64::MAX >> 20
        ))
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
                Error::Msg(format!(
                    "linux.resources.cpu quota {q} / period {per} asks for more vCPUs than a monitor can give"
                ))
            })?;
        }
    }
    // KVM when it runs this monitor's guests (probed, cached under the root), else TCG where
    // the monitor emulates; KVM-only monitors fail here with the reason (crate::accel)
    let accel = crate::accel::choose(&crate::accel::Request {
        monitor: monitor.name(),
        binary: &monitor_path,
        requested: requested_accel,
        arch,
        cache_root: Some(root),
    })?
    .accel;
    if let Some(w) = crate::accel::tcg_warning(guest.name(), accel) {
        log::warn!("{w}");
    }
    let seccomp = spec.linux.as_ref().is_some_and(|l| l.seccomp.is_some());
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
    let sel = crate::storage::select::select(crate::storage::select::Request {
        guest: guest.name(),
        monitor: monitor.name(),
        rootfs,
        initrd: initrd.is_some(),
        mount_rootfs: uk.mount_rootfs,
        annotation_blocks,
        binds: crate::storage::binds::from_spec(&spec.mounts, bundle),
        virtiofsd,
        mounts,
    })
    .map_err(Error::Msg)?;
    if accel == Accel::Kvm {
        // a kvm_group that names no group fails here, not at start
        crate::sandbox::identity::kvm_gid(&mcfg.kvm_group)
            .map_err(crate::sandbox::SandboxError::from)?;
    }
    let dhcp_requested = match spec
        .annotations
        .get(crate::plan::DHCP_ANNOTATION)
        .map(String::as_str)
    {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(Error::Msg(format!(
                "invalid value {v:?} for annotation {}: use true or false",
                crate::plan::DHCP_ANNOTATION
            )))
        }
    };
    // a bad network mode or port list fails here, before anything is made
    crate::net::mode_of(&spec.annotations, cfg).map_err(|e| Error::Msg(e.to_string()))?;
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
