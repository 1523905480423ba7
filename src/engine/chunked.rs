//! The chunked transfer coding of request bodies (RFC 9112 §7.1), decoded
//! strictly and in bounded memory. Pure: bytes in, body bytes out, and an
//! error for anything a well-behaved client never sends — every error is a
//! 400 and the connection closes, because after a framing error nobody can
//! tell where the next request starts (request smuggling lives there).
//!
//! ```text
//! chunked-body = *chunk last-chunk trailer-section CRLF
//! chunk        = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
//! chunk-size   = 1*HEXDIG
//! ```
//!
//! Chunk extensions are skipped (bounded) and trailers are read and
//! discarded (bounded): nothing we serve needs them (§7.1.1, §7.1.2).

/// Bytes of chunk extensions accepted on one chunk line.
const MAX_EXTENSION: usize = 1024;
/// Bytes of trailer fields accepted after the last chunk.
const MAX_TRAILERS: usize = 8 * 1024;

/// Why a chunked body is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkError {
    /// A chunk size that is not hex, or empty.
    BadSize,
    /// A chunk size beyond 2^64 − 1 (`fffffffffffffffff`).
    SizeOverflow,
    /// Chunk extensions longer than we read, or with a control character.
    BadExtension,
    /// A chunk's data not followed by CRLF.
    MissingCrlf,
    /// A line ending in LF without CR (RFC 9112 §2.2 lets us refuse it).
    BareLf,
    /// Trailer fields longer than we read, or with a control character.
    BadTrailer,
}

impl std::fmt::Display for ChunkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ChunkError::BadSize => "a chunk size is not hexadecimal",
            ChunkError::SizeOverflow => "a chunk size does not fit 64 bits",
            ChunkError::BadExtension => "a chunk extension is too long or malformed",
            ChunkError::MissingCrlf => "chunk data is not followed by CRLF",
            ChunkError::BareLf => "a chunk line ends in a bare LF",
            ChunkError::BadTrailer => "the trailer section is too long or malformed",
        })
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits; `digits` seen so far.
    Size {
        value: u64,
        digits: u32,
    },
    /// After the size: extensions up to CR, `len` bytes of them so far.
    Extension {
        size: u64,
        len: usize,
    },
    /// CR seen at the end of a size line.
    SizeLf {
        size: u64,
    },
    /// Inside a chunk's data.
    Data {
        left: u64,
    },
    /// The CR after chunk data, then its LF.
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// CR seen at the end of a trailer line; `last`: it was the empty line.
    TrailerLf {
        last: bool,
    },
    Done,
}

/// A decoder for one chunked body.
#[derive(Debug, Clone)]
pub struct Decoder {
    state: State,
    trailer_bytes: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Size {
                value: 0,
                digits: 0,
            },
            trailer_bytes: 0,
        }
    }
}

/// What one call to [`Decoder::step`] did.
#[derive(Debug, PartialEq, Eq)]
pub struct Step<'a> {
    /// Input bytes consumed.
    pub used: usize,
    /// Body bytes found, a slice of the input.
    pub data: &'a [u8],
}

impl Decoder {
    /// True once the last chunk and the trailer section have been read;
    /// anything after them belongs to the next request.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing from `input` until it reaches body bytes (returned
    /// as a slice of `input`, as many as are there), the end of the input,
    /// or the end of the body. Call again with the rest.
    pub fn step<'a>(&mut self, input: &'a [u8]) -> Result<Step<'a>, ChunkError> {
        let mut i = 0;
        while i < input.len() {
            if let State::Data { left } = self.state {
                let n = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                self.state = if n as u64 == left {
                    State::DataCr
                } else {
                    State::Data {
                        left: left - n as u64,
                    }
                };
                return Ok(Step {
                    used: i + n,
                    data: &input[i..i + n],
                });
            }
            if self.state == State::Done {
                break;
            }
            self.state = self.byte(input[i])?;
            i += 1;
        }
        Ok(Step { used: i, data: &[] })
    }

    /// One byte of framing.
    fn byte(&mut self, b: u8) -> Result<State, ChunkError> {
        if matches!(
            self.state,
            State::TrailerStart | State::TrailerLine | State::TrailerLf { .. }
        ) {
            self.trailer_bytes += 1;
            if self.trailer_bytes > MAX_TRAILERS {
                return Err(ChunkError::BadTrailer);
            }
        }
        Ok(match self.state {
            State::Size { value, digits } => match (crate::hex::digit(b), b) {
                (Some(d), _) => {
                    // Leading zeros are fine (`0000` is a last chunk);
                    // significant digits beyond 16 are not.
                    if value > u64::MAX >> 4 {
                        return Err(ChunkError::SizeOverflow);
                    }
                    State::Size {
                        value: value << 4 | u64::from(d),
                        digits: digits + 1,
                    }
                }
                _ if digits == 0 => return Err(ChunkError::BadSize),
                (None, b'\r') => State::SizeLf { size: value },
                (None, b'\n') => return Err(ChunkError::BareLf),
                // chunk-ext = *( BWS ";" … ): only whitespace or `;` may
                // follow the digits.
                (None, b';' | b' ' | b'\t') => State::Extension {
                    size: value,
                    len: 1,
                },
                _ => return Err(ChunkError::BadSize),
            },
            State::Extension { size, len } => match b {
                _ if len >= MAX_EXTENSION => return Err(ChunkError::BadExtension),
                b'\r' => State::SizeLf { size },
                b'\n' => return Err(ChunkError::BareLf),
                b'\t' => State::Extension { size, len: len + 1 },
                0..=0x1f | 0x7f => return Err(ChunkError::BadExtension),
                _ => State::Extension { size, len: len + 1 },
            },
            State::SizeLf { size } => match b {
                b'\n' if size == 0 => State::TrailerStart,
                b'\n' => State::Data { left: size },
                _ => return Err(ChunkError::BareLf),
            },
            State::DataCr => match b {
                b'\r' => State::DataLf,
                _ => return Err(ChunkError::MissingCrlf),
            },
            State::DataLf => match b {
                b'\n' => State::Size {
                    value: 0,
                    digits: 0,
                },
                _ => return Err(ChunkError::MissingCrlf),
            },
            State::TrailerStart | State::TrailerLine => {
                let start = self.state == State::TrailerStart;
                match b {
                    b'\r' => State::TrailerLf { last: start },
                    b'\n' => return Err(ChunkError::BareLf),
                    b'\t' => State::TrailerLine,
                    0..=0x1f | 0x7f => return Err(ChunkError::BadTrailer),
                    _ => State::TrailerLine,
                }
            }
            State::TrailerLf { last } => match b {
                b'\n' if last => State::Done,
                b'\n' => State::TrailerStart,
                _ => return Err(ChunkError::BareLf),
            },
            State::Data { .. } | State::Done => unreachable!("handled by step"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `split` bytes; the body and the bytes
    /// left over after its end.
    fn decode(input: &[u8], split: usize) -> Result<(Vec<u8>, Vec<u8>), ChunkError> {
        let mut d = Decoder::default();
        let mut body = Vec::new();
        let mut pos = 0;
        while pos < input.len() && !d.is_done() {
            let end = (pos + split).min(input.len());
            let mut piece = &input[pos..end];
            while !piece.is_empty() && !d.is_done() {
                let step = d.step(piece)?;
                body.extend_from_slice(step.data);
                if step.used == 0 {
                    break;
                }
                piece = &piece[step.used..];
                pos += step.used;
            }
        }
        assert!(
            d.is_done(),
            "body not complete: {:?}",
            String::from_utf8_lossy(input)
        );
        Ok((body, input[pos..].to_vec()))
    }

    const OK: &[(&str, &str, &str)] = &[
        // (input, body, left over)
        ("0\r\n\r\n", "", ""),
        ("5\r\nhello\r\n0\r\n\r\n", "hello", ""),
        (
            "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\nGET",
            "hello world",
            "GET",
        ),
        ("A\r\n0123456789\r\n0\r\n\r\n", "0123456789", ""),
        ("a\r\n0123456789\r\n000\r\n\r\n", "0123456789", ""),
        ("0005\r\nhello\r\n0\r\n\r\n", "hello", ""),
        // Extensions, with and without values and whitespace, are skipped.
        ("5;name=val\r\nhello\r\n0;last\r\n\r\n", "hello", ""),
        ("5 ; a=\"b c\"\r\nhello\r\n0\r\n\r\n", "hello", ""),
        ("5\t;x\r\nhello\r\n0\r\n\r\n", "hello", ""),
        // Trailers are read and discarded.
        (
            "5\r\nhello\r\n0\r\nDigest: x\r\nX-Y: z\r\n\r\nnext",
            "hello",
            "next",
        ),
        ("3\r\n\r\n\n\r\n0\r\n\r\n", "\r\n\n", ""),
    ];

    #[test]
    fn valid_bodies_at_every_split() {
        for (input, body, rest) in OK {
            for split in 1..=input.len() {
                let (b, r) =
                    decode(input.as_bytes(), split).unwrap_or_else(|e| panic!("{input:?}: {e}"));
                assert_eq!(
                    (b.as_slice(), r.as_slice()),
                    (body.as_bytes(), rest.as_bytes()),
                    "{input:?} split {split}"
                );
            }
        }
    }

    const BAD: &[(&str, ChunkError)] = &[
        ("\r\n", ChunkError::BadSize),
        ("x\r\n", ChunkError::BadSize),
        ("-5\r\n", ChunkError::BadSize),
        ("+5\r\n", ChunkError::BadSize),
        ("0x5\r\n", ChunkError::BadSize),
        (" 5\r\n", ChunkError::BadSize),
        ("5x\r\n", ChunkError::BadSize),
        ("fffffffffffffffff\r\n", ChunkError::SizeOverflow),
        ("10000000000000000\r\n", ChunkError::SizeOverflow),
        ("5\nhello\r\n", ChunkError::BareLf),
        ("5\r\rhello", ChunkError::BareLf),
        ("5;x\nhello", ChunkError::BareLf),
        ("5\r\nhelloX\r\n", ChunkError::MissingCrlf),
        ("5\r\nhello\n0\r\n", ChunkError::MissingCrlf),
        ("5\r\nhello\rX", ChunkError::MissingCrlf),
        ("5;a\x01b\r\n", ChunkError::BadExtension),
        ("0\r\nX: y\n", ChunkError::BareLf),
        ("0\r\nX: \x00\r\n\r\n", ChunkError::BadTrailer),
        ("0\r\n\n", ChunkError::BareLf),
        ("0\r\n\rX", ChunkError::BareLf),
    ];

    #[test]
    fn malformed_bodies_are_refused() {
        for (input, want) in BAD {
            let mut d = Decoder::default();
            let mut rest = input.as_bytes();
            let got = loop {
                match d.step(rest) {
                    Err(e) => break Some(e),
                    Ok(s) if s.used == 0 || s.used == rest.len() => break None,
                    Ok(s) => rest = &rest[s.used..],
                }
            };
            assert_eq!(got, Some(*want), "{input:?}");
        }
    }

    #[test]
    fn extensions_and_trailers_are_bounded() {
        let long_ext = format!("1;{}\r\n", "a".repeat(MAX_EXTENSION));
        let mut d = Decoder::default();
        assert_eq!(d.step(long_ext.as_bytes()), Err(ChunkError::BadExtension));
        let fits = format!("1;{}\r\nx\r\n0\r\n\r\n", "a".repeat(MAX_EXTENSION - 2));
        assert_eq!(decode(fits.as_bytes(), 7).unwrap().0, b"x");
        let trailers = format!("0\r\n{}", "X: yyyyyyyy\r\n".repeat(MAX_TRAILERS / 13 + 1));
        let mut d = Decoder::default();
        let mut rest = trailers.as_bytes();
        let err = loop {
            match d.step(rest) {
                Err(e) => break e,
                Ok(s) => {
                    assert!(s.used > 0, "stalled without an error");
                    rest = &rest[s.used..];
                }
            }
        };
        assert_eq!(err, ChunkError::BadTrailer);
    }

    /// A data slice is never longer than the chunk, whatever follows it, and
    /// a size of 2^64 − 1 is accepted (it only means "a lot is coming").
    #[test]
    fn data_stops_at_the_chunk_end() {
        let mut d = Decoder::default();
        let s = d.step(b"3\r\nabcdef").unwrap();
        assert_eq!((s.used, s.data), (6, &b"abc"[..]));
        assert_eq!(d.step(b"def"), Err(ChunkError::MissingCrlf));
        let mut d = Decoder::default();
        let s = d.step(b"ffffffffffffffff\r\nxy").unwrap();
        assert_eq!(s.data, b"xy");
    }
}
