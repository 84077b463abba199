//! Solo5-hvt's seccomp allow-list (`SeccompPolicy::Solo5Hvt`), as urunc installs it.

use super::{SeccompError, ARCH, NS_FLAGS};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use std::collections::BTreeMap;

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
pub(super) fn solo5_hvt() -> Result<Vec<BpfProgram>, SeccompError> {
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
