//! Base64 (RFC 4648 §4, with padding) and its URL-safe form (§5, without
//! padding). Pure. Used for HTTP Basic credentials (RFC 7617), digest fields
//! (RFC 9530 §3 byte sequences), tus `Upload-Metadata` values and capability
//! tokens. Decoding is strict: characters outside the alphabet, misplaced
//! padding and non-zero trailing bits are errors, so that one value has one
//! spelling (a token cannot be varied to dodge a cache or a log filter).

const STD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// Standard alphabet with `=` padding.
///
/// ```
/// assert_eq!(ranged::base64::encode(b"user:pass"), "dXNlcjpwYXNz");
/// assert_eq!(ranged::base64::encode(b"ab"), "YWI=");
/// ```
pub fn encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    encode_into(&mut out, data, STD, true);
    out
}

/// URL-safe alphabet, no padding (RFC 4648 §5): safe in a query string.
pub fn encode_url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    encode_into(&mut out, data, URL, false);
    out
}

/// Appends the standard, padded encoding of `data` to `out`.
pub fn encode_to(out: &mut String, data: &[u8]) {
    encode_into(out, data, STD, true);
}

fn encode_into(out: &mut String, data: &[u8], alphabet: &[u8; 64], pad: bool) {
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
}

/// Decodes the standard alphabet; padding is required when the length is
/// not a multiple of four. `None` for anything malformed.
///
/// ```
/// assert_eq!(ranged::base64::decode("dXNlcjpwYXNz").as_deref(), Some(&b"user:pass"[..]));
/// assert_eq!(ranged::base64::decode("YWI"), None);
/// ```
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let body = match bytes {
        [rest @ .., b'=', b'='] => rest,
        [rest @ .., b'='] => rest,
        _ => bytes,
    };
    decode_with(body, STD)
}

/// Decodes the URL-safe alphabet without padding.
pub fn decode_url(text: &str) -> Option<Vec<u8>> {
    decode_with(text.as_bytes(), URL)
}

fn decode_with(body: &[u8], alphabet: &[u8; 64]) -> Option<Vec<u8>> {
    // A length of 1 mod 4 cannot come from any byte string.
    if body.len() % 4 == 1 {
        return None;
    }
    let value = |c: u8| alphabet.iter().position(|&a| a == c).map(|v| v as u32);
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= value(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        let keep = chunk.len() - 1;
        // Bits below the last whole byte must be zero (RFC 4648 §3.5).
        if keep < 3 && n & ((1 << (8 * (3 - keep))) - 1) != 0 {
            return None;
        }
        out.extend_from_slice(&bytes[..keep]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4648 §10 test vectors, both alphabets.
    #[test]
    fn rfc_vectors() {
        let cases: &[(&[u8], &str, &str)] = &[
            (b"", "", ""),
            (b"f", "Zg==", "Zg"),
            (b"fo", "Zm8=", "Zm8"),
            (b"foo", "Zm9v", "Zm9v"),
            (b"foob", "Zm9vYg==", "Zm9vYg"),
            (b"fooba", "Zm9vYmE=", "Zm9vYmE"),
            (b"foobar", "Zm9vYmFy", "Zm9vYmFy"),
            (&[0xfb, 0xff, 0xfe], "+//+", "-__-"),
        ];
        for (raw, std, url) in cases {
            assert_eq!(encode(raw), *std);
            assert_eq!(encode_url(raw), *url);
            assert_eq!(decode(std).as_deref(), Some(*raw), "{std}");
            assert_eq!(decode_url(url).as_deref(), Some(*raw), "{url}");
        }
    }

    #[test]
    fn malformed_is_refused() {
        for bad in [
            "Zg", "Zg=", "Z===", "Zh==", "Zm9=", "Zm9v!", "Zm 9v", "=Zm9", "Zm=v", "-__-",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
        for bad in ["Z", "Zh", "Zg==", "+//+", "Zm9"] {
            assert_eq!(decode_url(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn round_trips() {
        for len in 0..200 {
            let data = crate::testing::pattern(len, len as u64 + 1);
            assert_eq!(decode(&encode(&data)), Some(data.clone()));
            assert_eq!(decode_url(&encode_url(&data)), Some(data));
        }
    }
}
