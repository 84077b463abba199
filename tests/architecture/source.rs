//! Reading the source tree: files, their test-only parts, the modules a line names, the
//! functions and their lengths (line-based, relying on rustfmt's layout).

use std::collections::BTreeSet;
use std::path::Path;

pub struct File {
    /// Path relative to `src/`, with `/`.
    pub rel: String,
    pub lines: Vec<String>,
    /// The whole file is test code (declared under `#[cfg(test)]` in its parent).
    pub test_only: bool,
}

impl File {
    /// The lines before the inline `#[cfg(test)] mod tests {` (none for a test-only file).
    pub fn production(&self) -> &[String] {
        if self.test_only {
            return &[];
        }
        let end = self
            .lines
            .windows(2)
            .position(|w| {
                let next = w[1].trim().trim_start_matches("pub ");
                w[0].trim() == "#[cfg(test)]" && next.starts_with("mod ") && next.ends_with('{')
            })
            .unwrap_or(self.lines.len());
        &self.lines[..end]
    }

    pub fn top(&self) -> String {
        let first = self.rel.split('/').next().unwrap_or("");
        first.trim_end_matches(".rs").to_string()
    }
}

pub fn load(src: &Path) -> Vec<File> {
    let mut files = Vec::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(src).unwrap().to_string_lossy().into_owned();
                let text = std::fs::read_to_string(&p).unwrap();
                let lines = text.lines().map(String::from).collect();
                files.push(File {
                    rel,
                    lines,
                    test_only: false,
                });
            }
        }
    }
    let tests = test_only_files(&files);
    for f in &mut files {
        f.test_only = tests.contains(&f.rel);
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    files
}

/// Files declared as `#[cfg(test)] mod x;` by their parent (`a/mod.rs` or `a.rs` declares
/// `a/x.rs`), and every file below such a module.
fn test_only_files(files: &[File]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for f in files {
        let dir = match f.rel.strip_suffix("mod.rs") {
            Some(d) => d.to_string(),
            None if f.rel == "lib.rs" || f.rel == "main.rs" => String::new(),
            None => format!("{}/", f.rel.trim_end_matches(".rs")),
        };
        for w in f.lines.windows(2) {
            if w[0].trim() != "#[cfg(test)]" {
                continue;
            }
            let decl = w[1].trim().trim_start_matches("pub ");
            if let Some(name) = decl.strip_prefix("mod ").and_then(|n| n.strip_suffix(';')) {
                out.insert(format!("{dir}{name}.rs"));
                out.insert(format!("{dir}{name}/"));
            }
        }
    }
    let dirs: Vec<String> = out.iter().filter(|p| p.ends_with('/')).cloned().collect();
    for f in files {
        if dirs.iter().any(|d| f.rel.starts_with(d.as_str())) {
            out.insert(f.rel.clone());
        }
    }
    out
}

pub fn code(line: &str) -> &str {
    match line.find("//") {
        Some(i) => &line[..i],
        None => line,
    }
}

pub fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a line names through `crate::` or `urunc::` (also `crate::{a, b}`).
pub fn named_modules(line: &str, out: &mut BTreeSet<String>) {
    for prefix in ["crate::", "urunc::"] {
        for (i, _) in line.match_indices(prefix) {
            let before = line[..i].chars().last();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &line[i + prefix.len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let list = &list[..list.find('}').unwrap_or(list.len())];
                for item in list.split(',') {
                    out.insert(ident(item.trim()).to_string());
                }
            } else {
                out.insert(ident(rest).to_string());
            }
        }
    }
}

/// Each function of the production code: (name, lines).
pub fn functions(lines: &[String]) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let t = l.trim_start();
        let indent = &l[..l.len() - t.len()];
        let t = t
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub(super) ");
        let t = t.trim_start_matches("pub ").trim_start_matches("const ");
        let t = t
            .trim_start_matches("unsafe ")
            .trim_start_matches("extern \"C\" ");
        let Some(rest) = t.strip_prefix("fn ") else {
            continue;
        };
        let close = format!("{indent}}}");
        let end = lines[i..]
            .iter()
            .position(|x| *x == close || x == l && (x.ends_with(';') || x.ends_with('}')));
        if let Some(n) = end {
            out.push((ident(rest).to_string(), n + 1));
        }
    }
    out
}
