//! Content types from file extensions: a built-in table of what people download
//! and stream.

/// The `Content-Type` for a file name.
pub fn content_type(name: &str) -> &'static str {
    let _ = name;
    todo!()
}
