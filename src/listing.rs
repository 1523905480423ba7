//! The HTML listing of a directory: escaped names, percent-encoded links, sizes,
//! dates, sorted, with a parent link. Pure.

use std::time::SystemTime;

pub struct Entry {
    pub name: String,
    pub is_dir: bool,
    pub size: u64,
    pub mtime: Option<SystemTime>,
}

pub fn render(decoded_path: &str, entries: &mut [Entry]) -> String {
    let _ = (decoded_path, entries);
    todo!()
}
