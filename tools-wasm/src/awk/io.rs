//! awk's I/O: reading records by RS (one character, paragraph mode for RS = "", or a regex),
//! the files `getline < file` reads, and the streams `print > file` / `>> file` write, with
//! `close()` and `fflush()`. `/dev/stdout`, `/dev/stderr`, `/dev/stdin` and `-` are the
//! standard streams (the guest has no `/dev`).
//!
//! Must not: open anything that is not a plain path given by the program (the workspace is
//! the guest's whole file system; commands and pipes never reach here), or hold more than
//! [`MAX_OPEN`] streams.

use super::ast::Redirect;
use super::error::AwkError;
use super::regex::AwkRegex;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Read, Write};
use std::rc::Rc;

/// Open files (input and output together) a program may hold at once.
pub const MAX_OPEN: usize = 256;

const CHUNK: usize = 64 * 1024;

/// How records end.
pub enum RecordSep {
    Char(char),
    /// RS = "": blank lines separate records.
    Paragraph,
    Regex(Rc<AwkRegex>),
}

/// Records from one source.
pub struct RecordReader {
    src: Box<dyn Read>,
    buf: String,
    pos: usize,
    /// Where the search for a one-character or paragraph separator resumes: the text before
    /// it was searched already (a long record read in many chunks is scanned once).
    scanned: usize,
    /// Bytes of an incomplete UTF-8 sequence at the end of the last chunk.
    carry: Vec<u8>,
    eof: bool,
}

impl RecordReader {
    pub fn new(src: Box<dyn Read>) -> RecordReader {
        RecordReader {
            src,
            buf: String::new(),
            pos: 0,
            scanned: 0,
            carry: Vec::new(),
            eof: false,
        }
    }

    /// Reads one more chunk into the buffer; false at end of input.
    fn fill(&mut self) -> std::io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > CHUNK && self.pos * 2 > self.buf.len() {
            self.buf.drain(..self.pos);
            self.scanned -= self.pos.min(self.scanned);
            self.pos = 0;
        }
        let mut chunk = std::mem::take(&mut self.carry);
        let have = chunk.len();
        chunk.resize(have + CHUNK, 0);
        let n = loop {
            match self.src.read(&mut chunk[have..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        };
        chunk.truncate(have + n);
        if n == 0 {
            self.eof = true;
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
            return Ok(false);
        }
        // Keep an incomplete trailing sequence for the next chunk.
        let valid = match std::str::from_utf8(&chunk) {
            Ok(_) => chunk.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => chunk.len(),
        };
        self.carry = chunk.split_off(valid);
        self.buf.push_str(&String::from_utf8_lossy(&chunk));
        Ok(true)
    }

    /// The next record, without its terminator; `None` at end of input.
    pub fn next_record(&mut self, sep: &RecordSep) -> std::io::Result<Option<String>> {
        loop {
            let rest = &self.buf[self.pos..];
            match sep {
                RecordSep::Char(c) => {
                    let from = self.scanned.max(self.pos);
                    if let Some(i) = self.buf[from..].find(*c) {
                        let rec = self.buf[self.pos..from + i].to_owned();
                        self.pos = from + i + c.len_utf8();
                        self.scanned = self.pos;
                        return Ok(Some(rec));
                    }
                    self.scanned = self.buf.len();
                }
                RecordSep::Paragraph => {
                    let skip = rest.len() - rest.trim_start_matches('\n').len();
                    if skip < rest.len() || self.eof {
                        self.pos += skip;
                    }
                    // The last byte searched may be the first newline of a pair.
                    let back = self.scanned > 0 && self.buf.as_bytes()[self.scanned - 1] == b'\n';
                    let from = (self.scanned - usize::from(back)).max(self.pos);
                    if let Some(i) = self.buf[from..].find("\n\n") {
                        let rec = self.buf[self.pos..from + i].to_owned();
                        self.pos = from + i;
                        self.scanned = self.pos;
                        return Ok(Some(rec));
                    }
                    self.scanned = self.buf.len();
                    let rest = &self.buf[self.pos..];
                    if self.eof {
                        let rec = rest.trim_end_matches('\n').to_owned();
                        self.pos = self.buf.len();
                        return Ok((!rec.is_empty()).then_some(rec));
                    }
                }
                RecordSep::Regex(re) => {
                    let mut at = 0;
                    while let Some((a, b)) = re.find_at(rest, at) {
                        // A match reaching the end of the buffer might grow with more input.
                        if b == rest.len() && !self.eof {
                            break;
                        }
                        if a == b {
                            at = super::fields::next_boundary(rest, a);
                            if at > rest.len() {
                                break;
                            }
                            continue;
                        }
                        let rec = rest[..a].to_owned();
                        self.pos += b;
                        return Ok(Some(rec));
                    }
                }
            }
            if !self.fill()? {
                let rest = &self.buf[self.pos..];
                if rest.is_empty()
                    || matches!(sep, RecordSep::Paragraph) && rest.trim_matches('\n').is_empty()
                {
                    return Ok(None);
                }
                if !matches!(sep, RecordSep::Paragraph) {
                    let rec = rest.to_owned();
                    self.pos = self.buf.len();
                    return Ok(Some(rec));
                }
            }
        }
    }
}

/// Opens `name` for reading (`-` and `/dev/stdin` are standard input).
pub fn open_input(name: &str) -> std::io::Result<Box<dyn Read>> {
    if name == "-" || name == "/dev/stdin" {
        return Ok(Box::new(std::io::stdin()));
    }
    Ok(Box::new(File::open(name)?))
}

/// Where print and printf write.
pub struct Outputs {
    stdout: BufWriter<std::io::Stdout>,
    files: HashMap<String, BufWriter<File>>,
    /// Input files held by getline, counted against [`MAX_OPEN`] by the interpreter.
    pub inputs: HashMap<String, RecordReader>,
}

impl Default for Outputs {
    fn default() -> Self {
        Outputs {
            stdout: BufWriter::with_capacity(CHUNK, std::io::stdout()),
            files: HashMap::new(),
            inputs: HashMap::new(),
        }
    }
}

impl Outputs {
    /// Writes `data` to standard output or to the redirection's file.
    pub fn write(&mut self, dest: Option<(Redirect, &str)>, data: &str) -> Result<(), AwkError> {
        let Some((mode, name)) = dest else {
            return self
                .stdout
                .write_all(data.as_bytes())
                .map_err(|e| AwkError::io("standard output", &e));
        };
        match name {
            "/dev/stdout" | "-" => self.write(None, data),
            "/dev/stderr" => {
                let _ = self.stdout.flush();
                std::io::stderr()
                    .write_all(data.as_bytes())
                    .map_err(|e| AwkError::io("standard error", &e))
            }
            _ => {
                if !self.files.contains_key(name) {
                    if self.files.len() + self.inputs.len() >= MAX_OPEN {
                        return Err(AwkError::Runtime(format!(
                            "too many open files (at most {MAX_OPEN}); close() some"
                        )));
                    }
                    let file = OpenOptions::new()
                        .write(true)
                        .create(true)
                        .append(mode == Redirect::Append)
                        .truncate(mode == Redirect::Truncate)
                        .open(name)
                        .map_err(|e| AwkError::io(format!("can't redirect to `{name}'"), &e))?;
                    self.files.insert(name.to_owned(), BufWriter::new(file));
                }
                match self.files.get_mut(name) {
                    Some(f) => f
                        .write_all(data.as_bytes())
                        .map_err(|e| AwkError::io(name.to_owned(), &e)),
                    None => Ok(()),
                }
            }
        }
    }

    /// `close(name)`: 0 when something by that name was open, -1 otherwise.
    pub fn close(&mut self, name: &str) -> f64 {
        let mut found = false;
        if let Some(mut f) = self.files.remove(name) {
            found = true;
            if f.flush().is_err() {
                return -1.0;
            }
        }
        if self.inputs.remove(name).is_some() {
            found = true;
        }
        if name == "/dev/stdout" || name == "-" {
            found = self.stdout.flush().is_ok();
        }
        if found { 0.0 } else { -1.0 }
    }

    /// `fflush()` / `fflush(name)`.
    pub fn flush(&mut self, name: Option<&str>) -> f64 {
        let ok = match name {
            None => {
                let mut ok = self.stdout.flush().is_ok();
                for f in self.files.values_mut() {
                    ok &= f.flush().is_ok();
                }
                ok
            }
            Some("/dev/stdout" | "-") => self.stdout.flush().is_ok(),
            Some("/dev/stderr") => true,
            Some(n) => match self.files.get_mut(n) {
                Some(f) => f.flush().is_ok(),
                None => false,
            },
        };
        if ok { 0.0 } else { -1.0 }
    }

    /// Flushes everything at exit; the first error is reported.
    pub fn finish(&mut self) -> Result<(), AwkError> {
        let mut result = self
            .stdout
            .flush()
            .map_err(|e| AwkError::io("standard output", &e));
        for (name, f) in &mut self.files {
            if let Err(e) = f.flush()
                && result.is_ok()
            {
                result = Err(AwkError::io(name.clone(), &e));
            }
        }
        result
    }
}
