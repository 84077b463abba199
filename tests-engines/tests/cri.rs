//! The Kubernetes path without kubelet: containerd's CRI plugin with a `urunc` runtime handler
//! (stock runc v2 shim, `BinaryName`, `Root`, annotation pass-through), driven by a small CRI
//! client. The pod's sandbox (pause) container goes to the delegate runtime (runc); the app
//! container is a Linux guest whose settings arrive as container annotations, in the pod's
//! network namespace with a CNI bridge address, answering HTTP on the pod IP; ExecSync (exec
//! probes, `kubectl exec`) runs in the guest, and one past its timeout is killed there. Stopping and
//! removing the pod leaves no process, netns, mount, cgroup or state directory.

use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use std::path::Path;
use std::time::Duration;
use tonic::transport::{Channel, Endpoint, Uri};
use urunc_engines_tests::cri_net::{cni_config, cri_config, netns_entries, Guard};
use urunc_engines_tests::{self as h, containerd::Containerd, leftovers};

const IMAGE: &str = "localhost/urunc-cri-guest:test";
const PAUSE: &str = "localhost/urunc-cri-pause:test";

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

#[tokio::test(flavor = "current_thread")]
async fn cri_pod_with_a_linux_guest() {
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
    let bridge = format!("urcri{}", pid % 100_000);
    let parent = format!("/urunc-cri-test-{pid}");
    let netns_before = netns_entries();
    let taps_before = leftovers::taps();
    let work = h::workdir("cri-");
    // restores and checks the host paths engines write outside their roots (drops last)
    let _host = leftovers::HostGuard::new(&["urunc-cri-test"]);
    cni_config(work.path(), "urunc-cri-test", &bridge, "10.213.77.0/24");
    let extra = cri_config(
        PAUSE,
        &urunc,
        "com.urunc.unikernel.*",
        &work.path().join("cni"),
    );
    let guard = Guard {
        bridge: bridge.clone(),
        parent: parent.clone(),
    };
    let ctd = Containerd::start(&extra);
    ctd.import("k8s.io", &h::pause_image(work.path(), PAUSE));
    let image = h::guest_image(
        &assets,
        work.path(),
        &h::ImageSpec {
            name: IMAGE,
            format: "oci",
            urunc_json: false,
            cmd: h::HTTP_GUEST,
        },
    );
    ctd.import("k8s.io", &image);

    let channel = connect(&ctd.sock).await;
    let mut rt = RuntimeServiceClient::new(channel.clone());
    let mut images = ImageServiceClient::new(channel);
    let st = images
        .image_status(ImageStatusRequest {
            image: Some(ImageSpec {
                image: IMAGE.into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .unwrap_or_else(|e| panic!("ImageStatus: {e}\n{}", ctd.daemon.tail()))
        .into_inner();
    assert!(st.image.is_some(), "CRI does not see the imported image");

    let logs = work.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let sandbox_config = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "guest-pod".into(),
            uid: format!("uid-{pid}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "guest-pod".into(),
        log_directory: logs.display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: parent.clone(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let pod = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: "urunc".into(),
        })
        .await
        .unwrap_or_else(|e| panic!("RunPodSandbox: {e}\n{}", ctd.daemon.tail()))
        .into_inner()
        .pod_sandbox_id;
    let status = rt
        .pod_sandbox_status(PodSandboxStatusRequest {
            pod_sandbox_id: pod.clone(),
            verbose: false,
        })
        .await
        .expect("PodSandboxStatus")
        .into_inner()
        .status
        .expect("status");
    let ip = status.network.map(|n| n.ip).unwrap_or_default();
    assert!(
        ip.starts_with("10.213.77."),
        "pod IP {ip:?} is not from the CNI bridge"
    );

    let ctr = rt
        .create_container(CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(ContainerConfig {
                metadata: Some(ContainerMetadata {
                    name: "guest".into(),
                    attempt: 0,
                }),
                image: Some(ImageSpec {
                    image: IMAGE.into(),
                    ..Default::default()
                }),
                log_path: "guest.log".into(),
                annotations: h::guest_annotations()
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                ..Default::default()
            }),
            sandbox_config: Some(sandbox_config),
        })
        .await
        .unwrap_or_else(|e| panic!("CreateContainer: {e}\n{}", ctd.daemon.tail()))
        .into_inner()
        .container_id;
    rt.start_container(StartContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .unwrap_or_else(|e| panic!("StartContainer: {e}\n{}", ctd.daemon.tail()));
    let answer = h::http_get(&ip, Duration::from_secs(60));
    let execs = exec_sync_checks(&mut rt, &ctr).await;
    // the leftover check looks where the running guest is (so it can fail)
    let state_dir = ctd.runc_root.join("k8s.io").join(&ctr);
    let running = leftovers::find(&ctr, &[state_dir]);
    assert!(
        running.iter().any(|l| l.starts_with("state directory")),
        "the check does not see the running container: {running:#?}"
    );
    let log = std::fs::read_to_string(logs.join("guest.log")).unwrap_or_default();
    eprintln!("guest log:\n{log}");
    let cstatus = rt
        .container_status(ContainerStatusRequest {
            container_id: ctr.clone(),
            verbose: false,
        })
        .await
        .expect("ContainerStatus")
        .into_inner()
        .status
        .expect("status");
    eprintln!(
        "container state {:?}, exit {}",
        cstatus.state, cstatus.exit_code
    );

    rt.stop_container(StopContainerRequest {
        container_id: ctr.clone(),
        timeout: 10,
    })
    .await
    .expect("StopContainer");
    rt.remove_container(RemoveContainerRequest {
        container_id: ctr.clone(),
    })
    .await
    .expect("RemoveContainer");
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("RemovePodSandbox");

    assert!(
        log.contains("serving"),
        "the guest did not start its server; log:\n{log}"
    );
    assert!(
        answer.is_some(),
        "the guest did not answer HTTP on the pod IP {ip}"
    );
    execs.expect("ExecSync");
    let root = ctd.runc_root.join("k8s.io");
    for id in [&ctr, &pod] {
        let left = leftovers::find(id, &[root.join(id)]);
        assert!(left.is_empty(), "{id} left: {left:#?}");
    }
    assert_eq!(
        netns_entries(),
        netns_before,
        "a network namespace was left behind"
    );
    assert_eq!(
        leftovers::taps(),
        taps_before,
        "a tap was left in the host netns"
    );
    drop(ctd);
    drop(guard);
}

/// Counts the guest's processes whose command line starts with `sleep 4242` (neither this
/// shell's nor grep's does).
const SLEEPERS_NOEXIT: &str = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^sleep 4242'";
const SLEEPERS: &str = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^sleep 4242'; exit 0";

/// ExecSync, as exec probes and `kubectl exec` use it (issue #17): output and status of a
/// process in the guest, and a timed-out one killed inside the guest, not only on the host.
async fn exec_sync_checks(rt: &mut RuntimeServiceClient<Channel>, ctr: &str) -> Result<(), String> {
    let run = |cmd: &str, timeout: i64| ExecSyncRequest {
        container_id: ctr.to_string(),
        cmd: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
        timeout,
    };
    let r = rt
        .exec_sync(run("echo probe-$((3*14)); echo probe-err >&2; exit 2", 300))
        .await
        .map_err(|e| format!("ExecSync: {e}"))?
        .into_inner();
    let (out, err) = (
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr),
    );
    if !out.contains("probe-42") || !err.contains("probe-err") || r.exit_code != 2 {
        return Err(format!(
            "ExecSync: exit {} stdout {out:?} stderr {err:?}",
            r.exit_code
        ));
    }
    // the counter below sees a sleeper when there is one
    let seen = rt
        .exec_sync(run(
            &format!("sleep 4242 >/dev/null 2>&1 & sleep 1; {SLEEPERS_NOEXIT}; kill $!"),
            300,
        ))
        .await
        .map_err(|e| format!("ExecSync: {e}"))?
        .into_inner();
    if String::from_utf8_lossy(&seen.stdout).trim() != "1" {
        return Err(format!(
            "the sleeper count is broken: {:?}",
            String::from_utf8_lossy(&seen.stdout)
        ));
    }
    // a probe that outlives its timeout: containerd kills the relay; the guest kills the process
    let t = rt.exec_sync(run("exec sleep 4242", 3)).await;
    eprintln!("ExecSync past its timeout: {t:?}");
    let mut left = String::new();
    for _ in 0..60 {
        let r = rt
            .exec_sync(run(SLEEPERS, 300))
            .await
            .map_err(|e| format!("ExecSync: {e}"))?
            .into_inner();
        left = String::from_utf8_lossy(&r.stdout).into_owned();
        if left.trim() == "0" {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!(
        "the timed-out process still runs in the guest ({left} left)"
    ))
}
