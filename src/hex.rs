//! Hexadecimal: one digit decoder for every parser that reads hex (chunk
//! sizes, percent-escapes, upload ids, checksums), and the lowercase
//! encoding the upload store writes.

/// The value of one hex digit, either case.
pub fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Lowercase hex.
pub fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// Inverse of [`encode`] (either case); `None` for odd lengths or non-hex.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.as_bytes()
        .chunks_exact(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_and_round_trips() {
        let all: Vec<Option<u8>> = (0..=255u8).map(digit).collect();
        assert_eq!(all.iter().filter(|d| d.is_some()).count(), 22);
        assert_eq!(
            (digit(b'0'), digit(b'f'), digit(b'F')),
            (Some(0), Some(15), Some(15))
        );
        assert_eq!((digit(b'g'), digit(b'/'), digit(b':')), (None, None, None));
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(decode(&encode(&bytes)), Some(bytes.clone()));
        assert_eq!(decode(&encode(&bytes).to_uppercase()), Some(bytes));
        assert_eq!(encode(&[0x0f, 0xa0]), "0fa0");
        for bad in ["a", "0g", "abc", " 0"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
        assert_eq!(decode(""), Some(vec![]));
    }
}
