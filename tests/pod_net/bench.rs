//! The figure for issue 18: the same busybox httpd guest (QEMU TCG) in redirect mode and in
//! pod mode, side by side in one run: `create`+`start` time, HTTP latency and throughput from
//! the host to the pod IP, and (pod mode only) from `localhost` inside the pod. Ignored by
//! default: `cargo test --test pod_net -- --ignored --nocapture`.

use crate::harness::*;
use std::net::IpAddr;
use std::time::{Duration, Instant};

const SMALL_REQS: usize = 200;
const BIG_MB: usize = 32;
const BIG_REQS: usize = 5;

struct Figures {
    create_start: Duration,
    small_median: Duration,
    small_p90: Duration,
    mb_per_s: f64,
}

fn measure(ip: IpAddr) -> (Duration, Duration, f64) {
    http_get_retry(ip, 8080, "/index.html", Duration::from_secs(60));
    for _ in 0..10 {
        http_get(ip, 8080, "/index.html").expect("warm-up GET");
    }
    let mut small: Vec<Duration> = (0..SMALL_REQS)
        .map(|_| http_get(ip, 8080, "/index.html").expect("GET").3)
        .collect();
    small.sort();
    let url = format!("http://{ip}:8080/big");
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
            let mut w = out.split_whitespace().map(|x| x.parse().unwrap_or(0.0));
            let (len, speed): (f64, f64) = (w.next().unwrap_or(0.0), w.next().unwrap_or(0.0));
            assert_eq!(len as usize, BIG_MB << 20, "GET /big: {out}");
            speed / (1 << 20) as f64
        })
        .collect();
    rates.sort_by(|a, b| a.total_cmp(b));
    (
        small[SMALL_REQS / 2],
        small[SMALL_REQS * 9 / 10],
        rates[BIG_REQS / 2],
    )
}

fn run_mode(assets: &std::path::Path, mode: &str) -> Figures {
    let net = TestNet::new(&format!("b{}", &mode[..1]), Addressing::OnLinkGateway);
    let script = format!(
        "mkdir -p /tmp/www; echo hello-from-the-guest > /tmp/www/index.html; \
         dd if=/dev/zero of=/tmp/www/big bs=1M count={BIG_MB} 2>/dev/null; \
         httpd -p 8080 -h /tmp/www; echo READY; sleep 100000 & wait"
    );
    let name = format!("pod-bench-{mode}");
    let spec = GuestSpec {
        name: &name,
        script: &script,
        uid: 0,
        hostname: "",
        resolv_conf: None,
        memory_mb: 512,
    };
    let g = Guest::new(assets, &net, &spec);
    let mut pairs = vec![("com.urunc.network.mode", mode)];
    if mode == "pod" {
        pairs.push(("com.urunc.network.ports", "8080"));
    }
    crate::annotate(&g, &pairs);
    let t = Instant::now();
    let (mut child, rx) = g.spawn(true);
    let create_start = t.elapsed();
    lines_until(&rx, "READY", Duration::from_secs(180));
    let (small_median, small_p90, mb_per_s) = measure(IpAddr::V4(net.ip));
    g.stop(&mut child, true);
    Figures {
        create_start,
        small_median,
        small_p90,
        mb_per_s,
    }
}

#[test]
#[ignore = "benchmark: cargo test --test pod_net -- --ignored --nocapture"]
fn redirect_versus_pod_mode() {
    let Some(assets) = assets() else { return };
    let _one = crate::SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let r = run_mode(&assets, "redirect");
    let p = run_mode(&assets, "pod");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("\nbusybox httpd guest (QEMU TCG, 1 vCPU, 512 MiB), host -> pod IP over a veth");
    println!(
        "{:<36}{:>12}{:>12}{:>10}",
        "", "redirect", "pod", "pod/red."
    );
    let row = |name: &str, a: f64, b: f64| println!("{name:<36}{a:>12.3}{b:>12.3}{:>9.2}x", b / a);
    row("create+start, ms", ms(r.create_start), ms(p.create_start));
    row(
        &format!("GET 21 B, median of {SMALL_REQS}, ms"),
        ms(r.small_median),
        ms(p.small_median),
    );
    row("GET 21 B, p90, ms", ms(r.small_p90), ms(p.small_p90));
    row(
        &format!("GET {BIG_MB} MiB, MiB/s (median of {BIG_REQS})"),
        r.mb_per_s,
        p.mb_per_s,
    );
}
