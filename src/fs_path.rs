//! Request-target to file-system path: percent-decoding exactly once, refusing
//! hostile paths (http-semantics §4), and containment under the served root.

use std::path::{Path, PathBuf};

/// Why a request path is refused with 400.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form (does not start with `/`).
    NotOrigin,
    /// A `%` not followed by two hex digits.
    BadEscape,
    /// A NUL byte, raw or `%00`.
    Nul,
    /// A backslash, raw or `%5C`.
    Backslash,
    /// `%2F`: a slash inside a segment.
    EncodedSlash,
    /// A `..` segment.
    DotDot,
    /// The decoded bytes are not UTF-8.
    NotUtf8,
}

pub fn decode(target: &str) -> Result<String, PathError> {
    let _ = target;
    todo!()
}

pub fn has_dotfile(decoded: &str) -> bool {
    let _ = decoded;
    todo!()
}

pub fn locate(root: &Path, decoded: &str, follow_symlinks: bool) -> Option<PathBuf> {
    let _ = (root, decoded, follow_symlinks);
    todo!()
}
