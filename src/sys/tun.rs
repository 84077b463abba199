//! The TUN/TAP ioctls (`linux/if_tun.h`) on `/dev/net/tun`: make or attach to a tap, give it
//! an owner, make it persistent. Used by `net::tap` and by the monitor's sandbox.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;

const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const TUNSETPERSIST: libc::c_ulong = 0x4004_54cb;
const TUNSETOWNER: libc::c_ulong = 0x4004_54cc;
const TUNSETGROUP: libc::c_ulong = 0x4004_54ce;
const IFF_TAP: i16 = 0x0002;
const IFF_NO_PI: i16 = 0x1000;
const IFF_VNET_HDR: i16 = 0x4000;

#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: i16,
    _pad: [u8; 22],
}

fn ioctl(fd: &OwnedFd, req: libc::c_ulong, arg: libc::c_ulong) -> std::io::Result<()> {
    // SAFETY: the TUN ioctls used with this wrapper take an integer argument by value.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), req as _, arg) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Gives the existing persistent tap `name` (made with `vnet_hdr` as given: attaching with
/// other flags would change them) to `uid`/`gid`, as seen from the caller's user namespace.
/// The caller needs CAP_NET_ADMIN over the tap's network namespace or to own it already.
pub fn set_owner(name: &str, vnet_hdr: bool, uid: u32, gid: u32) -> std::io::Result<()> {
    let fd = attach(name, vnet_hdr)?;
    own(&fd, uid, gid)
}

/// TUNSETOWNER and TUNSETGROUP: `uid`/`gid` as seen from the caller's user namespace.
pub fn own(fd: &OwnedFd, uid: u32, gid: u32) -> std::io::Result<()> {
    ioctl(fd, TUNSETOWNER, uid as libc::c_ulong)?;
    ioctl(fd, TUNSETGROUP, gid as libc::c_ulong)
}

/// TUNSETPERSIST: the tap outlives its last fd.
pub fn persist(fd: &OwnedFd) -> std::io::Result<()> {
    ioctl(fd, TUNSETPERSIST, 1)
}

/// Opens a queue of the tap `name`, creating it when it does not exist.
pub fn attach(name: &str, vnet_hdr: bool) -> std::io::Result<OwnedFd> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/net/tun")?;
    let fd: OwnedFd = f.into();
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        flags: IFF_TAP | IFF_NO_PI | if vnet_hdr { IFF_VNET_HDR } else { 0 },
        _pad: [0; 22],
    };
    if name.len() >= libc::IFNAMSIZ {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "interface name too long",
        ));
    }
    req.name[..name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: TUNSETIFF reads and writes a `struct ifreq`; `req` has its size and layout.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), TUNSETIFF as _, &mut req as *mut IfReq) };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}
