//! The `Range` request header: syntax (`parse`, RFC 9110 §14.1) and satisfiability
//! plus abuse limits (`resolve`, §14.2, §15.3.7, §17.15). Pure: text and a length in,
//! plain values out.

/// More ranges than this in one header: the header is ignored (200).
pub const MAX_RANGES: usize = 100;

/// One `range-spec` exactly as written, numbers saturated at `u64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spec {
    /// `first-last`
    Bounded { first: u64, last: u64 },
    /// `first-`
    From { first: u64 },
    /// `-len`
    Suffix { len: u64 },
}

/// The header is not a `bytes` range set we understand; it is to be ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// A satisfiable range resolved against a length: `len >= 1`,
/// `start + len <= size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub len: u64,
}

impl ByteRange {
    /// The inclusive last byte position, as `Content-Range` writes it.
    pub fn last(&self) -> u64 {
        self.start + self.len - 1
    }
}

/// What to do with a Range header for a representation of a given size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Serve the whole representation (200).
    Ignore,
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
    /// 206: one part, or multipart/byteranges in this (request) order.
    Partial(Vec<ByteRange>),
}

pub fn parse(value: &str) -> Result<Vec<Spec>, Malformed> {
    let _ = value;
    todo!()
}

pub fn resolve(specs: &[Spec], size: u64) -> Outcome {
    let _ = (specs, size);
    todo!()
}

/// `parse` then `resolve`; anything malformed is ignored.
pub fn evaluate(value: &str, size: u64) -> Outcome {
    match parse(value) {
        Ok(specs) => resolve(&specs, size),
        Err(Malformed) => Outcome::Ignore,
    }
}
