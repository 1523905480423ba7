//! `multipart/byteranges` bodies (RFC 9110 §14.6): the boundary, the per-part
//! headers, and the exact layout of the body as segments. Pure.

use crate::message::Segment;
use crate::range::ByteRange;

/// A boundary for one response.
pub fn boundary() -> String {
    todo!()
}

/// The body of a multipart/byteranges response, as literal and file segments.
pub fn parts(ranges: &[ByteRange], size: u64, content_type: &str, boundary: &str) -> Vec<Segment> {
    let _ = (ranges, size, content_type, boundary);
    todo!()
}
