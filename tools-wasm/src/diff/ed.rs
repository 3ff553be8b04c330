//! `diff -e` in GNU's form, built from the normal-format output of the library.
//!
//! The library writes its ed script first hunk first, with line numbers shifted by the edits
//! before them (`11,11d` then `11a`): a valid script, but not GNU's. GNU writes the hunks last
//! to first with the first file's own line numbers, so that each edit leaves the numbers of the
//! ones still to come untouched. Pure: text in, text out.

/// One hunk of normal output: its header (`2,3c`, `5d`, `7a`) and the new lines.
struct Hunk<'a> {
    command: String,
    added: Vec<&'a [u8]>,
}

/// Converts normal diff output (with one-line ranges already collapsed) into GNU's ed script.
pub fn from_normal(normal: &[u8]) -> Vec<u8> {
    let mut hunks: Vec<Hunk<'_>> = Vec::new();
    for line in normal.split_inclusive(|b| *b == b'\n') {
        if let Some(text) = line.strip_prefix(b"> ") {
            if let Some(h) = hunks.last_mut() {
                h.added.push(text);
            }
        } else if line.first().is_some_and(u8::is_ascii_digit) {
            let header = String::from_utf8_lossy(line);
            let header = header.trim_end();
            // "L[,L]xR[,R]": the ed command is the left range and the letter.
            if let Some(at) = header.find(['a', 'c', 'd']) {
                hunks.push(Hunk {
                    command: header[..=at].to_owned(),
                    added: Vec::new(),
                });
            }
        }
        // "< " lines, "---" and "\ No newline" markers carry nothing an ed script needs.
    }
    let mut out = Vec::new();
    for h in hunks.iter().rev() {
        out.extend_from_slice(h.command.as_bytes());
        out.push(b'\n');
        if h.command.ends_with('d') {
            continue;
        }
        // Where the next line goes, for resuming after a lone "." (see below).
        let first: usize = h
            .command
            .trim_end_matches(['a', 'c'])
            .split(',')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let base = if h.command.ends_with('a') {
            first
        } else {
            first.saturating_sub(1)
        };
        let mut inserting = true;
        for (i, text) in h.added.iter().enumerate() {
            if !inserting {
                out.extend_from_slice(format!("{}a\n", base + i).as_bytes());
                inserting = true;
            }
            let body = text.strip_suffix(b"\n").unwrap_or(text);
            if body == b"." {
                // A lone "." would end the insertion: write "..", end it, and strip one dot.
                out.extend_from_slice(b"..\n.\ns/.//\n");
                inserting = false;
            } else {
                out.extend_from_slice(body);
                out.push(b'\n');
            }
        }
        if inserting {
            out.extend_from_slice(b".\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::from_normal;

    #[test]
    fn hunks_last_to_first_with_original_numbers() {
        let normal = b"2c2\n< beta\n---\n> BETA\n11d10\n< lambda\n12a12\n> nu\n";
        assert_eq!(
            String::from_utf8_lossy(&from_normal(normal)),
            "12a\nnu\n.\n11d\n2c\nBETA\n.\n"
        );
    }

    #[test]
    fn ranges_and_lone_dots() {
        let normal = b"0a1,3\n> a\n> .\n> b\n4,5d6\n< x\n< y\n";
        assert_eq!(
            String::from_utf8_lossy(&from_normal(normal)),
            "4,5d\n0a\na\n..\n.\ns/.//\n2a\nb\n.\n"
        );
    }
}
