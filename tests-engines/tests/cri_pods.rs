//! Pod network mode through containerd's CRI plugin (issue 18), driven by the CRI client: one
//! pod (CNI bridge address) holding two Linux guests in pod mode (ports 8080 and 8090, set by
//! pod annotations keyed by container name, as Kubernetes users can write them) and a busybox sidecar that runc runs (port 8081) and that fetches
//! from a guest over `localhost`. From the host (another network namespace) all three ports
//! answer on the pod IP; a connection to `localhost:8080` made inside the pod's namespace (what
//! containerd does for PortForward) reaches the guest; a third guest claiming 8080 fails at
//! CreateContainer; after the pod is removed nothing is left (processes, state, netns, taps).
//! `connect` and `cri_net::cni_config` follow `cri.rs`.

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};
use urunc_engines_tests::cri_net::{cni_config, cri_config, get, get_inside, netns_entries, Guard};
use urunc_engines_tests::{self as h, containerd::Containerd, leftovers};

const IMAGE: &str = "localhost/urunc-cri-pod-guest:test";
const BUSYBOX: &str = "localhost/urunc-cri-pod-busybox:test";
const PAUSE: &str = "localhost/urunc-cri-pod-pause:test";

async fn connect(sock: &Path) -> Channel {
    let sock = sock.to_path_buf();
    Endpoint::try_from("http://[::]:50051")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let sock = sock.clone();
            async move {
                let s = tokio::net::UnixStream::connect(sock).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .expect("connect to the CRI socket")
}

fn guest_annotations() -> HashMap<String, String> {
    h::guest_annotations()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The network settings as a Kubernetes user writes them: pod annotations (containerd passes
/// them to every container), one port list per container name.
fn pod_annotations() -> HashMap<String, String> {
    [
        ("com.urunc.network.mode", "pod"),
        ("com.urunc.network.ports.guest-a", "8080"),
        ("com.urunc.network.ports.guest-b", "8090"),
        ("com.urunc.network.ports.guest-c", "8080"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn serve(body: &str, port: u16) -> Vec<String> {
    let s = format!(
        "mkdir -p /www && echo {body} > /www/index.html && echo serving && \
         exec httpd -f -p {port} -h /www"
    );
    vec!["/bin/sh".into(), "-c".into(), s]
}

/// The sidecar: serves its own port, then fetches from the guest on localhost:8080 (nc: the
/// Debian busybox's wget crashes) and reports it in its log.
const SIDECAR: &str = "busybox mkdir -p /www; echo hello-from-the-sidecar > /www/index.html; \
    busybox httpd -p 8081 -h /www; i=0; while [ $i -lt 180 ]; do \
    printf 'GET / HTTP/1.0\\r\\n\\r\\n' | busybox nc 127.0.0.1 8080 | busybox grep -q pong-a \
    && { echo SIDECAR-REACHED-GUEST; break; }; i=$((i+1)); busybox sleep 1; done; \
    exec busybox sleep 3600";

struct Pod<'a> {
    rt: RuntimeServiceClient<Channel>,
    id: String,
    config: PodSandboxConfig,
    ctd: &'a Containerd,
}

impl Pod<'_> {
    async fn create(
        &mut self,
        name: &str,
        image: &str,
        annotations: HashMap<String, String>,
        command: Vec<String>,
        args: Vec<String>,
    ) -> (Option<String>, Result<(), tonic::Status>) {
        let created = self
            .rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: self.id.clone(),
                config: Some(ContainerConfig {
                    metadata: Some(ContainerMetadata {
                        name: name.into(),
                        attempt: 0,
                    }),
                    image: Some(ImageSpec {
                        image: image.into(),
                        ..Default::default()
                    }),
                    command,
                    args,
                    log_path: format!("{name}.log"),
                    annotations,
                    ..Default::default()
                }),
                sandbox_config: Some(self.config.clone()),
            })
            .await;
        let id = match created {
            Ok(r) => r.into_inner().container_id,
            Err(e) => return (None, Err(e)),
        };
        // the shim runs `urunc create` here
        let started = self
            .rt
            .start_container(StartContainerRequest {
                container_id: id.clone(),
            })
            .await;
        (Some(id), started.map(|_| ()))
    }

    /// A container that must start.
    async fn run(
        &mut self,
        name: &str,
        image: &str,
        annotations: HashMap<String, String>,
        cmd: (Vec<String>, Vec<String>),
    ) -> String {
        match self.create(name, image, annotations, cmd.0, cmd.1).await {
            (Some(id), Ok(())) => id,
            (_, r) => panic!("{name}: {r:?}\n{}", self.ctd.daemon.tail()),
        }
    }

    /// The pod's network namespace path, from the sandbox's runtime spec.
    async fn netns(&mut self) -> String {
        let st = self
            .rt
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: self.id.clone(),
                verbose: true,
            })
            .await
            .expect("PodSandboxStatus")
            .into_inner();
        let info: serde_json::Value =
            serde_json::from_str(st.info.get("info").expect("verbose info")).expect("JSON");
        info["runtimeSpec"]["linux"]["namespaces"]
            .as_array()
            .expect("namespaces")
            .iter()
            .find(|n| n["type"] == "network")
            .and_then(|n| n["path"].as_str())
            .expect("a network namespace path")
            .to_string()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn cri_pod_with_two_guests_and_a_runc_sidecar() {
    let Some(assets) = h::require(&[
        "containerd",
        "ctr",
        "containerd-shim-runc-v2",
        "runc",
        "/usr/lib/cni/bridge",
        "/usr/bin/catatonit",
    ]) else {
        return;
    };
    let urunc = h::urunc_bin();
    let pid = std::process::id();
    let bridge = format!("urpod{}", pid % 100_000);
    let parent = format!("/urunc-cri-pods-{pid}");
    let netns_before = netns_entries();
    let taps_before = leftovers::taps();
    let work = h::workdir("cripod-");
    let _host = leftovers::HostGuard::new(&["urunc-cri-pods-test"]);
    cni_config(
        work.path(),
        "urunc-cri-pods-test",
        &bridge,
        "10.213.78.0/24",
    );
    let extra = cri_config(PAUSE, &urunc, "com.urunc.*", &work.path().join("cni"));
    let _guard = Guard {
        bridge: bridge.clone(),
        parent: parent.clone(),
    };
    let ctd = Containerd::start(&extra);
    ctd.import("k8s.io", &h::pause_image(work.path(), PAUSE));
    ctd.import("k8s.io", &h::busybox_image(work.path(), BUSYBOX, "oci"));
    let spec = h::ImageSpec {
        name: IMAGE,
        format: "oci",
        urunc_json: false,
        cmd: h::HTTP_GUEST,
    };
    ctd.import("k8s.io", &h::guest_image(&assets, work.path(), &spec));

    let channel = connect(&ctd.sock).await;
    let mut rt = RuntimeServiceClient::new(channel.clone());
    let _images = ImageServiceClient::new(channel);
    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "pods-pod".into(),
            uid: format!("uid-pods-{pid}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "pods-pod".into(),
        annotations: pod_annotations(),
        log_directory: logs.display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: parent.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: "urunc".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", ctd.daemon.tail()))
        .into_inner()
        .pod_sandbox_id;
    let mut pod = Pod {
        rt,
        id,
        config,
        ctd: &ctd,
    };
    let ip = pod
        .rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.id.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner()
        .status
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default();
    assert!(ip.starts_with("10.213.78."), "pod IP {ip:?}");
    let netns = pod.netns().await;

    let none = Vec::new;
    let a = pod
        .run(
            "guest-a",
            IMAGE,
            guest_annotations(),
            (none(), serve("pong-a", 8080)),
        )
        .await;
    let b = pod
        .run(
            "guest-b",
            IMAGE,
            guest_annotations(),
            (none(), serve("pong-b", 8090)),
        )
        .await;
    let sidecar_cmd = vec!["/bin/sh".into(), "-c".into(), SIDECAR.into()];
    let side = pod
        .run("sidecar", BUSYBOX, HashMap::new(), (sidecar_cmd, none()))
        .await;

    let from_host_a = get(&ip, 8080, "pong-a");
    let from_host_b = get(&ip, 8090, "pong-b");
    let from_host_side = get(&ip, 8081, "hello-from-the-sidecar");
    let port_forward = get_inside(&netns, "127.0.0.1", 8080, "pong-a");
    let (c, clash) = pod
        .create(
            "guest-c",
            IMAGE,
            guest_annotations(),
            none(),
            serve("pong-c", 9000),
        )
        .await;
    let side_log = h::wait_for(Duration::from_secs(120), || {
        let l = std::fs::read_to_string(logs.join("sidecar.log")).unwrap_or_default();
        l.contains("SIDECAR-REACHED-GUEST").then_some(l)
    });

    let mut rt = pod.rt.clone();
    for c in [Some(&a), Some(&b), Some(&side), c.as_ref()]
        .into_iter()
        .flatten()
    {
        let _ = rt
            .stop_container(StopContainerRequest {
                container_id: c.to_string(),
                timeout: 10,
            })
            .await;
        let _ = rt
            .remove_container(RemoveContainerRequest {
                container_id: c.to_string(),
            })
            .await;
    }
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.id.clone(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.id.clone(),
    })
    .await
    .expect("RemovePodSandbox");

    assert!(from_host_a.is_some(), "guest a did not answer on {ip}:8080");
    assert!(from_host_b.is_some(), "guest b did not answer on {ip}:8090");
    assert!(
        from_host_side.is_some(),
        "the sidecar did not answer on {ip}:8081"
    );
    assert!(
        port_forward.is_some(),
        "localhost:8080 in the pod did not reach guest a"
    );
    assert!(
        side_log.is_some(),
        "the sidecar never reached the guest over localhost"
    );
    let err = clash.expect_err("a third guest claiming 8080 must fail");
    assert!(
        err.message().contains("port 8080/tcp is already forwarded"),
        "{err}"
    );
    let root = ctd.runc_root.join("k8s.io");
    for id in [&a, &b, &side, &pod.id] {
        let left = leftovers::find(id, &[root.join(id)]);
        assert!(left.is_empty(), "{id} left: {left:#?}");
    }
    assert_eq!(
        netns_entries(),
        netns_before,
        "a network namespace was left"
    );
    assert_eq!(
        leftovers::taps(),
        taps_before,
        "a tap was left in the host netns"
    );
}
