//! The figure for the networking issue: busybox httpd in a urunc Linux guest (QEMU, TCG on
//! this machine) behind the tc redirect, versus the same busybox httpd as an ordinary runc
//! container on the same kind of veth, side by side in one run. Ignored by default:
//! `cargo test --test guest_net -- --ignored --nocapture`.

use crate::harness::*;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const SMALL_REQS: usize = 200;
const BIG_MB: usize = 32;
const BIG_REQS: usize = 5;

struct Figures {
    ping: Duration,
    small_median: Duration,
    small_p90: Duration,
    small_rps: f64,
    mb_per_s: f64,
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure(ip: IpAddr, v4: std::net::Ipv4Addr) -> Figures {
    http_get_retry(ip, 8080, "/index.html", Duration::from_secs(60));
    for _ in 0..10 {
        http_get(ip, 8080, "/index.html").expect("warm-up GET");
    }
    let mut pings = ping_rtts(v4, 20);
    assert!(!pings.is_empty(), "no ping answers from {v4}");
    let t = std::time::Instant::now();
    let mut small: Vec<Duration> = (0..SMALL_REQS)
        .map(|_| {
            let (s, _, _, d) = http_get(ip, 8080, "/index.html").expect("GET /index.html");
            assert!(s.contains("200"), "{s}");
            d
        })
        .collect();
    let small_rps = SMALL_REQS as f64 / t.elapsed().as_secs_f64();
    // curl as the bulk client: an optimised reader, whatever profile this test is built in
    let url = match ip {
        IpAddr::V4(a) => format!("http://{a}:8080/big"),
        IpAddr::V6(a) => format!("http://[{a}]:8080/big"),
    };
    let mut rates: Vec<f64> = (0..BIG_REQS)
        .map(|_| {
            let out = sh(&[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{size_download} %{speed_download}",
                &url,
            ]);
            let mut w = out
                .split_whitespace()
                .map(|x| x.parse::<f64>().unwrap_or(0.0));
            let (len, speed) = (w.next().unwrap_or(0.0), w.next().unwrap_or(0.0));
            assert_eq!(len as usize, BIG_MB << 20, "GET /big: {out}");
            speed / (1 << 20) as f64
        })
        .collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    small.sort();
    Figures {
        ping: median(&mut pings),
        small_median: small[small.len() / 2],
        small_p90: small[small.len() * 9 / 10],
        small_rps,
        mb_per_s: rates[rates.len() / 2],
    }
}

/// The same httpd as an ordinary runc container joined to `net`.
fn runc_httpd(dir: &Path, net: &TestNet, id: &str) {
    let b = dir.join("runc-bundle");
    let www = b.join("rootfs/www");
    std::fs::create_dir_all(b.join("rootfs/bin")).unwrap();
    std::fs::create_dir_all(&www).unwrap();
    std::fs::copy("/bin/busybox", b.join("rootfs/bin/busybox")).unwrap();
    std::fs::write(www.join("index.html"), "hello-from-the-guest\n").unwrap();
    std::fs::write(www.join("big"), vec![0u8; BIG_MB << 20]).unwrap();
    sh(&["runc", "spec", "--bundle", b.to_str().unwrap()]);
    let path = b.join("config.json");
    let mut spec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    spec["process"]["terminal"] = false.into();
    spec["process"]["args"] =
        serde_json::json!(["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]);
    for n in spec["linux"]["namespaces"].as_array_mut().unwrap() {
        if n["type"] == "network" {
            n["path"] = net.path().into();
        }
    }
    std::fs::write(&path, spec.to_string()).unwrap();
    let root = dir.join("runc-root");
    let st = Command::new("runc")
        .arg("--root")
        .arg(&root)
        .args(["run", "-d", "--bundle", b.to_str().unwrap(), id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "runc run -d");
}

fn runc_delete(dir: &Path, id: &str) {
    let _ = Command::new("runc")
        .arg("--root")
        .arg(dir.join("runc-root"))
        .args(["delete", "--force", id])
        .status();
}

#[test]
#[ignore = "benchmark: cargo test --test guest_net -- --ignored --nocapture"]
fn http_through_the_redirect_versus_runc() {
    let Some(assets) = assets() else { return };
    let _one = crate::SERIAL.lock().unwrap_or_else(|e| e.into_inner());

    let gnet = TestNet::new("bg", Addressing::OnLinkGateway);
    let script = format!(
        "mkdir -p /tmp/www; echo hello-from-the-guest > /tmp/www/index.html; \
         dd if=/dev/zero of=/tmp/www/big bs=1M count={BIG_MB} 2>/dev/null; \
         httpd -p 8080 -h /tmp/www; echo READY; sleep 100000 & wait"
    );
    let g = Guest::new(
        &assets,
        &gnet,
        &GuestSpec {
            name: "gnet-bench",
            script: &script,
            uid: 0,
            hostname: "bench",
            resolv_conf: None,
            memory_mb: 512,
        },
    );
    let (mut child, rx) = g.spawn(false);
    lines_until(&rx, "READY", Duration::from_secs(120));
    let guest = measure(IpAddr::V4(gnet.ip), gnet.ip);
    g.stop(&mut child, false);

    let rnet = TestNet::new("br", Addressing::OnLinkGateway);
    let id = format!("gnet-bench-runc-{}", std::process::id());
    runc_httpd(g.dir.path(), &rnet, &id);
    let runc = std::panic::catch_unwind(|| measure(IpAddr::V4(rnet.ip), rnet.ip));
    runc_delete(g.dir.path(), &id);
    let runc = runc.unwrap_or_else(|e| std::panic::resume_unwind(e));

    let accel = "QEMU TCG, 1 vCPU, 512 MiB";
    println!("\nbusybox httpd, host -> container IP over a veth ({accel} for urunc)");
    println!(
        "{:<34}{:>14}{:>14}{:>12}",
        "", "urunc guest", "runc", "urunc/runc"
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let row = |name: &str, a: f64, b: f64, unit: &str| {
        println!(
            "{name:<34}{:>11.3} {unit:<2}{:>11.3} {unit:<2}{:>11.2}x",
            a,
            b,
            a / b
        )
    };
    row(
        "ping RTT (median of 20)",
        ms(guest.ping),
        ms(runc.ping),
        "ms",
    );
    row(
        &format!("GET 21 B, median of {SMALL_REQS}"),
        ms(guest.small_median),
        ms(runc.small_median),
        "ms",
    );
    row(
        "GET 21 B, p90",
        ms(guest.small_p90),
        ms(runc.small_p90),
        "ms",
    );
    row(
        "requests/s (1 connection each)",
        guest.small_rps,
        runc.small_rps,
        "/s",
    );
    row(
        &format!("GET {BIG_MB} MiB, MiB/s (median of {BIG_REQS})"),
        guest.mb_per_s,
        runc.mb_per_s,
        "  ",
    );
}
