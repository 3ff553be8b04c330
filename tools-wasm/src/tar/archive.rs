//! The archive as a byte stream: opening it for reading (a file or standard input, gunzipped
//! when `-z` is given or the bytes start with gzip's magic, as GNU tar detects it) and for
//! writing (a file or standard output, gzipped with `-z`, padded to GNU's 10240-byte records).
//!
//! Knows nothing about tar headers; must not write anywhere but the archive it names.

use super::Options;
use crate::cli;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};

/// GNU tar's default record: 20 blocks of 512 bytes.
pub const RECORD: u64 = 10240;

/// The archive's name as messages show it.
pub fn display_name(options: &Options) -> String {
    match &options.file {
        Some(f) if f != "-" => f.to_string_lossy().into_owned(),
        _ => "-".to_owned(),
    }
}

/// Whether the archive is standard input or output.
pub fn is_standard(options: &Options) -> bool {
    options.file.as_ref().is_none_or(|f| f == "-")
}

/// Opens the archive for reading; `Err` carries the message (after "tar: ").
pub fn input(options: &Options) -> Result<Box<dyn Read>, String> {
    let raw: Box<dyn Read> = if is_standard(options) {
        Box::new(io::stdin().lock())
    } else {
        let name = display_name(options);
        let file = File::open(&name)
            .map_err(|e| format!("{name}: Cannot open: {}", cli::io_message(&e)))?;
        Box::new(file)
    };
    let mut reader = BufReader::with_capacity(64 * 1024, raw);
    let gzipped = options.gzip
        || reader
            .fill_buf()
            .map(|b| b.starts_with(&[0x1f, 0x8b]))
            .unwrap_or(false);
    Ok(if gzipped {
        Box::new(BufReader::new(MultiGzDecoder::new(reader)))
    } else {
        Box::new(reader)
    })
}

/// The archive being written.
pub struct Output {
    sink: Sink,
    written: u64,
}

enum Sink {
    Plain(Box<dyn Write>),
    Gzip(GzEncoder<Box<dyn Write>>),
}

impl Output {
    /// Creates (or truncates) the archive; `Err` carries the message.
    pub fn create(options: &Options) -> Result<Output, String> {
        let raw: Box<dyn Write> = if is_standard(options) {
            Box::new(io::BufWriter::with_capacity(64 * 1024, io::stdout()))
        } else {
            let name = display_name(options);
            let file = File::create(&name)
                .map_err(|e| format!("{name}: Cannot open: {}", cli::io_message(&e)))?;
            Box::new(io::BufWriter::with_capacity(64 * 1024, file))
        };
        let sink = if options.gzip {
            Sink::Gzip(GzEncoder::new(raw, Compression::default()))
        } else {
            Sink::Plain(raw)
        };
        Ok(Output { sink, written: 0 })
    }

    /// The end-of-archive blocks, padding to a whole record, the gzip trailer, flushed.
    pub fn finish(mut self) -> io::Result<()> {
        self.write_all(&[0u8; 1024])?;
        let pad = (RECORD - self.written % RECORD) % RECORD;
        let zeros = [0u8; 512];
        let mut left = pad;
        while left > 0 {
            let n = left.min(512);
            // n <= 512
            self.write_all(&zeros[..n as usize])?;
            left -= n;
        }
        match self.sink {
            Sink::Plain(mut w) => w.flush(),
            Sink::Gzip(g) => g.finish()?.flush(),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = match &mut self.sink {
            Sink::Plain(w) => w.write(buf)?,
            Sink::Gzip(g) => g.write(buf)?,
        };
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.sink {
            Sink::Plain(w) => w.flush(),
            Sink::Gzip(g) => g.flush(),
        }
    }
}
