//! Digests of served files (RFC 9530): computed in the background, persisted, never stale.
