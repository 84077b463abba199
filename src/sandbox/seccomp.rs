//! Seccomp, compiled in with `seccompiler` (no libseccomp). Two policies:
//!
//! - the deny-list every monitor gets: what no VMM needs (kernel modules, kexec, bpf,
//!   perf_event_open, ptrace and process_vm_*, keyrings, the mount API, chroot/pivot_root,
//!   namespaces, swap, reboot, clock and time setting, file handles, iopl/ioperm, userfaultfd,
//!   ...) fails with `EPERM`; `clone3` fails with `ENOSYS` (its flags cannot be inspected, and
//!   libc then falls back to `clone`, whose namespace flags are refused). `seccomp` and `prctl`
//!   stay allowed so QEMU's `-sandbox` filter stacks on top;
//! - Solo5-hvt's allow-list, as urunc installs it (default action `SIGSYS`).
//!
//! `linux.seccomp` absent from the spec (`--security-opt seccomp=unconfined`) turns the
//! monitor's filter off (and QEMU's `-sandbox`), as urunc does; the supervisor keeps its own.

use crate::plan::SeccompPolicy;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

mod hvt;
use hvt::solo5_hvt;

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {0}")]
    Compile(#[from] seccompiler::BackendError),
    #[error("seccomp: {0}")]
    Apply(#[from] seccompiler::Error),
}

#[cfg(target_arch = "x86_64")]
pub(super) const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
pub(super) const ARCH: TargetArch = TargetArch::aarch64;

// musl's libc crate lacks it on aarch64 (the generic syscall table's number there is 294)
#[cfg(target_arch = "x86_64")]
const SYS_KEXEC_FILE_LOAD: libc::c_long = libc::SYS_kexec_file_load;
#[cfg(target_arch = "aarch64")]
const SYS_KEXEC_FILE_LOAD: libc::c_long = 294;

/// Syscalls no monitor needs.
fn denied() -> Vec<libc::c_long> {
    #[cfg_attr(target_arch = "aarch64", allow(unused_mut))]
    let mut v = vec![
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        SYS_KEXEC_FILE_LOAD,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_process_madvise,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_keyctl,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_userfaultfd,
        libc::SYS_fanotify_init,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_vhangup,
        libc::SYS_sethostname,
        libc::SYS_setdomainname,
        libc::SYS_lookup_dcookie,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_modify_ldt,
        libc::SYS_uselib,
        libc::SYS__sysctl,
    ]);
    v
}

pub(super) const NS_FLAGS: [libc::c_int; 7] = [
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

fn deny_list() -> Result<Vec<BpfProgram>, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        denied().into_iter().map(|s| (s, Vec::new())).collect();
    // clone with any namespace flag (or CLONE_NEWTIME, 0x80, which shares a bit with CSIGNAL's
    // range and is therefore only refused through unshare/clone3).
    let mut clone_rules = Vec::new();
    for f in NS_FLAGS {
        let f = f as u64;
        let cond = SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(f), f)?;
        clone_rules.push(SeccompRule::new(vec![cond])?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        ARCH,
    )?;
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        ARCH,
    )?;
    Ok(vec![deny.try_into()?, clone3.try_into()?])
}

/// Compiled filters, ready to install (compile before the last steps: it allocates).
pub struct Filters(Vec<BpfProgram>);

impl Filters {
    pub fn compile(policy: SeccompPolicy) -> Result<Filters, SeccompError> {
        Ok(Filters(match policy {
            SeccompPolicy::Off => Vec::new(),
            SeccompPolicy::DenyList => deny_list()?,
            SeccompPolicy::Solo5Hvt => solo5_hvt()?,
        }))
    }

    /// Installs every filter on the calling thread (sets no_new_privs first).
    pub fn apply(&self) -> Result<(), SeccompError> {
        for p in &self.0 {
            seccompiler::apply_filter(p)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a forked child under `policy`; returns the child's wait status.
    fn in_child(policy: SeccompPolicy, f: fn() -> i32) -> nix::sys::wait::WaitStatus {
        let filters = Filters::compile(policy).unwrap();
        // SAFETY: the child only makes raw syscalls and _exits; no allocation, no locks.
        match unsafe { nix::unistd::fork() }.unwrap() {
            nix::unistd::ForkResult::Child => {
                let code = if filters.apply().is_ok() { f() } else { 99 };
                // SAFETY: _exit in a forked child.
                unsafe { libc::_exit(code) }
            }
            nix::unistd::ForkResult::Parent { child } => {
                nix::sys::wait::waitpid(child, None).unwrap()
            }
        }
    }

    fn errno() -> i32 {
        std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
    }

    #[test]
    fn deny_list_refuses_with_eperm_and_allows_the_rest() {
        use nix::sys::wait::WaitStatus::Exited;
        let st = in_child(SeccompPolicy::DenyList, || {
            // SAFETY: syscalls with scalar arguments.
            unsafe {
                if libc::syscall(libc::SYS_ptrace, libc::PTRACE_TRACEME, 0, 0, 0) != -1
                    || errno() != libc::EPERM
                {
                    return 1;
                }
                if libc::unshare(libc::CLONE_NEWUSER) != -1 || errno() != libc::EPERM {
                    return 2;
                }
                let r = libc::syscall(libc::SYS_clone, libc::CLONE_NEWUSER | libc::SIGCHLD, 0);
                if r != -1 || errno() != libc::EPERM {
                    return 3;
                }
                if libc::syscall(libc::SYS_clone3, 0usize, 0usize) != -1 || errno() != libc::ENOSYS
                {
                    return 4;
                }
                if libc::getpid() <= 0 || libc::prctl(libc::PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1 {
                    return 5;
                }
            }
            0
        });
        assert!(matches!(st, Exited(_, 0)), "{st:?}");
    }

    /// What solo5-hvt v0.12.1 does at attach time and while setting up its net thread and its
    /// own filter (see `solo5_hvt`), with the arguments it uses.
    #[test]
    fn hvt_allow_list_permits_the_v0_12_tender() {
        use nix::sys::wait::WaitStatus::Exited;
        let st = in_child(SeccompPolicy::Solo5Hvt, || {
            // SAFETY: socket/ioctl/eventfd/memfd/prctl/close with valid scalar arguments and a
            // zeroed ifreq-sized buffer we own; clone3 with a null pointer only reaches seccomp.
            unsafe {
                let nl = libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    libc::NETLINK_ROUTE,
                );
                let inet = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
                if nl < 0 || inet < 0 {
                    return 1;
                }
                let mut ifr = [0u8; 40];
                ifr[..2].copy_from_slice(b"lo");
                if libc::ioctl(inet, libc::SIOCGIFMTU as _, ifr.as_mut_ptr()) != 0 {
                    return 2;
                }
                if libc::eventfd(0, libc::EFD_CLOEXEC) < 0 {
                    return 3;
                }
                if libc::syscall(libc::SYS_memfd_create, c"f".as_ptr(), 0) < 0 {
                    return 4;
                }
                if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                    return 5;
                }
                if libc::syscall(libc::SYS_clone3, 0usize, 0usize) != -1 || errno() != libc::ENOSYS
                {
                    return 6;
                }
                libc::close(nl);
                libc::close(inet);
            }
            0
        });
        assert!(matches!(st, Exited(_, 0)), "{st:?}");
        // any other socket, and a clone that is not a thread, are outside the list
        for f in [
            // SAFETY: socket with scalar arguments.
            (|| unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) }) as fn() -> i32,
            // SAFETY: socket with scalar arguments.
            || unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM, 0) },
            // SAFETY: a fork-like clone (no CLONE_THREAD); the filter stops it before the kernel.
            || unsafe { libc::syscall(libc::SYS_clone, libc::SIGCHLD, 0) as i32 },
        ] {
            let st = in_child(SeccompPolicy::Solo5Hvt, f);
            assert!(
                matches!(
                    st,
                    nix::sys::wait::WaitStatus::Signaled(_, nix::sys::signal::Signal::SIGSYS, _)
                ),
                "{st:?}"
            );
        }
    }

    #[test]
    fn hvt_allow_list_traps_anything_else() {
        use nix::sys::wait::WaitStatus::{Exited, Signaled};
        let st = in_child(SeccompPolicy::Solo5Hvt, || {
            // SAFETY: getpid takes no argument.
            if unsafe { libc::syscall(libc::SYS_getpid) } <= 0 {
                return 1;
            }
            0
        });
        assert!(matches!(st, Exited(_, 0)), "{st:?}");
        let st = in_child(SeccompPolicy::Solo5Hvt, || {
            // SAFETY: getppid takes no argument; it is not in the allow-list.
            unsafe { libc::syscall(libc::SYS_getppid) };
            0
        });
        assert!(
            matches!(st, Signaled(_, nix::sys::signal::Signal::SIGSYS, _)),
            "{st:?}"
        );
    }
}
