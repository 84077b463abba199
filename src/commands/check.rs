//! `check`: whether this host can run unikernels, and with which monitors (filled in by the
//! engines issue; for now it reports monitors and the delegate).

use crate::error::Result;

pub fn run(json: bool) -> Result<i32> {
    let cfg = crate::config::Config::load()?;
    let arch = crate::plan::Arch::host();
    let mut monitors = serde_json::Map::new();
    for name in crate::monitor::NAMES {
        let found = crate::monitor::find_binary(name, &cfg.monitor(name), arch);
        monitors.insert(
            name.to_string(),
            match found {
                Ok(p) => serde_json::json!({"found": true, "path": p}),
                Err(e) => serde_json::json!({"found": false, "error": e.to_string()}),
            },
        );
    }
    let delegate = crate::delegate::find(&cfg.delegate.runtime);
    let ok = monitors.values().any(|m| m["found"] == true);
    let v = serde_json::json!({"ok": ok, "monitors": monitors, "delegate": delegate});
    if json {
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        for (name, m) in &monitors {
            println!(
                "monitor {name}: {}",
                if m["found"] == true {
                    m["path"].as_str().unwrap_or("").to_string()
                } else {
                    m["error"].as_str().unwrap_or("").to_string()
                }
            );
        }
        println!(
            "delegate runtime: {}",
            delegate
                .map(|p| p.display().to_string())
                .unwrap_or("none".into())
        );
    }
    Ok(if ok { 0 } else { 1 })
}
