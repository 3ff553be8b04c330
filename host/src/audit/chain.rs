//! The hash chain: how a record is sealed into a line and how a line is checked. Pure.
//!
//! The canonical encoding of a record is the exact bytes of its line up to (not including) the
//! `hash` member, closed with `}`: the writer serialises the record without `hash` (so the JSON
//! ends `…,"prevHash":"<hex>"}`), hashes those bytes with sha256, then replaces the final `}`
//! with `,"hash":"<hex>"}`. A verifier strips that fixed-length suffix, puts the `}` back and
//! hashes again, so no JSON canonicalisation is needed and any change to any byte of the line
//! (including key order, whitespace or an added member) breaks the hash. Because `prevHash` is
//! inside the hashed bytes, each record also vouches for the one before it.

use super::record::AuditRecord;
use sha2::{Digest, Sha256};

/// `,"hash":"` — the bytes between the canonical body and the hex digest.
const HASH_PREFIX: &[u8] = b",\"hash\":\"";
/// Hex digits of a sha256.
const HEX_LEN: usize = 64;
/// Length of `,"hash":"<64 hex>"}`.
const SUFFIX_LEN: usize = HASH_PREFIX.len() + HEX_LEN + 2;

/// Why a line is not a valid sealed record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LineFault {
    /// The line does not end with a `hash` member in the sealed form.
    #[error("the line does not end with a hash member")]
    Unsealed,
    /// The hash does not match the line's bytes: the record was edited.
    #[error("the hash does not match the record (edited)")]
    HashMismatch,
    /// The line is not a record of a known schema.
    #[error("not a valid record: {0}")]
    NotARecord(String),
}

/// Serialises `record` (whose `prev_hash` the caller has set), computes its hash, stores it in
/// `record.hash`, and returns the full line including the trailing newline.
pub fn seal(record: &mut AuditRecord) -> Result<Vec<u8>, serde_json::Error> {
    record.hash = None;
    let mut line = serde_json::to_vec(record)?;
    let digest = hex::encode(Sha256::digest(&line));
    line.pop(); // the closing brace
    line.reserve(SUFFIX_LEN);
    line.extend_from_slice(HASH_PREFIX);
    line.extend_from_slice(digest.as_bytes());
    line.extend_from_slice(b"\"}\n");
    record.hash = Some(digest);
    Ok(line)
}

/// Checks one line (without its newline): its own hash first, then that it parses as a
/// record. The chain link (`prevHash`, `seq`) is the caller's to check.
pub fn open_line(line: &[u8]) -> Result<AuditRecord, LineFault> {
    let hash = sealed_hash(line)?;
    let body_len = line.len() - SUFFIX_LEN;
    let mut h = Sha256::new();
    h.update(&line[..body_len]);
    h.update(b"}");
    if hex::encode(h.finalize()).as_bytes() != hash {
        return Err(LineFault::HashMismatch);
    }
    let record: AuditRecord =
        serde_json::from_slice(line).map_err(|e| LineFault::NotARecord(e.to_string()))?;
    if record.hash.as_deref().map(str::as_bytes) != Some(hash) {
        return Err(LineFault::HashMismatch);
    }
    Ok(record)
}

/// The hex digest a sealed line ends with.
fn sealed_hash(line: &[u8]) -> Result<&[u8], LineFault> {
    if line.len() < SUFFIX_LEN + 1 || !line.ends_with(b"\"}") {
        return Err(LineFault::Unsealed);
    }
    let start = line.len() - SUFFIX_LEN;
    if &line[start..start + HASH_PREFIX.len()] != HASH_PREFIX {
        return Err(LineFault::Unsealed);
    }
    let hex = &line[start + HASH_PREFIX.len()..line.len() - 2];
    if !hex
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
    {
        return Err(LineFault::Unsealed);
    }
    Ok(hex)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::record::{GENESIS_HASH, Stage};

    fn sealed() -> (AuditRecord, Vec<u8>) {
        let mut r = AuditRecord::new(Stage::Received);
        r.seq = 1;
        r.time = "2026-01-01T00:00:00.000000Z".into();
        r.request_id = Some("0190".into());
        r.prev_hash = GENESIS_HASH.into();
        let line = seal(&mut r).unwrap();
        (r, line)
    }

    #[test]
    fn a_sealed_line_opens_to_the_same_record() {
        let (r, line) = sealed();
        assert!(line.ends_with(b"\"}\n"));
        let back = open_line(&line[..line.len() - 1]).unwrap();
        assert_eq!(back, r);
        let json: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(json["hash"], r.hash.unwrap());
    }

    #[test]
    fn any_edit_breaks_the_hash() {
        let (_, line) = sealed();
        let line = &line[..line.len() - 1];
        let edited = String::from_utf8(line.to_vec())
            .unwrap()
            .replace("0190", "0191");
        assert_eq!(
            open_line(edited.as_bytes()).unwrap_err(),
            LineFault::HashMismatch
        );
        let spaced = String::from_utf8(line.to_vec())
            .unwrap()
            .replacen(':', ": ", 1);
        assert_eq!(
            open_line(spaced.as_bytes()).unwrap_err(),
            LineFault::HashMismatch
        );
        assert_eq!(open_line(b"{}").unwrap_err(), LineFault::Unsealed);
        assert_eq!(
            open_line(&line[..line.len() - 3]).unwrap_err(),
            LineFault::Unsealed
        );
    }

    #[test]
    fn a_duplicate_hash_member_is_refused() {
        let (_, line) = sealed();
        let text = String::from_utf8(line[..line.len() - 1].to_vec()).unwrap();
        let tricked = text.replacen("{", &format!("{{\"hash\":\"{}\",", "a".repeat(64)), 1);
        assert!(open_line(tricked.as_bytes()).is_err());
    }
}
