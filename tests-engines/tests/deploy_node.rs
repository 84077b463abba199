//! The DaemonSet's node installer (scripts/deploy-node.sh), run in a container (its own mount
//! and PID namespaces) against a scratch host root with a k3s layout and a stand-in API server:
//! it installs urunc into the host root, registers it with k3s, and labels the node with the
//! service account's token as a JSON merge patch; an API that refuses makes it fail loudly.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use urunc_engines_tests as h;

/// A stand-in for the Kubernetes API: answers every request with `status` and appends the
/// request line, the Authorization and Content-Type headers and the body to `log`.
const API: &str = r#"
import http.server, sys
status, log = int(sys.argv[1]), sys.argv[2]
class H(http.server.BaseHTTPRequestHandler):
    def do_PATCH(self):
        body = self.rfile.read(int(self.headers.get('Content-Length', 0))).decode()
        with open(log, 'a') as f:
            f.write('%s %s|%s|%s|%s\n' % (self.command, self.path, self.headers.get('Authorization'),
                                       self.headers.get('Content-Type'), body))
        self.send_response(status); self.end_headers(); self.wfile.write(b'{}')
    def log_message(self, *a): pass
s = http.server.HTTPServer(('127.0.0.1', 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

struct Api(std::process::Child);
impl Drop for Api {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn api(status: u16, log: &std::path::Path) -> (Api, u16) {
    let mut c = Command::new("python3")
        .args(["-c", API, &status.to_string()])
        .arg(log)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port = line.trim().parse().expect("port");
    (Api(c), port)
}

fn deploy(host: &std::path::Path, sa: &std::path::Path, port: u16) -> std::process::Output {
    h::run_timeout(
        Command::new("unshare")
            .args(["--mount", "--pid", "--fork", "--mount-proc", "--"])
            .arg(h::repo().join("scripts/deploy-node.sh"))
            .args(["--once", "--no-restart"])
            .env("HOST_ROOT", host)
            .env("NODE_NAME", "node-a")
            .env("URUNC_BIN", h::urunc_bin())
            .env("KUBE_API", format!("http://127.0.0.1:{port}"))
            .env("SA_DIR", sa),
        std::time::Duration::from_secs(120),
    )
}

#[test]
fn the_daemonset_installs_registers_and_labels() {
    // SAFETY: getuid has no preconditions
    if unsafe { libc::getuid() } != 0 {
        return h::skip("deploy-node needs root (unshare)");
    }
    let t = h::workdir("deploy-");
    let host = t.path().join("host");
    std::fs::create_dir_all(host.join("etc")).unwrap();
    std::fs::create_dir_all(host.join("var/lib/rancher/k3s/agent")).unwrap();
    let sa = t.path().join("sa");
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::write(sa.join("token"), "test-token").unwrap();
    let log = t.path().join("api.log");
    let (_api, port) = api(200, &log);

    let o = deploy(&host, &sa, port);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read(host.join("usr/local/bin/urunc")).unwrap(),
        std::fs::read(h::urunc_bin()).unwrap(),
        "urunc installed into the host root"
    );
    let tmpl = std::fs::read_to_string(
        host.join("var/lib/rancher/k3s/agent/etc/containerd/config.toml.tmpl"),
    )
    .unwrap();
    assert!(tmpl.contains("containerd.runtimes.urunc]"), "{tmpl}");
    assert!(
        tmpl.contains("BinaryName = \"/usr/local/bin/urunc\""),
        "{tmpl}"
    );
    assert!(out.contains("restart k3s on the node to apply"), "{out}");
    let calls = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        calls.trim(),
        "PATCH /api/v1/nodes/node-a|Bearer test-token|application/merge-patch+json|\
         {\"metadata\":{\"labels\":{\"urunc.io/runtime\":\"true\"}}}"
    );

    // a second run changes nothing on the node and labels again
    let o = deploy(&host, &sa, port);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{out}");
    assert!(out.contains("k3s: urunc already configured"), "{out}");
    assert!(!out.contains("to apply"), "{out}");

    // an API server that refuses: a clear failure, not a silent success
    let log2 = t.path().join("api2.log");
    let (_api2, port2) = api(403, &log2);
    let o = deploy(&host, &sa, port2);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("HTTP 403"), "{err}");
}
