//! Just enough newc cpio reading to find one file in a retained initrd.

fn hex(b: &[u8]) -> Option<usize> {
    usize::from_str_radix(std::str::from_utf8(b).ok()?, 16).ok()
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The contents of the entry called `name` (with or without a leading `./` or `/`).
pub fn find<'a>(data: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let mut off = 0;
    while off + 110 <= data.len() {
        // Concatenated archives are separated by zero padding.
        if data[off] == 0 {
            off += 4;
            continue;
        }
        let h = &data[off..off + 110];
        if !(h.starts_with(b"070701") || h.starts_with(b"070702")) {
            return None;
        }
        let size = hex(&h[54..62])?;
        let namesize = hex(&h[94..102])?;
        let name_end = off + 110 + namesize;
        let entry = data.get(off + 110..name_end.saturating_sub(1))?;
        let start = align4(name_end);
        let body = data.get(start..start + size)?;
        let e = std::str::from_utf8(entry).ok()?;
        if e.trim_start_matches("./").trim_start_matches('/') == name {
            return Some(body);
        }
        off = align4(start + size);
    }
    None
}

#[cfg(test)]
mod tests {
    fn entry(name: &str, body: &[u8]) -> Vec<u8> {
        let mut v = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1,
            0o100400,
            0,
            0,
            1,
            0,
            body.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        )
        .into_bytes();
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v.extend_from_slice(body);
        while !v.len().is_multiple_of(4) {
            v.push(0);
        }
        v
    }

    #[test]
    fn finds_an_entry_across_archives() {
        let mut a = entry("bin/sh", b"#!");
        a.extend(entry("TRAILER!!!", b""));
        a.extend([0u8; 8]);
        a.extend(entry("./urunit.conf", b"UES\nUEE\n"));
        assert_eq!(super::find(&a, "urunit.conf"), Some(&b"UES\nUEE\n"[..]));
        assert_eq!(super::find(&a, "nope"), None);
        assert_eq!(crate::config::bytes_of(&a), &b"UES\nUEE\n"[..]);
    }
}
