//! `scripts/mkimage.sh`: guest images always carry a command docker, podman and CRI accept
//! (docker 20.10 and podman 4.3 refuse an image without one: "No command specified"), `osv` is a
//! guest type, and the creation date is real.

use std::process::Command;
use urunc_engines_tests as h;

fn mkimage(dir: &std::path::Path, out: &str, args: &[&str]) -> std::process::Output {
    Command::new(h::repo().join("scripts/mkimage.sh"))
        .arg("-o")
        .arg(dir.join(out))
        .args(args)
        .output()
        .expect("run mkimage.sh")
}

/// The image config (the blob holding `"rootfs"`) of an OCI archive.
fn image_config(dir: &std::path::Path, tar: &str) -> serde_json::Value {
    let x = dir.join(format!("{tar}.d"));
    std::fs::create_dir_all(&x).unwrap();
    h::ok(
        Command::new("tar")
            .arg("-xf")
            .arg(dir.join(tar))
            .arg("-C")
            .arg(&x),
    );
    for e in std::fs::read_dir(x.join("blobs/sha256")).unwrap().flatten() {
        let text = std::fs::read(e.path()).unwrap_or_default();
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&text) {
            if v.get("rootfs").is_some() {
                return v;
            }
        }
    }
    panic!("no image config in {tar}");
}

#[test]
fn guest_images_get_a_command_and_a_real_date() {
    let t = tempfile::tempdir().unwrap();
    let kernel = t.path().join("kernel");
    std::fs::write(&kernel, "not a real kernel").unwrap();
    let k = format!("{}:/kernel", kernel.display());
    // no command at all: refused with what to do
    let o = mkimage(
        t.path(),
        "none.tar",
        &["--type", "unikraft", "--kernel", &k],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("needs a command"));
    // --cmdline becomes the Cmd too (urunc splits it on whitespace the same way)
    let o = mkimage(
        t.path(),
        "uk.tar",
        &[
            "--type",
            "osv",
            "--kernel",
            &k,
            "--cmdline",
            "/hello.so  a b",
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let c = image_config(t.path(), "uk.tar");
    assert_eq!(
        c["config"]["Cmd"],
        serde_json::json!(["/hello.so", "a", "b"])
    );
    let created = c["created"].as_str().unwrap().to_string();
    let now = h::ok(Command::new("date").args(["-u", "+%Y-%m-%d"]));
    assert!(created.starts_with(now.trim()), "created {created}");
    // an explicit `-- CMD` wins over --cmdline's words
    let o = mkimage(
        t.path(),
        "lx.tar",
        &[
            "--kernel",
            &k,
            "--cmdline",
            "x",
            "--entrypoint",
            "/urunit",
            "--",
            "/bin/sh",
        ],
    );
    assert!(o.status.success());
    let c = image_config(t.path(), "lx.tar");
    assert_eq!(c["config"]["Entrypoint"], serde_json::json!(["/urunit"]));
    assert_eq!(c["config"]["Cmd"], serde_json::json!(["/bin/sh"]));
    let help = h::ok(Command::new(h::repo().join("scripts/mkimage.sh")).arg("--help"));
    assert!(
        help.contains("osv") && help.contains("No command specified"),
        "{help}"
    );
}
