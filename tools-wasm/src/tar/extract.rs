//! Reading an archive: `-t` (list) and `-x` (extract). Walks the members with the tar crate
//! (GNU long names and PAX headers resolved), selects them by the names given, prints GNU's
//! warnings and listing, and hands each member to [`place`] to be written.
//!
//! Must not write anything itself: every file-system effect of extraction is in [`place`].

use super::archive::{self, display_name};
use super::listing::{self, Member, Widths};
use super::names::{self, Verdict};
use super::options::Operand;
use super::place::Placer;
use super::{Mode, Options, Status, show};
use crate::cli::{self, Out};
use std::cell::Cell;
use std::io::{self, Read, Write};
use std::rc::Rc;

/// Runs `-t` or `-x`.
pub fn run(options: &Options, status: &mut Status) {
    // The archive is named relative to the starting directory, whatever `-C` says.
    let input = match archive::input(options) {
        Ok(r) => r,
        Err(message) => return status.fatal(message),
    };
    let mut wanted: Vec<(Vec<u8>, bool)> = Vec::new();
    for operand in &options.operands {
        match operand {
            Operand::Directory(dir) => {
                if let Err(e) = std::env::set_current_dir(dir) {
                    status.fatal(format!(
                        "{}: Cannot open: {}",
                        dir.to_string_lossy(),
                        cli::io_message(&e)
                    ));
                    return;
                }
            }
            Operand::Name(n) => wanted.push((trim_slashes(n.as_encoded_bytes()).to_vec(), false)),
        }
    }
    let progress = Rc::new(Progress::default());
    let mut counted = Counted {
        inner: input,
        progress: Rc::clone(&progress),
    };
    // Where the next header starts, from the last member read.
    let mut next_header = 0u64;
    let mut out = Out::new();
    let mut placer = Placer::new(options);
    let mut widths = Widths::default();
    let mut members = 0u64;
    {
        let mut tar = tar::Archive::new(&mut counted);
        let entries = match tar.entries() {
            Ok(e) => e,
            Err(e) => return status.fatal(format!("{}: {}", display_name(options), e)),
        };
        for entry in entries {
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    read_error(status, &e, &progress, members == 0, next_header);
                    break;
                }
            };
            members += 1;
            next_header = entry
                .raw_file_position()
                .saturating_add(entry.size().div_ceil(512) * 512);
            let name = entry.path_bytes().into_owned();
            if !wanted.is_empty() && !select(&mut wanted, &name) {
                continue;
            }
            let header = entry.header();
            let kind = header.entry_type().as_byte();
            let link = entry.link_name_bytes().map(|l| l.into_owned());
            match options.mode {
                Mode::List => {
                    warn_prefixes(status, &name, kind, link.as_deref());
                    let line = if options.verbose > 0 {
                        let m = member(&entry, &name, link.as_deref(), options.numeric_owner);
                        listing::line(&m, &mut widths)
                    } else {
                        name.clone()
                    };
                    let _ = out.write_all(&line);
                    let _ = out.write_all(b"\n");
                }
                Mode::Extract => extract_one(
                    options,
                    status,
                    &mut placer,
                    &mut out,
                    &mut entry,
                    &name,
                    link,
                ),
                Mode::Create => {}
            }
            if out.failed().is_some() {
                break;
            }
        }
    }
    if members == 0 && progress.bytes.get() == 0 && !status.fatal {
        status.error("This does not look like a tar archive");
    }
    placer.finish(status);
    if !out.finish("tar") {
        status.failed = true;
    }
    for (name, found) in &wanted {
        if !found {
            status.error(format!("{}: Not found in archive", show(name)));
        }
    }
}

fn extract_one(
    options: &Options,
    status: &mut Status,
    placer: &mut Placer,
    out: &mut Out,
    entry: &mut tar::Entry<'_, &mut Counted>,
    name: &[u8],
    link: Option<Vec<u8>>,
) {
    let kind = entry.header().entry_type().as_byte();
    let Some(stripped) = names::strip_components(name, options.strip) else {
        return;
    };
    let path = match names::judge(&stripped, false) {
        Verdict::DotDot { removed } => {
            status.warn_once(format!(
                "Removing leading `{}' from member names",
                show(&removed)
            ));
            status.error(format!("{}: Member name contains '..'", show(name)));
            return;
        }
        Verdict::Safe { path, removed } => {
            if let Some(r) = removed {
                status.warn_once(format!("Removing leading `{}' from member names", show(&r)));
            }
            path
        }
    };
    if options.verbose > 0 {
        // With -O the data goes to stdout, so the names go to stderr.
        // GNU names the member as the archive does, before --strip-components.
        if options.to_stdout {
            eprintln!("{}", show(name));
        } else {
            let _ = out.write_all(name);
            let _ = out.write_all(b"\n");
        }
    }
    let mtime = entry.header().mtime().unwrap_or(0);
    match kind {
        b'5' => placer.directory(status, &path, mtime),
        b'2' => {
            let target = link.unwrap_or_default();
            placer.symlink(status, &path, &target);
        }
        b'1' => {
            let target = link.unwrap_or_default();
            let Some(target) = names::strip_components(&target, options.strip) else {
                return;
            };
            let Verdict::Safe { path: t, removed } = names::judge(&target, true) else {
                return;
            };
            if let Some(r) = removed {
                status.warn_once(format!(
                    "Removing leading `{}' from hard link targets",
                    show(&r)
                ));
            }
            placer.hard_link(status, &path, &t);
        }
        b'3' | b'4' | b'6' => status.error(format!(
            "{}: Cannot mknod: Operation not supported (WASI cannot create special files)",
            show(name)
        )),
        _ if options.to_stdout => {
            if let Err(e) = io::copy(entry, out) {
                status.error(format!(
                    "{}: Read error: {}",
                    show(name),
                    cli::io_message(&e)
                ));
            }
        }
        _ => placer.file(status, &path, entry, mtime),
    }
}

/// GNU prints its "Removing leading" warnings while listing too.
fn warn_prefixes(status: &mut Status, name: &[u8], kind: u8, link: Option<&[u8]>) {
    let removed = match names::judge(name, false) {
        Verdict::Safe { removed, .. } => removed,
        Verdict::DotDot { removed } => Some(removed),
    };
    if let Some(r) = removed {
        status.warn_once(format!("Removing leading `{}' from member names", show(&r)));
    }
    if kind == b'1'
        && let Some(Verdict::Safe {
            removed: Some(r), ..
        }) = link.map(|l| names::judge(l, true))
    {
        status.warn_once(format!(
            "Removing leading `{}' from hard link targets",
            show(&r)
        ));
    }
}

fn member<'a, R: Read>(
    entry: &tar::Entry<'_, R>,
    name: &'a [u8],
    link: Option<&'a [u8]>,
    numeric: bool,
) -> Member<'a> {
    let h = entry.header();
    let kind = h.entry_type().as_byte();
    let text = |b: Option<&[u8]>| {
        b.filter(|b| !b.is_empty() && !numeric)
            .map(|b| String::from_utf8_lossy(b).into_owned())
    };
    Member {
        kind: if kind == 0 { b'0' } else { kind },
        mode: h.mode().unwrap_or(0),
        user: text(h.username_bytes()).unwrap_or_else(|| h.uid().unwrap_or(0).to_string()),
        group: text(h.groupname_bytes()).unwrap_or_else(|| h.gid().unwrap_or(0).to_string()),
        size: if kind == b'1' || kind == b'2' {
            0
        } else {
            entry.size()
        },
        mtime: h
            .mtime()
            .map_or(0, |t| i64::try_from(t).unwrap_or(i64::MAX)),
        name,
        link: link.map(|l| stripped_link(kind, l)),
    }
}

/// GNU lists a hard link's target after stripping its unsafe prefix.
fn stripped_link(kind: u8, link: &[u8]) -> &[u8] {
    if kind != b'1' {
        return link;
    }
    let Verdict::Safe {
        removed: Some(r), ..
    } = names::judge(link, true)
    else {
        return link;
    };
    &link[r.len().min(link.len())..]
}

/// GNU's verdicts on an archive that cannot be read on: a partial block where a header should
/// start ends the archive quietly (it is "not a tar archive" at the very start); a member whose
/// data is cut short is "Unexpected EOF"; anything else is garbage.
fn read_error(status: &mut Status, e: &io::Error, p: &Progress, first: bool, next_header: u64) {
    let read = p.bytes.get();
    if p.eof.get() && read < next_header {
        status.fatal("Unexpected EOF in archive");
    } else if first {
        status.error("This does not look like a tar archive");
    } else if p.eof.get() && read < next_header.saturating_add(512) {
        // A partial block where the next header would start: the end, as GNU reads it.
    } else {
        let _ = e;
        status.error("Skipping to next header");
    }
}

fn trim_slashes(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    &b[..end]
}

/// Whether `name` is one of the wanted names or inside one; marks it found.
fn select(wanted: &mut [(Vec<u8>, bool)], name: &[u8]) -> bool {
    let name = trim_slashes(name);
    let mut any = false;
    for (w, found) in wanted.iter_mut() {
        if name == w.as_slice() || (name.starts_with(w) && name.get(w.len()) == Some(&b'/')) {
            *found = true;
            any = true;
        }
    }
    any
}

/// How far the archive has been read, shared with the loop while the tar crate holds the reader.
#[derive(Default)]
struct Progress {
    bytes: Cell<u64>,
    eof: Cell<bool>,
}

/// Counts the bytes read, to tell an empty archive from an empty list and a cut header from a
/// cut member.
pub struct Counted {
    inner: Box<dyn Read>,
    progress: Rc<Progress>,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let p = &self.progress;
        p.bytes.set(p.bytes.get() + n as u64);
        if n == 0 && !buf.is_empty() {
            p.eof.set(true);
        }
        Ok(n)
    }
}
