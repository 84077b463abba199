//! The process name and command line a long-lived urunc process shows in `ps`: the supervisor
//! is `urunc supervisor ID` (as conmon and the containerd shims name themselves), not the
//! `urunc ... create ...` it was forked from.
//!
//! The name is `comm` (PR_SET_NAME, at most 15 bytes): the words joined by '-', cut, so the
//! supervisor of `web` is `urunc-superviso` in `ps -e`, while `ps -ef` and pgrep -f see
//! the full `urunc supervisor web`. The command line is the kernel's view of our
//! argv area, `[arg_start, arg_end)` from /proc/self/stat (fields 48 and 49): it is rewritten
//! in place, NUL-separated and NUL-padded, so /proc/PID/cmdline reads the new words (the
//! kernel returns the whole area when its last byte is NUL). PR_SET_MM_ARG_START would need
//! CAP_SYS_RESOURCE; the area is ours and always at least as long as `urunc create ID`.

/// Renames this process; best effort (a title that does not fit is cut).
pub fn set(words: &[&str]) {
    let name = std::ffi::CString::new(words.join("-").chars().take(15).collect::<String>());
    if let Ok(name) = name {
        let _ = nix::sys::prctl::set_name(&name);
    }
    let Some((start, end)) = argv_area() else {
        return;
    };
    let mut title: Vec<u8> = Vec::new();
    for w in words {
        title.extend(w.bytes().filter(|b| *b != 0));
        title.push(0);
    }
    let len = end - start;
    title.resize(len, 0);
    title[len - 1] = 0;
    // SAFETY: [start, end) is this process's own argv area as the kernel reports it (on the
    // initial stack, writable, never freed); std::env::args copied it at startup and nothing
    // else holds a reference into it. Exactly `len` bytes are written.
    unsafe { std::ptr::copy_nonoverlapping(title.as_ptr(), start as *mut u8, len) };
}

/// `arg_start` and `arg_end` of this process; None when they cannot be read or look wrong.
fn argv_area() -> Option<(usize, usize)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // fields after the parenthesised comm (which may hold spaces): field 3 is the first
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    let start: usize = f.get(48 - 3)?.parse().ok()?;
    let end: usize = f.get(49 - 3)?.trim().parse().ok()?;
    (start != 0 && end > start && end - start <= 1 << 20).then_some((start, end))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_argv_area_is_found() {
        let (s, e) = super::argv_area().expect("arg_start/arg_end");
        // the test binary's own argv: its path at least
        let argv0 = std::env::args().next().unwrap_or_default();
        assert!(e - s > argv0.len(), "{s:#x}..{e:#x} for {argv0}");
    }
}
