//! The architecture rules of issue #15, checked on the source tree (run by `.ci/run`):
//! - no two top-level modules of `src/` import each other, directly or in a circle;
//! - the binary (`main.rs`, `cli*.rs`, `commands/`) parses, calls the engine and prints: it
//!   reaches none of the engine's internals (`BINARY_MAY_NOT_USE`);
//! - `plan` (the vocabulary guests and monitors exchange) imports no other part of urunc, and
//!   `guest` and `monitor` never import each other (they meet in `launch`);
//! - no monitor name as a string outside `monitor/`, config parsing (`config.rs`) and the
//!   names of `plan::MonitorKind` (`plan/kinds.rs`); no guest type name outside `guest/` and
//!   `plan::GuestKind`;
//! - `state.json` is written once, by `create` (`STATE_WRITER`): no other file saves a
//!   `State` (the container process reports what it made over the sync socket);
//! - no file over 400 lines, no function over 80 lines outside tests.
//!
//! The last two hold with known exceptions (`ALLOWED_*`, each a ceiling that may only go down):
//! a new violation, or a listed one that grows, fails. `planted_violations_are_caught` proves
//! that each rule can fail. The parsing is line-based and relies on rustfmt's layout (a
//! function's closing brace at its own indentation, `#[cfg(test)]` modules last in a file).

mod source;

use source::{code, functions, load, named_modules, File};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every monitor's name (the kinds' list) and the binaries whose names are not theirs.
fn monitor_names() -> Vec<&'static str> {
    let mut v = urunc::plan::MonitorKind::NAMES.to_vec();
    v.extend(["solo5-hvt", "solo5-spt"]);
    v
}
const GUEST_NAMES: &[&str] = &urunc::plan::GuestKind::NAMES;
/// Files that name guest types: `spec`'s example annotation, and `"linux"` as the OCI
/// section's name (in `spec` and `features`), which is no guest type.
const ALLOWED_GUEST_NAMES: &[(&str, usize)] =
    &[("commands/features.rs", 1), ("commands/spec.rs", 2)];
/// Engine parts the command line never calls directly (it goes through `lifecycle`,
/// `hostcheck`, `container`).
const BINARY_MAY_NOT_USE: &[&str] = &[
    "accel",
    "fault",
    "hooks",
    "launch",
    "net",
    "storage",
    "supervisor",
    "sys",
    "timestamps",
];
const BINARY: &[&str] = &["main", "cli", "cli_usage", "commands"];
/// The one place that writes `state.json` (`State::save`), and only once.
const STATE_WRITER: &str = "lifecycle/create.rs";
const MAX_FILE_LINES: usize = 400;
const MAX_FN_LINES: usize = 80;

/// Files that still name monitors, and how many times: `spec`'s example annotation.
const ALLOWED_NAMES: &[(&str, usize)] = &[("commands/spec.rs", 1)];
/// Files over the line limit, with their current length (none left).
const ALLOWED_FILES: &[(&str, usize)] = &[];
/// Functions over the length limit (`file:function`), with their current length (none left).
const ALLOWED_FNS: &[(&str, usize)] = &[];

/// Edges between top-level modules (a module's own name excluded).
fn graph(files: &[File]) -> BTreeMap<String, BTreeSet<String>> {
    let tops: BTreeSet<String> = files.iter().map(File::top).collect();
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let mut named = BTreeSet::new();
        // a `use crate::{...}` list may span lines: join the file
        let joined: String = f
            .lines
            .iter()
            .map(|l| code(l))
            .collect::<Vec<_>>()
            .join(" ");
        named_modules(&joined, &mut named);
        let top = f.top();
        let e = g.entry(top.clone()).or_default();
        e.extend(named.into_iter().filter(|m| *m != top && tops.contains(m)));
    }
    g
}

/// A circle through `start`, if any (depth-first search).
fn circle(g: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![vec![start.to_string()]];
    let mut seen = BTreeSet::new();
    while let Some(path) = stack.pop() {
        let last = path.last().unwrap();
        for next in g.get(last).into_iter().flatten() {
            if next == start {
                let mut c = path.clone();
                c.push(start.to_string());
                return Some(c);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push(p);
            }
        }
    }
    None
}

fn import_rules(files: &[File], errs: &mut Vec<String>) {
    let g = graph(files);
    let mut reported = BTreeSet::new();
    for m in g.keys() {
        if let Some(c) = circle(&g, m) {
            let key: BTreeSet<&String> = c.iter().collect();
            if reported.insert(format!("{key:?}")) {
                errs.push(format!("modules import each other: {}", c.join(" -> ")));
            }
        }
    }
    if let Some(deps) = g.get("plan").filter(|d| !d.is_empty()) {
        errs.push(format!(
            "plan imports {deps:?}: the vocabulary imports nothing"
        ));
    }
    for bin in BINARY {
        for m in g.get(*bin).into_iter().flatten() {
            if BINARY_MAY_NOT_USE.contains(&m.as_str()) {
                errs.push(format!(
                    "{bin} uses {m}: the command line goes through lifecycle"
                ));
            }
        }
    }
    for (a, b) in [("guest", "monitor"), ("monitor", "guest")] {
        if g.get(a).is_some_and(|d| d.contains(b)) {
            errs.push(format!("{a} imports {b}: they meet only in launch"));
        }
    }
}

fn allowed(list: &[(&str, usize)], key: &str) -> usize {
    list.iter().find(|(k, _)| *k == key).map_or(0, |(_, n)| *n)
}

fn count_names(f: &File, names: &[&str]) -> usize {
    let quoted = |l: &str, n: &&str| l.contains(&format!("\"{n}\""));
    let lines = f.production().iter().map(|l| code(l));
    lines
        .map(|l| names.iter().filter(|n| quoted(l, n)).count())
        .sum()
}

fn name_rule(files: &[File], allow: &[(&str, usize)], errs: &mut Vec<String>) {
    for f in files {
        // plan/kinds.rs: the one spelling of each name, for guests (`MonitorKind`)
        if f.rel.starts_with("monitor/") || f.rel == "config.rs" || f.rel == "plan/kinds.rs" {
            continue;
        }
        let n = count_names(f, &monitor_names());
        if n > allowed(allow, &f.rel) {
            errs.push(format!(
                "{}: {n} monitor names as strings (ask monitor:: instead)",
                f.rel
            ));
        }
    }
}

fn guest_name_rule(files: &[File], allow: &[(&str, usize)], errs: &mut Vec<String>) {
    for f in files {
        if f.rel.starts_with("guest/") || f.rel == "plan/kinds.rs" {
            continue;
        }
        let n = count_names(f, GUEST_NAMES);
        if n > allowed(allow, &f.rel) {
            errs.push(format!(
                "{}: {n} guest type names as strings (use GuestKind)",
                f.rel
            ));
        }
    }
}

fn state_write_rule(files: &[File], errs: &mut Vec<String>) {
    for f in files {
        let n: usize = f
            .production()
            .iter()
            .map(|l| code(l).matches(".save()").count())
            .sum();
        let allowed = usize::from(f.rel == STATE_WRITER);
        if n > allowed {
            errs.push(format!(
                "{}: saves the state {n} times (only create writes state.json, once)",
                f.rel
            ));
        }
    }
}

fn size_rules(files: &[File], fs: &[(&str, usize)], fns: &[(&str, usize)], errs: &mut Vec<String>) {
    for f in files {
        let n = f.lines.len();
        if n > MAX_FILE_LINES && n > allowed(fs, &f.rel) {
            errs.push(format!("{}: {n} lines (at most {MAX_FILE_LINES})", f.rel));
        }
        for (name, n) in functions(f.production()) {
            let key = format!("{}:{name}", f.rel);
            if n > MAX_FN_LINES && n > allowed(fns, &key) {
                errs.push(format!("{key}: {n} lines (at most {MAX_FN_LINES})"));
            }
        }
    }
}

fn check(
    src: &Path,
    names: &[(&str, usize)],
    fs: &[(&str, usize)],
    fns: &[(&str, usize)],
) -> Vec<String> {
    let files = load(src);
    let mut errs = Vec::new();
    import_rules(&files, &mut errs);
    name_rule(&files, names, &mut errs);
    guest_name_rule(&files, ALLOWED_GUEST_NAMES, &mut errs);
    state_write_rule(&files, &mut errs);
    size_rules(&files, fs, fns, &mut errs);
    errs
}

#[test]
fn the_source_tree_keeps_its_architecture() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let errs = check(&src, ALLOWED_NAMES, ALLOWED_FILES, ALLOWED_FNS);
    assert!(
        errs.is_empty(),
        "architecture rules broken:\n{}",
        errs.join("\n")
    );
}

#[test]
fn planted_violations_are_caught() {
    let d = tempfile::tempdir().unwrap();
    let put = |rel: &str, text: &str| {
        let p = d.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    put(
        "lib.rs",
        "pub mod plan;\npub mod guest;\npub mod monitor;\npub mod net;\n",
    );
    put(
        "plan/mod.rs",
        "use crate::guest::Guest;\n#[cfg(test)]\nmod fixture;\n",
    );
    // test code may name monitors and be long
    put("plan/fixture.rs", "const M: &str = \"qemu\";\nfn f() {}\n");
    put("big.rs", &"\n".repeat(MAX_FILE_LINES + 1));
    put("guest/mod.rs", "use crate::{plan::X, monitor};\n");
    put(
        "commands/kill.rs",
        "fn f() {\n    urunc::net::cleanup();\n}\n",
    );
    put(
        "monitor/mod.rs",
        "// crate::net is only mentioned\nconst M: &str = \"qemu\";\n",
    );
    let body = "    let x = 1;\n".repeat(MAX_FN_LINES);
    put(
        "net.rs",
        &format!("pub fn f() {{\n{body}}}\nconst M: &str = \"hvt\";\n"),
    );
    put(
        "storage.rs",
        "const G: &str = \"nanos\";\nfn f(s: State) {\n    s.save();\n}\n",
    );
    let clean = tempfile::tempdir().unwrap();
    std::fs::write(clean.path().join("lib.rs"), "fn f() {}\n").unwrap();
    assert!(check(clean.path(), &[], &[], &[]).is_empty());
    let errs = check(d.path(), &[], &[], &[]);
    let want = [
        "modules import each other: guest -> plan -> guest",
        "plan imports {\"guest\"}: the vocabulary imports nothing",
        "commands uses net: the command line goes through lifecycle",
        "guest imports monitor: they meet only in launch",
        "net.rs: 1 monitor names as strings (ask monitor:: instead)",
        "storage.rs: 1 guest type names as strings (use GuestKind)",
        "storage.rs: saves the state 1 times (only create writes state.json, once)",
        "big.rs: 401 lines (at most 400)",
        "net.rs:f: 82 lines (at most 80)",
    ];
    assert_eq!(errs, want);
    // a listed exception passes up to its ceiling
    let errs = check(
        d.path(),
        &[("net.rs", 1)],
        &[("big.rs", 401)],
        &[("net.rs:f", 82)],
    );
    assert_eq!(errs.len(), 6, "{errs:?}");
}
