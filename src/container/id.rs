//! Container ids: they name a directory under `--root`, so they must never name anything else.

#[derive(Debug, thiserror::Error)]
pub enum IdError {
    #[error("container ID can not be empty")]
    Empty,
    #[error("invalid container ID {0:?}: use letters, digits, '_', '+', '-' and '.', not starting with '.'")]
    Invalid(String),
    #[error("container ID is {0} characters long: at most {MAX_LEN} are allowed (it names a directory under --root)")]
    TooLong(usize),
}

/// NAME_MAX: the id is one directory name under `--root`.
pub const MAX_LEN: usize = 255;

pub fn validate_id(id: &str) -> Result<(), IdError> {
    if id.is_empty() {
        return Err(IdError::Empty);
    }
    if id.len() > MAX_LEN {
        return Err(IdError::TooLong(id.len()));
    }
    let ok = !id.starts_with('.')
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(IdError::Invalid(id.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_the_root() {
        for good in ["abc", "a.b-c_d+e", "0123456789abcdef"] {
            assert!(validate_id(good).is_ok(), "{good}");
        }
        assert!(validate_id(&"a".repeat(255)).is_ok());
        let e = validate_id(&"a".repeat(256)).unwrap_err();
        assert!(e.to_string().contains("at most 255"), "{e}");
        let long = "a".repeat(1025);
        for bad in [
            "",
            "..",
            ".",
            "a/b",
            "../x",
            "a\nb",
            "a b",
            "\u{7f}",
            long.as_str(),
            ".hidden",
        ] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
    }
}
