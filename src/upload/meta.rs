//! The `<id>.meta` file of an upload: a small, versioned text format, one
//! `key value` per line. Pure: [`Meta::encode`] and [`Meta::decode`].
//!
//! ```text
//! ranged-upload 1
//! state open
//! target /incoming/
//! name holiday%20video.mp4
//! owner alice
//! length 1048576
//! offset 524288
//! created 1700000000
//! progress 1700000100
//! deadline -
//! sha256 -
//! metadata filename%20aG9saWRheSB2aWRlby5tcDQ=
//! hash 67e6096a…
//! ```
//!
//! * Strings are percent-escaped: every byte outside `!`..`~`, and `%`
//!   itself, is written `%XX`, so a value is one token without spaces or
//!   line breaks, whatever a client sent.
//! * `-` stands for "none" in the optional numeric fields; `length -` is a
//!   deferred length.
//! * `hash` is the serialized SHA-256 state over the first `offset` bytes
//!   (RustCrypto `SerializableState`, stable within sha2 0.x), so a restart
//!   does not re-read the data to resume the whole-file digest; `-` when
//!   unknown.
//! * `state published` marks a tombstone: the file went to its target, and the
//!   record only remains so that a client whose last response was lost learns
//!   that the upload is complete.
//!
//! Decoding is strict: the version line first, every key exactly once, no
//! unknown key. A file that does not decode is not ours to guess about.

use crate::hex;

/// Whether the upload still has its bytes in the state folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Open,
    Published,
}

/// Everything the store persists about one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    pub state: State,
    /// The decoded URL path of the destination folder, e.g. `/incoming/`.
    pub target: String,
    pub name: String,
    pub owner: String,
    /// `None`: deferred (tus creation-defer-length).
    pub length: Option<u64>,
    /// The committed offset: bytes `[0, offset)` of the data file are durable.
    pub offset: u64,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds of the last commit that moved the offset.
    pub progress: u64,
    /// Unix seconds after which the upload is gone, whatever its progress.
    pub deadline: Option<u64>,
    /// The SHA-256 the whole file must have to be published.
    pub sha256: Option<[u8; 32]>,
    /// The raw `Upload-Metadata` value, echoed on HEAD.
    pub metadata: String,
    /// Serialized SHA-256 state over `[0, offset)`.
    pub hash_state: Option<Vec<u8>>,
}

const VERSION_LINE: &str = "ranged-upload 1";
const KEYS: [&str; 12] = [
    "state", "target", "name", "owner", "length", "offset", "created", "progress", "deadline",
    "sha256", "metadata", "hash",
];

impl Meta {
    pub fn encode(&self) -> String {
        let opt = |v: Option<u64>| v.map_or("-".to_owned(), |n| n.to_string());
        let hex_or_dash = |v: Option<&[u8]>| v.map_or("-".to_owned(), hex::encode);
        let state = match self.state {
            State::Open => "open",
            State::Published => "published",
        };
        let values = [
            state.to_owned(),
            escape(&self.target),
            escape(&self.name),
            escape(&self.owner),
            opt(self.length),
            self.offset.to_string(),
            self.created.to_string(),
            self.progress.to_string(),
            opt(self.deadline),
            hex_or_dash(self.sha256.as_ref().map(|d| &d[..])),
            escape(&self.metadata),
            hex_or_dash(self.hash_state.as_deref()),
        ];
        let mut out = String::with_capacity(256 + self.metadata.len());
        out.push_str(VERSION_LINE);
        out.push('\n');
        for (key, value) in KEYS.iter().zip(values) {
            out.push_str(key);
            out.push(' ');
            out.push_str(&value);
            out.push('\n');
        }
        out
    }

    /// `None` for anything that is not exactly what [`Meta::encode`] writes
    /// (keys may come in any order).
    pub fn decode(text: &str) -> Option<Meta> {
        let mut lines = text.lines();
        if lines.next()? != VERSION_LINE {
            return None;
        }
        let mut values: [Option<&str>; KEYS.len()] = [None; KEYS.len()];
        for line in lines {
            let (key, value) = line.split_once(' ')?;
            let i = KEYS.iter().position(|k| *k == key)?;
            if values[i].replace(value).is_some() {
                return None;
            }
        }
        let [
            state,
            target,
            name,
            owner,
            length,
            offset,
            created,
            progress,
            deadline,
            sha256,
            metadata,
            hash,
        ] = values;
        let num = |v: Option<&str>| -> Option<u64> {
            let v = v?;
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            v.parse().ok()
        };
        let opt_num = |v: Option<&str>| -> Option<Option<u64>> {
            match v? {
                "-" => Some(None),
                other => num(Some(other)).map(Some),
            }
        };
        let opt_hex = |v: Option<&str>| -> Option<Option<Vec<u8>>> {
            match v? {
                "-" => Some(None),
                other => hex::decode(other).map(Some),
            }
        };
        let meta = Meta {
            state: match state? {
                "open" => State::Open,
                "published" => State::Published,
                _ => return None,
            },
            target: unescape(target?)?,
            name: unescape(name?)?,
            owner: unescape(owner?)?,
            length: opt_num(length)?,
            offset: num(offset)?,
            created: num(created)?,
            progress: num(progress)?,
            deadline: opt_num(deadline)?,
            sha256: match opt_hex(sha256)? {
                None => None,
                Some(bytes) => Some(bytes.try_into().ok()?),
            },
            metadata: unescape(metadata?)?,
            hash_state: opt_hex(hash)?,
        };
        if meta.length.is_some_and(|len| meta.offset > len) {
            return None;
        }
        Some(meta)
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_graphic() && b != b'%' {
            out.push(b as char);
        } else {
            out.push('%');
            out.push_str(&hex::encode(&[b]).to_ascii_uppercase());
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let pair = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(pair, 16).ok()?);
            i += 3;
        } else if b.is_ascii_graphic() {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Meta {
        Meta {
            state: State::Open,
            target: "/in coming/ü%/".into(),
            name: "a b\u{7f}.txt".into(),
            owner: "-".into(),
            length: Some(1000),
            offset: 10,
            created: 1_700_000_000,
            progress: 1_700_000_100,
            deadline: None,
            sha256: Some([7; 32]),
            metadata: "filename YSBi,flag".into(),
            hash_state: Some(vec![0, 1, 254, 255]),
        }
    }

    #[test]
    fn round_trips() {
        let variants = [
            sample(),
            Meta {
                state: State::Published,
                length: None,
                deadline: Some(u64::MAX),
                sha256: None,
                hash_state: None,
                metadata: String::new(),
                owner: String::new(),
                offset: 0,
                ..sample()
            },
        ];
        for meta in variants {
            let text = meta.encode();
            assert_eq!(text.lines().count(), 1 + KEYS.len(), "{text}");
            assert_eq!(Meta::decode(&text), Some(meta), "{text}");
        }
        let text = sample().encode();
        assert!(
            text.contains("\ntarget /in%20coming/%C3%BC%25/\n"),
            "{text}"
        );
        assert!(text.contains("\nname a%20b%7F.txt\n"), "{text}");
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let good = sample().encode();
        let cases: Vec<(&str, String)> = vec![
            ("empty", String::new()),
            (
                "other version",
                good.replace("ranged-upload 1", "ranged-upload 2"),
            ),
            ("missing key", good.replace("owner -\n", "")),
            ("duplicate key", format!("{good}owner bob\n")),
            ("unknown key", format!("{good}colour red\n")),
            ("bad state", good.replace("state open", "state done")),
            ("signed number", good.replace("offset 10", "offset -10")),
            (
                "overflow",
                good.replace("offset 10", "offset 18446744073709551616"),
            ),
            (
                "offset past length",
                good.replace("offset 10", "offset 1001"),
            ),
            ("bad escape", good.replace("a%20b", "a%2xb")),
            ("cut escape", good.replace("a%20b%7F.txt", "a%2")),
            ("raw space", good.replace("a%20b", "a b")),
            ("escaped non-UTF-8", good.replace("%C3%BC", "%C3")),
            ("short sha256", good.replace(&hex::encode(&[7; 32]), "0707")),
            ("odd hash", good.replace("0001feff", "0001fef")),
            ("truncated", good[..good.len() / 2].to_owned()),
        ];
        for (what, text) in cases {
            assert_eq!(Meta::decode(&text), None, "{what}: {text}");
        }
    }
}
