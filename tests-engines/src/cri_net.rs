//! Networking helpers of the CRI tests: a CNI bridge configuration, the host's named network
//! namespaces, and HTTP `GET /` from the host or from inside a pod's network namespace.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Duration;

/// A CNI bridge network `name` on `bridge` with `subnet`, under `dir/cni` (the name is what
/// the CNI result cache in /var/lib/cni is keyed by: the test's host guard restores it).
pub fn cni_config(dir: &Path, name: &str, bridge: &str, subnet: &str) {
    let conf = dir.join("cni");
    std::fs::create_dir_all(&conf).expect("cni dir");
    let list = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": name,
        "plugins": [{
            "type": "bridge",
            "bridge": bridge,
            "isGateway": true,
            "ipMasq": false,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": dir.join("cni-ipam"),
            },
        }],
    });
    std::fs::write(conf.join("10-urunc-test.conflist"), list.to_string()).expect("conflist");
}

pub fn netns_entries() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/var/run/netns")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// `GET /` on ip:port until the body contains `want` (or the deadline).
pub fn get(ip: &str, port: u16, want: &str) -> Option<String> {
    let addr: std::net::SocketAddr = format!("{ip}:{port}").parse().ok()?;
    crate::wait_for(Duration::from_secs(90), || {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
        let mut body = String::new();
        s.read_to_string(&mut body).ok()?;
        body.contains(want).then_some(body)
    })
}

/// `get` from a thread inside the network namespace at `netns`.
pub fn get_inside(netns: &str, ip: &str, port: u16, want: &str) -> Option<String> {
    let ns = std::fs::File::open(netns).expect("the pod's netns");
    std::thread::scope(|s| {
        s.spawn(|| {
            // SAFETY: setns on this thread only, with an fd we hold open
            let r =
                unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "enter the pod's netns");
            get(ip, port, want)
        })
        .join()
        .expect("thread")
    })
}

/// containerd's CRI section for the tests: the pause image, a `runc` runtime (the sandbox's) and
/// a `urunc` runtime (stock runc-v2 shim with `BinaryName`) passing annotations that match
/// `annotations` (e.g. `com.urunc.*`) from pods and containers, and the CNI config in `cni_dir`.
pub fn cri_config(pause: &str, urunc: &Path, annotations: &str, cni_dir: &Path) -> String {
    format!(
        r#"  sandbox_image = "{pause}"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
    runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.urunc]
    runtime_type = "io.containerd.runc.v2"
    pod_annotations = ["{annotations}"]
    container_annotations = ["{annotations}"]
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.urunc.options]
      BinaryName = "{urunc}"
      Root = "@RUNC_ROOT@"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{conf}"
"#,
        urunc = urunc.display(),
        conf = cni_dir.display(),
    )
}

/// Removes a test's CNI bridge and its cgroup parent, also when the test failed half-way.
pub struct Guard {
    pub bridge: String,
    pub parent: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        crate::del_link(&self.bridge);
        crate::leftovers::remove_cgroup_parent(&self.parent);
    }
}
