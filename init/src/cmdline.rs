//! The kernel command line as urunit reads it (`/proc/cmdline`, not its own argv: the kernel
//! splits init arguments on spaces and knows nothing of urunc's quoting).
//!
//! Before the first standalone `--`: kernel parameters, of which urunit reads
//! `URUNIT_CONFIG=<file>`, `URUNIT_DEBUG=1`, `URUNIT_DEFROUTE=1` (accepted, the default route
//! is always added on-link) and `ip=`. After it: the program's argv in urunc's convention:
//! arguments are separated by spaces, and an argument containing spaces is wrapped in single
//! quotes (`/bin/echo 'hello world'`). Hosts should also quote arguments holding a `'` and
//! write it as `'\''` (shell style: `'it'\''s'`); what Go urunc writes (quotes unescaped)
//! is still understood where it is unambiguous (see `split_args`).

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cmdline {
    pub config: Option<String>,
    pub debug: bool,
    pub ip: Option<String>,
    pub args: Vec<String>,
}

pub fn parse(s: &str) -> Cmdline {
    let s = s.trim_end_matches(['\n', '\0']);
    let (params, rest) = split_dashes(s);
    let mut c = Cmdline::default();
    for p in params.split_ascii_whitespace() {
        if let Some(v) = p.strip_prefix("URUNIT_CONFIG=") {
            c.config = Some(v.to_string());
        } else if let Some(v) = p.strip_prefix("URUNIT_DEBUG=") {
            c.debug = v == "1" || v == "true";
        } else if let Some(v) = p.strip_prefix("ip=") {
            c.ip = Some(v.to_string());
        }
    }
    if let Some(r) = rest {
        c.args = split_args(r);
    }
    c
}

fn split_dashes(s: &str) -> (&str, Option<&str>) {
    if s == "--" || s.starts_with("-- ") {
        return ("", Some(&s[2..]));
    }
    match s.find(" -- ") {
        Some(i) => (&s[..i], Some(&s[i + 4..])),
        None if s.ends_with(" --") => (&s[..s.len() - 3], Some("")),
        None => (s, None),
    }
}

/// Splits urunc-quoted arguments. A line holding an escaped quote (`'\''`) was written by a
/// host that escapes quotes: it is split shell-style (single quotes, `\'` for a quote).
/// Anything else is split with Go urunc's looser rule, which never escapes quotes.
pub fn split_args(s: &str) -> Vec<String> {
    if s.contains(r"'\''") {
        if let Some(v) = split_shell(s) {
            return v;
        }
    }
    split_loose(s)
}

/// `'...'` is literal, `\'` is a quote, everything else (backslashes included) is literal;
/// None if a quote is left open.
fn split_shell(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            ' ' | '\t' => {
                if let Some(w) = cur.take() {
                    out.push(w);
                }
            }
            '\'' => {
                let w = cur.get_or_insert_with(String::new);
                loop {
                    match it.next()? {
                        '\'' => break,
                        ch => w.push(ch),
                    }
                }
            }
            '\\' if it.peek() == Some(&'\'') => {
                it.next();
                cur.get_or_insert_with(String::new).push('\'');
            }
            ch => cur.get_or_insert_with(String::new).push(ch),
        }
    }
    out.extend(cur);
    Some(out)
}

/// Go urunc's convention: an argument with spaces is wrapped in single quotes, nothing is
/// escaped. A quote opens only at the start of an argument and closes before a space or the
/// end.
fn split_loose(s: &str) -> Vec<String> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b' ' || b[i] == b'\t' {
            i += 1;
            continue;
        }
        if b[i] == b'\'' {
            // closing quote: the first `'` followed by a space or the end
            let mut j = i + 1;
            let mut close = None;
            while j < b.len() {
                if b[j] == b'\'' && (j + 1 == b.len() || b[j + 1] == b' ') {
                    close = Some(j);
                    break;
                }
                j += 1;
            }
            if let Some(j) = close {
                out.push(s[i + 1..j].to_string());
                i = j + 1;
                continue;
            }
        }
        let end = s[i..].find([' ', '\t']).map(|n| i + n).unwrap_or(b.len());
        out.push(s[i..end].to_string());
        i = end;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urunc_example() {
        let c = parse("panic=-1 console=ttyS0 root=/dev/vda rw ip=10.244.1.7::10.244.1.1:255.255.255.0:urunc:eth0:off retain_initrd URUNIT_CONFIG=/sys/firmware/initrd init=/urunit -- /usr/sbin/nginx -g 'daemon off;'\n");
        assert_eq!(c.config.as_deref(), Some("/sys/firmware/initrd"));
        assert!(c.ip.unwrap().starts_with("10.244.1.7::"));
        assert_eq!(c.args, ["/usr/sbin/nginx", "-g", "daemon off;"]);
        assert!(!c.debug);
    }

    #[test]
    fn quoting_edge_cases() {
        assert_eq!(
            split_args("/bin/echo 'hello world'  it's 'it's here' 'a' ''"),
            ["/bin/echo", "hello world", "it's", "it's here", "a", ""]
        );
        assert_eq!(
            split_args(r"sh -c 'trap '\''echo hi; exit 7'\'' TERM' 'it'\''s' a\b ''"),
            [
                "sh",
                "-c",
                "trap 'echo hi; exit 7' TERM",
                "it's",
                r"a\b",
                ""
            ]
        );
        assert_eq!(
            split_args("sh -c 'echo $A; exit 3'"),
            ["sh", "-c", "echo $A; exit 3"]
        );
        assert_eq!(split_args("'unterminated x"), ["'unterminated", "x"]);
    }

    #[test]
    fn only_the_first_dashes_split() {
        let c = parse("URUNIT_DEBUG=1 rdinit=/urunit -- /bin/x -- y");
        assert!(c.debug);
        assert_eq!(c.args, ["/bin/x", "--", "y"]);
        assert_eq!(parse("quiet").args, Vec::<String>::new());
        assert_eq!(parse("-- a b").args, ["a", "b"]);
    }
}
