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

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("seccomp: {0}")]
    Compile(#[from] seccompiler::BackendError),
    #[error("seccomp: {0}")]
    Apply(#[from] seccompiler::Error),
}

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

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

const NS_FLAGS: [libc::c_int; 7] = [
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

/// urunc's allow-list for solo5-hvt (`hypervisors/hvt.go`), installed right before execve,
/// plus what the v0.12 tender does beyond it (solo5 v0.12.1 sources; the same set was seen
/// with strace on a real solo5-hvt serving test_net by name):
/// - net attach (`tenders/common/tap_attach.c`): getifaddrs' `socket(AF_NETLINK, SOCK_RAW,
///   NETLINK_ROUTE)`, bind, getsockname, sendto, recvmsg; `openat("/dev/net/tun")`, TUNSETIFF;
///   `socket(AF_INET, SOCK_DGRAM)` with SIOCGIFMTU and SIOCETHTOOL. `socket` is allowed for
///   exactly these two families;
/// - the net I/O thread (`tenders/hvt/hvt_module_net.c`): eventfd2, pthread_create (clone3,
///   answered `ENOSYS` so that glibc falls back to `clone`, allowed only with `CLONE_THREAD`
///   and no namespace flag), rt_sigprocmask, madvise (thread exit);
/// - the tender's own filter (`tenders/hvt/hvt_seccomp_linux.c`): memfd_create, prctl
///   (`PR_SET_NO_NEW_PRIVS`), seccomp; and clock_gettime, which its list allows.
fn solo5_hvt() -> Result<Vec<BpfProgram>, SeccompError> {
    let mut allowed = vec![
        libc::SYS_rt_sigaction,
        libc::SYS_ioctl,
        libc::SYS_pread64,
        libc::SYS_mmap,
        libc::SYS_recvmsg,
        libc::SYS_openat,
        libc::SYS_sendto,
        libc::SYS_mprotect,
        libc::SYS_write,
        libc::SYS_epoll_ctl,
        libc::SYS_epoll_create1,
        libc::SYS_read,
        libc::SYS_close,
        libc::SYS_fstat,
        libc::SYS_munmap,
        libc::SYS_brk,
        libc::SYS_execve,
        libc::SYS_timerfd_create,
        libc::SYS_lseek,
        libc::SYS_personality,
        libc::SYS_bind,
        libc::SYS_getsockname,
        libc::SYS_exit,
        libc::SYS_exit_group,
        libc::SYS_getpid,
        libc::SYS_tgkill,
        libc::SYS_nanosleep,
        libc::SYS_futex,
        libc::SYS_epoll_pwait,
        libc::SYS_rt_sigreturn,
        libc::SYS_timerfd_settime,
        libc::SYS_pwrite64,
        libc::SYS_set_tid_address,
        libc::SYS_set_robust_list,
        libc::SYS_rseq,
        libc::SYS_prlimit64,
        libc::SYS_getrandom,
        // solo5 v0.12 (see above)
        libc::SYS_eventfd2,
        libc::SYS_clone3,
        libc::SYS_rt_sigprocmask,
        libc::SYS_madvise,
        libc::SYS_memfd_create,
        libc::SYS_prctl,
        libc::SYS_seccomp,
        libc::SYS_clock_gettime,
    ];
    #[cfg(target_arch = "x86_64")]
    allowed.extend([
        libc::SYS_open,
        libc::SYS_stat,
        libc::SYS_access,
        libc::SYS_arch_prctl,
        libc::SYS_newfstatat,
    ]);
    #[cfg(target_arch = "aarch64")]
    allowed.extend([libc::SYS_faccessat, libc::SYS_newfstatat]);
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        allowed.into_iter().map(|s| (s, Vec::new())).collect();
    rules.insert(libc::SYS_socket, hvt_socket_rules()?);
    rules.insert(libc::SYS_clone, vec![hvt_thread_clone()?]);
    let f = SeccompFilter::new(rules, SeccompAction::Trap, SeccompAction::Allow, ARCH)?;
    // clone3's flags sit behind a pointer: refuse it (ENOSYS), glibc then uses clone
    let clone3 = SeccompFilter::new(
        [(libc::SYS_clone3, Vec::new())].into_iter().collect(),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        ARCH,
    )?;
    Ok(vec![f.try_into()?, clone3.try_into()?])
}

/// `socket(AF_NETLINK, *, NETLINK_ROUTE)` (getifaddrs) and `socket(AF_INET, SOCK_DGRAM, *)`
/// (the MTU and ethtool ioctls): the only sockets the hvt tender opens.
fn hvt_socket_rules() -> Result<Vec<SeccompRule>, SeccompError> {
    let dword =
        |arg, op, v: libc::c_int| SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, v as u64);
    // the socket type carries SOCK_CLOEXEC/SOCK_NONBLOCK above its low bits
    let dgram = SeccompCmpOp::MaskedEq(0xf);
    Ok(vec![
        SeccompRule::new(vec![
            dword(0, SeccompCmpOp::Eq, libc::AF_NETLINK)?,
            dword(2, SeccompCmpOp::Eq, libc::NETLINK_ROUTE)?,
        ])?,
        SeccompRule::new(vec![
            dword(0, SeccompCmpOp::Eq, libc::AF_INET)?,
            dword(1, dgram, libc::SOCK_DGRAM)?,
        ])?,
    ])
}

/// clone for a thread (`CLONE_THREAD`), never with a namespace flag.
fn hvt_thread_clone() -> Result<SeccompRule, SeccompError> {
    let ns = NS_FLAGS.iter().fold(0u64, |m, f| m | *f as u64);
    let t = libc::CLONE_THREAD as u64;
    Ok(SeccompRule::new(vec![
        SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(t), t)?,
        SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(ns), 0)?,
    ])?)
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
