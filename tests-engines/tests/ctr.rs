//! containerd + ctr with the stock `io.containerd.runc.v2` shim and `--runc-binary urunc`:
//! a Linux guest image prints and exits with its status; a long-running one is listed by
//! `ctr task ps`, paused, resumed, killed and deleted without leftovers. Also prints the wall
//! time of `ctr run --rm` of that guest next to a busybox echo under runc, same run.

use std::time::{Duration, Instant};
use urunc_engines_tests::{self as h, containerd::Containerd, leftovers};

const IMAGE: &str = "localhost/urunc-ctr-guest:test";
const BUSYBOX: &str = "localhost/urunc-ctr-busybox:test";

fn task_status(ctd: &Containerd, id: &str) -> String {
    let out = h::run_timeout(
        ctd.ctr("default").args(["task", "ls"]),
        Duration::from_secs(30),
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.split_whitespace().next() == Some(id))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("")
        .to_string()
}

#[test]
fn ctr_runs_a_linux_guest() {
    let Some(assets) = h::require(&["containerd", "ctr", "containerd-shim-runc-v2", "runc"]) else {
        return;
    };
    let urunc = h::urunc_bin();
    // restores and checks the host paths engines write outside their roots (drops last)
    let _host = leftovers::HostGuard::new(&[&std::process::id().to_string()]);
    let ctd = Containerd::start("");
    let work = h::workdir("ctr-img-");
    let image = h::guest_image(
        &assets,
        work.path(),
        &h::ImageSpec {
            name: IMAGE,
            format: "oci",
            urunc_json: true,
            cmd: &["/bin/sh", "-c", "echo hello from the guest"],
        },
    );
    ctd.import("default", &image);
    ctd.import("default", &h::busybox_image(work.path(), BUSYBOX, "oci"));
    let pid = std::process::id();
    // a cgroup parent of our own, removed at the end (ctr's default is /default)
    let parent = format!("/urunc-ctr-test-{pid}");
    let run = |id: &str, img: &str, urunc_args: bool, args: &[&str]| {
        let mut c = ctd.ctr("default");
        c.args(["run", "--rm", "--cgroup", &format!("{parent}/{id}")]);
        if urunc_args {
            c.arg("--runc-binary")
                .arg(&urunc)
                .arg("--runc-root")
                .arg(&ctd.runc_root);
        }
        c.args([img, id]).args(args);
        let t = Instant::now();
        let out = h::run_timeout(&mut c, Duration::from_secs(120));
        (out, t.elapsed())
    };

    // the figure: a guest that prints and exits vs a busybox echo under runc
    let id1 = format!("urunc-ctr-hello-{pid}");
    let (out, guest_time) = run(&id1, IMAGE, true, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", ctd.daemon.tail());
    assert!(String::from_utf8_lossy(&out.stdout).contains("hello from the guest"));
    let (bb, runc_time) = run(&format!("urunc-ctr-busybox-{pid}"), BUSYBOX, false, &[]);
    assert!(bb.status.success());
    println!(
        "FIGURE ctr run --rm: urunc Linux guest (QEMU TCG) {:.2} s, runc busybox echo {:.2} s, ratio {:.1}",
        guest_time.as_secs_f64(),
        runc_time.as_secs_f64(),
        guest_time.as_secs_f64() / runc_time.as_secs_f64().max(0.001)
    );
    assert!(leftovers::find(&id1, &[ctd.runc_root.join("default").join(&id1)]).is_empty());

    // exit status and output of explicit args (ctr replaces Entrypoint and Cmd)
    let id2 = format!("urunc-ctr-status-{pid}");
    let (out, _) = run(
        &id2,
        IMAGE,
        true,
        &["/urunit", "/bin/sh", "-c", "echo out; exit 3"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stdout).contains("out"));

    // a long-running guest: ps, pause, resume, kill, delete
    let id3 = format!("urunc-ctr-long-{pid}");
    h::ok(
        ctd.ctr("default")
            .args([
                "run",
                "-d",
                "--cgroup",
                &format!("{parent}/{id3}"),
                "--runc-binary",
            ])
            .arg(&urunc)
            .arg("--runc-root")
            .arg(&ctd.runc_root)
            .args([IMAGE, &id3, "/urunit", "/bin/sh", "-c", "sleep 600"]),
    );
    let cleanup = Cleanup(&ctd, id3.clone());
    assert_eq!(task_status(&ctd, &id3), "RUNNING");
    // the leftover check looks where the running container is (so it can fail)
    let running = leftovers::find(&id3, &[ctd.runc_root.join("default").join(&id3)]);
    for kind in ["process", "state directory", "cgroup"] {
        assert!(
            running.iter().any(|l| l.starts_with(kind)),
            "the check does not see the running container's {kind}: {running:#?}"
        );
    }
    let ps = h::ok(ctd.ctr("default").args(["task", "ps", &id3]));
    let pids: Vec<u32> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(!pids.is_empty(), "ctr task ps listed no process");
    h::ok(ctd.ctr("default").args(["task", "pause", &id3]));
    assert_eq!(task_status(&ctd, &id3), "PAUSED");
    h::ok(ctd.ctr("default").args(["task", "resume", &id3]));
    assert_eq!(task_status(&ctd, &id3), "RUNNING");
    h::ok(ctd.ctr("default").args(["task", "kill", &id3]));
    let stopped = h::wait_for(Duration::from_secs(30), || {
        (task_status(&ctd, &id3) == "STOPPED").then_some(())
    });
    assert!(stopped.is_some(), "the guest did not stop on SIGTERM");
    h::ok(ctd.ctr("default").args(["task", "delete", &id3]));
    h::ok(ctd.ctr("default").args(["containers", "delete", &id3]));
    drop(cleanup);
    for id in [&id2, &id3] {
        let left = leftovers::find(id, &[ctd.runc_root.join("default").join(id)]);
        assert!(left.is_empty(), "{id} left: {left:#?}");
    }
    leftovers::remove_cgroup_parent(&parent);
}

/// Removes the long-running container if an assertion failed on the way.
struct Cleanup<'a>(&'a Containerd, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let c = |a: &[&str]| {
            let _ = self.0.ctr("default").args(a).arg(&self.1).output();
        };
        c(&["task", "kill", "-s", "SIGKILL"]);
        std::thread::sleep(Duration::from_millis(500));
        c(&["task", "delete", "--force"]);
        c(&["containers", "delete"]);
    }
}
