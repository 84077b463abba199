//! The host-paths check of the engine tests can fail, and the restore undoes what engines do
//! outside their roots: run against a scratch host root with planted leftovers.

use urunc_engines_tests::leftovers::HostState;

#[test]
fn planted_host_leftovers_are_found_and_restored() {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    std::fs::create_dir_all(root.join("run/containerd")).unwrap();
    std::fs::set_permissions(
        root.join("run/containerd"),
        std::fs::Permissions::from_mode(0o711),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("var/lib/cni/results")).unwrap();
    std::fs::write(root.join("var/lib/cni/results/other-net-abc-eth0"), "{}").unwrap();
    std::fs::create_dir_all(root.join("sys/fs/cgroup/memory/process_api")).unwrap();
    let before = HostState::capture(root);
    assert!(before.changes(&HostState::capture(root), &[]).is_empty());

    // what containerd's shims, libcni and containers/image do
    std::fs::create_dir_all(root.join("run/containerd/s")).unwrap();
    std::fs::set_permissions(
        root.join("run/containerd"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(root.join("var/lib/cni/results/urunc-cri-XYZ-eth0"), "{}").unwrap();
    std::fs::create_dir_all(root.join("var/lib/containers/cache")).unwrap();
    std::fs::write(
        root.join("var/lib/containers/cache/blob-info-cache-v1.boltdb"),
        "",
    )
    .unwrap();

    // engines' default cgroup parents, kept empty after their containers went; one busy
    // cgroup of somebody else's made meanwhile is not ours to report or remove
    std::fs::create_dir_all(root.join("sys/fs/cgroup/memory/docker/moby")).unwrap();
    std::fs::create_dir_all(root.join("sys/fs/cgroup/pids/libpod_parent")).unwrap();
    std::fs::create_dir_all(root.join("sys/fs/cgroup/pids/busy")).unwrap();
    std::fs::write(root.join("sys/fs/cgroup/pids/busy/cgroup.procs"), "4242\n").unwrap();

    let changes = before.changes(&HostState::capture(root), &["XYZ".to_string()]);
    let text = changes.join("\n");
    for want in [
        "run/containerd mode changed from 711 to 600",
        "run/containerd/s created",
        "results/urunc-cri-XYZ-eth0 created",
        "var/lib/containers created",
        "var/lib/containers/cache created",
        "cgroup/memory/docker created",
        "cgroup/pids/libpod_parent created",
    ] {
        assert!(text.contains(want), "{want} not in {text}");
    }
    // an entry of someone else in a directory that was there stays; ours goes
    std::fs::write(root.join("var/lib/cni/results/someone-else-eth0"), "{}").unwrap();
    before.restore(&["XYZ".to_string()]);
    assert!(root.join("var/lib/cni/results/someone-else-eth0").exists());
    std::fs::remove_file(root.join("var/lib/cni/results/someone-else-eth0")).unwrap();
    assert_eq!(
        before.changes(&HostState::capture(root), &[]),
        Vec::<String>::new()
    );
    assert!(root.join("var/lib/cni/results/other-net-abc-eth0").exists());
    assert!(!root.join("var/lib/containers").exists());
    assert!(!text.contains("busy"), "{text}");
    assert!(!root.join("sys/fs/cgroup/memory/docker").exists());
    assert!(!root.join("sys/fs/cgroup/pids/libpod_parent").exists());
    assert!(root.join("sys/fs/cgroup/pids/busy").exists());
    assert!(root.join("sys/fs/cgroup/memory/process_api").exists());
}
