//! The library's output in GNU's form: one-line ranges in normal output, `ctime(3)` times in
//! `-c` headers, and `--label` names in the headers of `-u` and `-c`. Text in, text out; only
//! [`ctime_headers`] reads the files' modification times.

use std::fs;
use std::path::Path;
use uucore::time::{FormatSystemTimeFallback, format_system_time};

/// GNU writes a one-line range as `N`, the library sometimes as `N,N` (`1,1d0`): collapse those
/// in the hunk headers of normal output (lines not starting with `<`, `>`, `-` or `\`).
pub fn collapse_ranges(text: Vec<u8>) -> Vec<u8> {
    fn range(r: &str) -> String {
        match r.split_once(',') {
            Some((a, b)) if a == b => a.to_owned(),
            _ => r.to_owned(),
        }
    }
    let mut out = Vec::with_capacity(text.len());
    for line in text.split_inclusive(|b| *b == b'\n') {
        let header = line.first().is_some_and(u8::is_ascii_digit);
        let parsed = std::str::from_utf8(line)
            .ok()
            .filter(|_| header)
            .and_then(|l| {
                let body = l.trim_end_matches('\n');
                let at = body.find(['a', 'c', 'd'])?;
                let (left, rest) = body.split_at(at);
                let (op, right) = rest.split_at(1);
                Some(format!("{}{op}{}\n", range(left), range(right)))
            });
        match parsed {
            Some(fixed) => out.extend_from_slice(fixed.as_bytes()),
            None => out.extend_from_slice(line),
        }
    }
    out
}

/// GNU's `-c` headers give times as `ctime(3)` does (`Tue Jan  2 03:04:05 2024`); the library
/// writes the `-u` format there too. Rewrites the text after the tab of the two header lines
/// from the files' modification times (standard input keeps the library's time).
pub fn ctime_headers(text: Vec<u8>, paths: [&Path; 2]) -> Vec<u8> {
    let mut lines = text.splitn(3, |b| *b == b'\n');
    let (Some(first), Some(second), Some(rest)) = (lines.next(), lines.next(), lines.next()) else {
        return text;
    };
    let mut out = Vec::with_capacity(text.len());
    for (line, path) in [first, second].into_iter().zip(paths) {
        let tab = line.iter().rposition(|b| *b == b'\t');
        let mut when = Vec::new();
        let formatted = path != Path::new("-")
            && fs::metadata(path)
                .and_then(|m| m.modified())
                .is_ok_and(|t| {
                    format_system_time(
                        &mut when,
                        t,
                        "%a %b %e %H:%M:%S %Y",
                        FormatSystemTimeFallback::Integer,
                    )
                    .is_ok()
                });
        match tab {
            Some(at) if formatted => {
                out.extend_from_slice(&line[..=at]);
                out.extend_from_slice(&when);
            }
            _ => out.extend_from_slice(line),
        }
        out.push(b'\n');
    }
    out.extend_from_slice(rest);
    out
}

/// Replaces the two header lines' names and times by `--label` values, as GNU does.
pub fn relabel(text: Vec<u8>, labels: &[String]) -> Vec<u8> {
    if labels.is_empty() || text.is_empty() {
        return text;
    }
    let mut lines = text.splitn(3, |b| *b == b'\n');
    let (Some(first), Some(second), rest) = (lines.next(), lines.next(), lines.next()) else {
        return text;
    };
    let mut out = Vec::with_capacity(text.len());
    for (i, line) in [first, second].into_iter().enumerate() {
        match labels.get(i) {
            Some(label) => {
                out.extend_from_slice(&line[..4.min(line.len())]);
                out.extend_from_slice(label.as_bytes());
            }
            None => out.extend_from_slice(line),
        }
        out.push(b'\n');
    }
    out.extend_from_slice(rest.unwrap_or_default());
    out
}

#[cfg(test)]
mod tests {
    use super::relabel;

    #[test]
    fn one_line_ranges_are_collapsed() {
        let text = b"1,1d0\n< only\n0a1,1\n> x\n2,3c2,2\n< a\n< 1,1d0\n---\n> b\n".to_vec();
        let out = super::collapse_ranges(text);
        assert_eq!(
            out,
            b"1d0\n< only\n0a1\n> x\n2,3c2\n< a\n< 1,1d0\n---\n> b\n"
        );
    }

    #[test]
    fn labels_replace_names_and_times() {
        let text = b"--- a\t2024\n+++ b\t2024\n@@ -1 +1 @@\n-x\n+y\n".to_vec();
        let out = relabel(text, &["L1".into(), "L2".into()]);
        assert_eq!(out, b"--- L1\n+++ L2\n@@ -1 +1 @@\n-x\n+y\n");
    }
}
