//! The gzip format itself, on flate2's pure-Rust backend (miniz_oxide): compress one stream with
//! GNU gzip's header fields, decompress every member of a stream (noticing trailing garbage as
//! GNU does), and read what `gzip -l` shows.
//!
//! Streams only: memory is bounded by the buffers, never by the size of the data. Nothing here
//! opens, creates or removes a file.

use flate2::{Compression, GzBuilder};
use std::io::{self, BufRead, Read, Write};

/// GNU gzip writes 3 (Unix) as the operating system of every member.
const OS_UNIX: u8 = 3;

/// What the header of a new member carries.
pub struct HeaderFields<'a> {
    /// The input's base name (`None`: no name, as for standard input or `-n`).
    pub name: Option<&'a [u8]>,
    /// Modification time in seconds since the epoch (0: none).
    pub mtime: u32,
}

/// Compresses `input` to `output` at `level` (1..=9); returns (bytes in, bytes of deflate data).
pub fn compress(
    input: &mut impl Read,
    output: impl Write,
    level: u32,
    fields: &HeaderFields<'_>,
) -> io::Result<(u64, u64)> {
    let mut builder = GzBuilder::new()
        .mtime(fields.mtime)
        .operating_system(OS_UNIX);
    // A name with a NUL byte cannot be stored (and cannot be a file name anyway).
    if let Some(name) = fields.name.filter(|n| !n.contains(&0)) {
        builder = builder.filename(name);
    }
    let mut counting = CountingWriter {
        inner: output,
        count: 0,
    };
    let mut encoder = builder.write(&mut counting, Compression::new(level));
    let read = io::copy(input, &mut encoder)?;
    encoder.try_finish()?;
    drop(encoder);
    counting.inner.flush()?;
    let header_len = 10 + fields.name.map_or(0, |n| n.len() as u64 + 1);
    Ok((read, counting.count.saturating_sub(header_len + 8)))
}

/// How decompression of a stream ended, when it did not fail.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every byte belonged to a gzip member.
    Clean,
    /// Bytes after the last member that do not start another one (GNU: "decompression OK,
    /// trailing garbage ignored", a warning).
    TrailingGarbage,
}

/// What went wrong while decompressing, in GNU gzip's words.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not in gzip format")]
    NotGzip,
    #[error("unexpected end of file")]
    Truncated,
    #[error("invalid compressed data--format violated")]
    Corrupt,
    #[error("{0}")]
    Io(io::Error),
}

/// The header fields of the first member that `-N` restores (the name is read by the caller
/// before decompressing, to choose the output).
#[derive(Debug, Default)]
pub struct FirstHeader {
    pub mtime: u32,
}

/// Decompresses every member of `input` into `output`.
pub fn decompress(
    input: &mut impl BufRead,
    output: &mut impl Write,
) -> Result<(Ending, FirstHeader), DecodeError> {
    let mut first = None;
    loop {
        let mut decoder = flate2::bufread::GzDecoder::new(&mut *input);
        let copied = copy_member(&mut decoder, output);
        if first.is_none() {
            first = Some(FirstHeader {
                mtime: decoder.header().map_or(0, flate2::GzHeader::mtime),
            });
        }
        copied?;
        drop(decoder);
        let rest = input.fill_buf().map_err(DecodeError::Io)?;
        if rest.is_empty() {
            return Ok((Ending::Clean, first.unwrap_or_default()));
        }
        if !rest.starts_with(&[0x1f]) || (rest.len() >= 2 && rest[1] != 0x8b) {
            return Ok((Ending::TrailingGarbage, first.unwrap_or_default()));
        }
    }
}

/// Copies one member, telling a missing header from a damaged body.
fn copy_member(
    decoder: &mut flate2::bufread::GzDecoder<&mut impl BufRead>,
    output: &mut impl Write,
) -> Result<(), DecodeError> {
    let mut buf = vec![0u8; 64 * 1024];
    let mut started = false;
    loop {
        let n = match decoder.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                return Err(if started || decoder.header().is_some() {
                    DecodeError::Truncated
                } else {
                    DecodeError::NotGzip
                });
            }
            Err(e) if e.kind() == io::ErrorKind::InvalidInput && decoder.header().is_none() => {
                return Err(DecodeError::NotGzip);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData
                ) =>
            {
                return Err(DecodeError::Corrupt);
            }
            Err(e) => return Err(DecodeError::Io(e)),
        };
        if n == 0 {
            return Ok(());
        }
        started = true;
        // A write error is the output's problem, reported as such by the caller.
        output.write_all(&buf[..n]).map_err(DecodeError::Io)?;
    }
}

/// The line `gzip -l` prints for one file: its size, the uncompressed size from the last
/// member's trailer (modulo 2^32, as GNU), and the header's length (for the ratio).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listing {
    pub compressed: u64,
    pub uncompressed: u64,
    pub header_bytes: u64,
}

/// Reads what `-l` needs from a whole gzip stream, without decompressing it.
pub fn list(input: &mut impl Read) -> Result<Listing, DecodeError> {
    let mut head = [0u8; 10];
    let mut total = 0u64;
    let mut last8 = [0u8; 8];
    let mut header = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf).map_err(DecodeError::Io)?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if header.len() < 4096 {
            header.extend_from_slice(&chunk[..chunk.len().min(4096 - header.len())]);
        }
        for &b in &chunk[chunk.len().saturating_sub(8)..] {
            last8.rotate_left(1);
            last8[7] = b;
        }
        total += n as u64;
    }
    if header.len() < 10 {
        return Err(if header.len() >= 2 && header[..2] == [0x1f, 0x8b] {
            DecodeError::Truncated
        } else {
            DecodeError::NotGzip
        });
    }
    head.copy_from_slice(&header[..10]);
    if head[..3] != [0x1f, 0x8b, 8] {
        return Err(DecodeError::NotGzip);
    }
    if total < 18 {
        return Err(DecodeError::Truncated);
    }
    let header_len = header_length(&header).ok_or(DecodeError::Truncated)?;
    let isize = u32::from_le_bytes([last8[4], last8[5], last8[6], last8[7]]);
    Ok(Listing {
        compressed: total,
        uncompressed: u64::from(isize),
        header_bytes: header_len + 8,
    })
}

/// The length of the gzip header at the start of `bytes`, if it is all there.
fn header_length(bytes: &[u8]) -> Option<u64> {
    let flags = *bytes.get(3)?;
    let mut at = 10usize;
    if flags & 0x04 != 0 {
        let xlen = u16::from_le_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]);
        at += 2 + usize::from(xlen);
    }
    for bit in [0x08u8, 0x10] {
        if flags & bit != 0 {
            let nul = bytes.get(at..)?.iter().position(|&b| b == 0)?;
            at += nul + 1;
        }
    }
    if flags & 0x02 != 0 {
        at += 2;
    }
    Some(at as u64)
}

/// GNU's `display_ratio`: `%5.1f%%` of 100 × (original − compressed) / original (0 when the
/// original is empty).
pub fn ratio(original: u64, compressed_payload: u64) -> String {
    let percent = if original == 0 {
        0.0
    } else {
        // Sizes far below 2^53 in practice; the loss above that is in the last digits only.
        #[allow(clippy::cast_precision_loss)]
        let (o, c) = (original as f64, compressed_payload as f64);
        100.0 * (o - c) / o
    };
    format!("{percent:5.1}%")
}

/// A writer that counts what passes through.
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8], name: Option<&[u8]>) -> Vec<u8> {
        let mut out = Vec::new();
        compress(
            &mut &data[..],
            &mut out,
            6,
            &HeaderFields { name, mtime: 7 },
        )
        .unwrap();
        out
    }

    #[test]
    fn round_trip_and_header_fields() {
        let packed = gz(b"hello\n", Some(b"a.txt"));
        assert_eq!(&packed[..4], &[0x1f, 0x8b, 8, 0x08]);
        assert_eq!(packed[9], OS_UNIX);
        let mut out = Vec::new();
        let (ending, first) = decompress(&mut &packed[..], &mut out).unwrap();
        assert_eq!((out.as_slice(), ending), (&b"hello\n"[..], Ending::Clean));
        assert_eq!(first.mtime, 7);
        assert_eq!(&packed[10..16], b"a.txt\0");
    }

    #[test]
    fn members_are_concatenated_and_garbage_is_noticed() {
        let mut two = gz(b"a\n", None);
        two.extend(gz(b"b\n", None));
        let mut out = Vec::new();
        assert_eq!(
            decompress(&mut &two[..], &mut out).unwrap().0,
            Ending::Clean
        );
        assert_eq!(out, b"a\nb\n");
        two.extend(b"junk");
        out.clear();
        let (ending, _) = decompress(&mut &two[..], &mut out).unwrap();
        assert_eq!(ending, Ending::TrailingGarbage);
    }

    #[test]
    fn not_gzip_truncated_and_corrupt_are_told_apart() {
        let mut sink = Vec::new();
        assert!(matches!(
            decompress(&mut &b"plain text\n"[..], &mut sink),
            Err(DecodeError::NotGzip)
        ));
        let packed = gz(&[b'x'; 1000], None);
        let cut = &packed[..packed.len() - 5];
        assert!(matches!(
            decompress(&mut &cut[..], &mut sink),
            Err(DecodeError::Truncated)
        ));
        let mut bad = packed.clone();
        let last = bad.len() - 6;
        bad[last] ^= 0xff;
        assert!(decompress(&mut &bad[..], &mut sink).is_err());
    }

    #[test]
    fn listing_reads_sizes_from_the_trailer() {
        let packed = gz(b"hello world\n", Some(b"a"));
        let l = list(&mut &packed[..]).unwrap();
        assert_eq!(l.compressed, packed.len() as u64);
        assert_eq!(l.uncompressed, 12);
        assert_eq!(l.header_bytes, 10 + 2 + 8);
    }

    #[test]
    fn ratio_is_gnus() {
        assert_eq!(ratio(24, 22), "  8.3%");
        assert_eq!(ratio(12, 14), "-16.7%");
        assert_eq!(ratio(24, 92), "-283.3%");
        assert_eq!(ratio(0, 10), "  0.0%");
    }
}
