//! `tar -c`: walks the named files (directories recursively, in directory order or with
//! `--sort=name` by name, never following symbolic links) and writes GNU-format headers byte for
//! byte as GNU tar 1.34 does: octal fields, `%06o\0 ` checksums, `././@LongLink` members for
//! names over 100 bytes, records padded to 10240 bytes.
//!
//! WASI shows no modes or owners, so members get 0644 (files), 0755 (directories), 0777 (links)
//! and owner 0/0 without names unless `--owner`/`--group` say otherwise. Must only read the
//! named files and write the archive; must not archive the archive itself.

use super::archive::{self, Output, display_name};
use super::listing::{self, Member, Widths};
use super::options::{Id, Operand};
use super::{FAILURE, Options, Status, show, usage};
use crate::cli;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::UNIX_EPOCH;

/// Runs `-c`.
pub fn run(options: &Options, status: &mut Status) {
    if !options
        .operands
        .iter()
        .any(|o| matches!(o, Operand::Name(_)))
    {
        usage("Cowardly refusing to create an empty archive", FAILURE);
        status.fatal = true;
        return;
    }
    let mut out = match Output::create(options) {
        Ok(o) => o,
        Err(message) => return status.fatal(message),
    };
    let own = (!archive::is_standard(options))
        .then(|| same_file::Handle::from_path(display_name(options)).ok())
        .flatten();
    let mut c = Creator {
        options,
        own,
        widths: Widths::default(),
        to_stderr: archive::is_standard(options),
    };
    for operand in &options.operands {
        let result = match operand {
            Operand::Directory(dir) => {
                if let Err(e) = std::env::set_current_dir(dir) {
                    status.fatal(format!(
                        "{}: Cannot open: {}",
                        dir.to_string_lossy(),
                        cli::io_message(&e)
                    ));
                    return;
                }
                Ok(())
            }
            Operand::Name(name) => {
                let bytes = name.as_encoded_bytes();
                let cut = super::names::unsafe_prefix(bytes);
                if cut > 0 {
                    status.warn_once(format!(
                        "Removing leading `{}' from member names",
                        show(&bytes[..cut])
                    ));
                }
                let mut member = bytes[cut..].to_vec();
                while member.len() > 1 && member.last() == Some(&b'/') {
                    member.pop();
                }
                if member.is_empty() {
                    member = b".".to_vec();
                }
                c.add(&mut out, status, Path::new(name), &member)
            }
        };
        if let Err(e) = result {
            return status.fatal(format!(
                "{}: Cannot write: {}",
                display_name(options),
                cli::io_message(&e)
            ));
        }
    }
    if let Err(e) = out.finish() {
        status.fatal(format!(
            "{}: Cannot write: {}",
            display_name(options),
            cli::io_message(&e)
        ));
    }
}

struct Creator<'a> {
    options: &'a Options,
    /// The archive itself, when it is a file.
    own: Option<same_file::Handle>,
    widths: Widths,
    to_stderr: bool,
}

/// What one member's header says.
struct Head<'a> {
    kind: u8,
    name: &'a [u8],
    link: &'a [u8],
    mode: u32,
    size: u64,
    mtime: u64,
}

impl Creator<'_> {
    /// Adds `path` as member `name`; `Err` only when writing the archive fails.
    fn add(
        &mut self,
        out: &mut Output,
        status: &mut Status,
        path: &Path,
        name: &[u8],
    ) -> io::Result<()> {
        let meta = match fs::symlink_metadata(path) {
            Ok(m) => m,
            Err(e) => {
                status.io_error(path.display(), "Cannot stat", &e);
                return Ok(());
            }
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_secs());
        let ft = meta.file_type();
        if ft.is_dir() {
            let mut dir_name = name.to_vec();
            if dir_name.last() != Some(&b'/') {
                dir_name.push(b'/');
            }
            let head = Head {
                kind: b'5',
                name: &dir_name,
                link: b"",
                mode: 0o755,
                size: 0,
                mtime,
            };
            self.header(out, &head)?;
            let children = match self.children(path) {
                Ok(c) => c,
                Err(e) => {
                    status.io_error(path.display(), "Cannot open", &e);
                    return Ok(());
                }
            };
            for child in children {
                let mut child_name = dir_name.clone();
                child_name.extend_from_slice(child.as_encoded_bytes());
                self.add(out, status, &path.join(&child), &child_name)?;
            }
        } else if ft.is_symlink() {
            let target = match fs::read_link(path) {
                Ok(t) => t,
                Err(e) => {
                    status.io_error(path.display(), "Cannot readlink", &e);
                    return Ok(());
                }
            };
            let head = Head {
                kind: b'2',
                name,
                link: target.as_os_str().as_encoded_bytes(),
                mode: 0o777,
                size: 0,
                mtime,
            };
            self.header(out, &head)?;
        } else if ft.is_file() {
            self.file(out, status, path, name, mtime)?;
        } else {
            status.warn_once(format!(
                "{}: file type not archived under WASI",
                path.display()
            ));
        }
        Ok(())
    }

    fn file(
        &mut self,
        out: &mut Output,
        status: &mut Status,
        path: &Path,
        name: &[u8],
        mtime: u64,
    ) -> io::Result<()> {
        // The archive itself is skipped (a warning, as GNU). Compared by path: WASI cannot
        // duplicate the open file's descriptor to ask it.
        if let Some(own) = &self.own
            && same_file::Handle::from_path(path).is_ok_and(|this| this == *own)
        {
            eprintln!("tar: {}: file is the archive; not dumped", path.display());
            return Ok(());
        }
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                status.io_error(path.display(), "Cannot open", &e);
                return Ok(());
            }
        };
        // The size is taken from the open file, so it cannot change between header and data.
        let size = match file.metadata() {
            Ok(m) => m.len(),
            Err(e) => {
                status.io_error(path.display(), "Cannot stat", &e);
                return Ok(());
            }
        };
        let head = Head {
            kind: b'0',
            name,
            link: b"",
            mode: 0o644,
            size,
            mtime,
        };
        self.header(out, &head)?;
        let copied = io::copy(&mut (&mut file).take(size), out)?;
        if copied < size {
            // The file shrank while being read: pad with zeros, as GNU does, and say so.
            status.error(format!(
                "{}: File shrank by {} bytes; padding with zeros",
                path.display(),
                size - copied
            ));
            io::copy(&mut io::repeat(0).take(size - copied), out)?;
        }
        pad(out, size)
    }

    /// The entries of a directory: in directory order, or by name with `--sort=name`.
    fn children(&self, path: &Path) -> io::Result<Vec<std::ffi::OsString>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(path)? {
            names.push(entry?.file_name());
        }
        if self.options.sort_name {
            names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        }
        Ok(names)
    }

    /// Writes `head` (after a long-name member when needed) and prints it with `-v`.
    fn header(&mut self, out: &mut Output, head: &Head<'_>) -> io::Result<()> {
        let o = self.options;
        if head.link.len() > 100 {
            long_name(out, b'K', head.link)?;
        }
        if head.name.len() > 100 {
            long_name(out, b'L', head.name)?;
        }
        let (user, group) = owners(o);
        let block = block(head, &user, &group);
        out.write_all(&block)?;
        if o.verbose > 0 {
            let line = if o.verbose > 1 {
                let m = Member {
                    kind: head.kind,
                    mode: head.mode,
                    user: shown(&user),
                    group: shown(&group),
                    size: head.size,
                    mtime: i64::try_from(head.mtime).unwrap_or(i64::MAX),
                    name: head.name,
                    link: (head.kind == b'2').then_some(head.link),
                };
                listing::line(&m, &mut self.widths)
            } else {
                head.name.to_vec()
            };
            if self.to_stderr {
                eprintln!("{}", show(&line));
            } else {
                let mut stdout = io::stdout().lock();
                let _ = stdout.write_all(&line);
                let _ = stdout.write_all(b"\n");
            }
        }
        Ok(())
    }
}

/// The owner and group recorded: `--owner`/`--group`, else 0 without a name.
fn owners(o: &Options) -> (Id, Id) {
    let none = Id {
        name: String::new(),
        number: 0,
    };
    let mut user = o.owner.clone().unwrap_or_else(|| none.clone());
    let mut group = o.group.clone().unwrap_or(none);
    if o.numeric_owner {
        user.name.clear();
        group.name.clear();
    }
    (user, group)
}

fn shown(id: &Id) -> String {
    if id.name.is_empty() {
        id.number.to_string()
    } else {
        id.name.clone()
    }
}

/// A GNU `././@LongLink` member carrying a long name (`L`) or link target (`K`).
fn long_name(out: &mut Output, kind: u8, name: &[u8]) -> io::Result<()> {
    let size = name.len() as u64 + 1;
    let head = Head {
        kind,
        name: b"././@LongLink",
        link: b"",
        mode: 0o644,
        size,
        mtime: 0,
    };
    let root = Id {
        name: "root".into(),
        number: 0,
    };
    out.write_all(&block(&head, &root, &root))?;
    out.write_all(name)?;
    out.write_all(&[0])?;
    pad(out, size)
}

/// Zeros to the end of the 512-byte block.
fn pad(out: &mut Output, size: u64) -> io::Result<()> {
    let rest = (512 - size % 512) % 512;
    // rest < 512
    out.write_all(&[0u8; 512][..rest as usize])
}

/// The 512-byte GNU header of `head`.
fn block(head: &Head<'_>, user: &Id, group: &Id) -> [u8; 512] {
    let mut b = [0u8; 512];
    let put = |b: &mut [u8; 512], at: usize, len: usize, bytes: &[u8]| {
        let n = bytes.len().min(len);
        b[at..at + n].copy_from_slice(&bytes[..n]);
    };
    put(&mut b, 0, 100, head.name);
    put(&mut b, 100, 8, &octal(u64::from(head.mode), 8));
    put(&mut b, 108, 8, &octal(user.number, 8));
    put(&mut b, 116, 8, &octal(group.number, 8));
    put(&mut b, 124, 12, &octal(head.size, 12));
    put(&mut b, 136, 12, &octal(head.mtime, 12));
    b[156] = head.kind;
    put(&mut b, 157, 100, head.link);
    put(&mut b, 257, 8, b"ustar  \0");
    put(&mut b, 265, 32, user.name.as_bytes());
    put(&mut b, 297, 32, group.name.as_bytes());
    let sum: u32 = b[..148].iter().map(|&x| u32::from(x)).sum::<u32>()
        + 8 * u32::from(b' ')
        + b[156..].iter().map(|&x| u32::from(x)).sum::<u32>();
    put(&mut b, 148, 8, format!("{sum:06o}\0 ").as_bytes());
    b
}

/// A zero-padded octal field of `len` bytes ending in NUL; GNU's base-256 form when too big.
fn octal(value: u64, len: usize) -> Vec<u8> {
    let digits = len - 1;
    let text = format!("{value:0digits$o}");
    if text.len() <= digits {
        let mut v = text.into_bytes();
        v.push(0);
        v
    } else {
        let mut v = vec![0u8; len];
        let mut x = value;
        for slot in v.iter_mut().rev() {
            *slot = (x & 0xff) as u8;
            x >>= 8;
        }
        v[0] |= 0x80;
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_fields_are_gnus() {
        assert_eq!(octal(0o644, 8), b"0000644\0");
        assert_eq!(octal(6, 12), b"00000000006\0");
        let big = octal(1 << 40, 12);
        assert_eq!(big[0], 0x80);
    }

    #[test]
    fn header_checksum_reads_back() {
        let head = Head {
            kind: b'0',
            name: b"a.txt",
            link: b"",
            mode: 0o644,
            size: 6,
            mtime: 1_704_164_645,
        };
        let root = Id {
            name: "root".into(),
            number: 0,
        };
        let b = block(&head, &root, &root);
        assert_eq!(&b[154..156], b"\0 ");
        let h = tar::Header::from_byte_slice(&b);
        assert_eq!(h.cksum().unwrap(), {
            let mut copy = b;
            copy[148..156].copy_from_slice(b"        ");
            copy.iter().map(|&x| u32::from(x)).sum::<u32>()
        });
        assert_eq!(h.size().unwrap(), 6);
    }
}
