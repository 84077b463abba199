//! Rootless: urunc run by an unprivileged user, directly or inside the user namespace rootless
//! podman creates for it (where it is uid 0 with capabilities over nothing the host owns).

/// Whether this process runs in a user namespace other than the initial one.
pub fn in_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|m| !is_identity_map(&m))
}

fn is_identity_map(map: &str) -> bool {
    let fields: Vec<&str> = map.split_whitespace().collect();
    fields == ["0", "0", "4294967295"]
}

/// An unprivileged caller can make namespaces only inside a new user namespace, and can
/// change ids only there: a spec without one cannot be honoured.
pub fn check(ns: &super::namespaces::Plan) -> Result<(), super::namespaces::NsError> {
    if !nix::unistd::geteuid().is_root() && !ns.has("user") {
        return Err(super::namespaces::NsError::RootlessNeedsUserNs);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_map_is_the_initial_namespace() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        assert!(!is_identity_map("         0       1000          1\n"));
        assert!(!is_identity_map(""));
    }
}
