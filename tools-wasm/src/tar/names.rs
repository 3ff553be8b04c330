//! Member names, judged before anything touches the file system: GNU tar's stripping of leading
//! `/` and `..` prefixes, its refusal of member names containing `..`, `--strip-components`, and
//! runbox's own rule for symbolic link targets (a link may not lead outside the workspace).
//!
//! Pure functions on byte strings: no I/O, no printing. The callers print the warnings these
//! return, once per distinct prefix, as GNU does.

/// A member name made safe to extract beneath the current directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Extract here (a relative path of normal components; empty means the directory itself).
    /// `removed` is the prefix GNU warns about ("Removing leading `/' ..."), if any.
    Safe {
        path: Vec<u8>,
        removed: Option<Vec<u8>>,
    },
    /// The name contains a `..` component: GNU warns about the prefix, then skips the member
    /// ("Member name contains '..'").
    DotDot { removed: Vec<u8> },
}

/// The components of `name` split on `/`, without empty and `.` components.
fn components(name: &[u8]) -> Vec<&[u8]> {
    name.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect()
}

/// The prefix GNU's `safer_name_suffix` strips: leading slashes, and everything up to and
/// including the last `..` component (with its slash).
pub fn unsafe_prefix(name: &[u8]) -> usize {
    let mut cut = name.iter().take_while(|&&b| b == b'/').count();
    let mut start = 0;
    let mut i = 0;
    while i <= name.len() {
        if i == name.len() || name[i] == b'/' {
            if &name[start..i] == b".." {
                // Include the slashes after it.
                let mut end = i;
                while end < name.len() && name[end] == b'/' {
                    end += 1;
                }
                cut = cut.max(end);
            }
            start = i + 1;
        }
        i += 1;
    }
    cut
}

/// Judges a member name (or, with `link_target`, a hard link's target, which GNU strips and
/// uses instead of skipping).
pub fn judge(name: &[u8], link_target: bool) -> Verdict {
    let cut = unsafe_prefix(name);
    let removed = (cut > 0).then(|| name[..cut].to_vec());
    let has_dot_dot = components(name).contains(&&b".."[..]);
    if has_dot_dot && !link_target {
        return Verdict::DotDot {
            removed: removed.unwrap_or_default(),
        };
    }
    Verdict::Safe {
        path: join(&components(&name[cut..])),
        removed,
    }
}

fn join(parts: &[&[u8]]) -> Vec<u8> {
    parts.join(&b'/')
}

/// Drops the first `n` components of a member name as stored (GNU counts `.` and empty
/// components too, e.g. the `.` of `./a`); `None` when nothing is left.
pub fn strip_components(name: &[u8], n: usize) -> Option<Vec<u8>> {
    if n == 0 {
        return Some(name.to_vec());
    }
    let mut rest = name;
    for _ in 0..n {
        // Leading slashes belong to the first component.
        let skip = rest.iter().take_while(|&&b| b == b'/').count();
        rest = &rest[skip..];
        let end = rest.iter().position(|&b| b == b'/')?;
        rest = &rest[end + 1..];
    }
    let rest: &[u8] = {
        let skip = rest.iter().take_while(|&&b| b == b'/').count();
        &rest[skip..]
    };
    (!rest.is_empty()).then(|| rest.to_vec())
}

/// Whether a symbolic link at `link` (a safe relative member path) beneath a directory
/// `depth` levels below the workspace root, pointing at `target`, stays inside the workspace.
///
/// Refused: absolute targets (the host would resolve them outside), empty targets, and `..`
/// after a normal component (`a/..`: `a` may itself be a link, so the lexical answer is not the
/// real one). Accepted: leading `..` components that climb no higher than the workspace root,
/// then normal components.
pub fn link_stays_inside(link: &[u8], depth: usize, target: &[u8]) -> bool {
    if target.is_empty() || target.first() == Some(&b'/') {
        return false;
    }
    // The directory holding the link, counted from the workspace root.
    let link_parts = components(link);
    let mut room = depth + link_parts.len().saturating_sub(1);
    let mut seen_normal = false;
    for part in components(target) {
        if part == b".." {
            if seen_normal || room == 0 {
                return false;
            }
            room -= 1;
        } else {
            seen_normal = true;
        }
    }
    true
}

/// The depth of a guest directory below the workspace root, lexically (`/a/./b/../c` is 2).
pub fn depth_of(dir: &[u8]) -> usize {
    let mut depth = 0usize;
    for part in components(dir) {
        if part == b".." {
            depth = depth.saturating_sub(1);
        } else {
            depth += 1;
        }
    }
    depth
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safe(path: &str, removed: Option<&str>) -> Verdict {
        Verdict::Safe {
            path: path.as_bytes().to_vec(),
            removed: removed.map(|r| r.as_bytes().to_vec()),
        }
    }

    #[test]
    fn plain_names_pass() {
        assert_eq!(judge(b"a/b.txt", false), safe("a/b.txt", None));
        assert_eq!(judge(b"./a/./b/", false), safe("a/b", None));
        assert_eq!(judge(b"./", false), safe("", None));
    }

    #[test]
    fn absolute_names_lose_their_slashes() {
        assert_eq!(judge(b"/etc/passwd", false), safe("etc/passwd", Some("/")));
        assert_eq!(judge(b"//x", false), safe("x", Some("//")));
    }

    #[test]
    fn dot_dot_is_refused_with_gnus_prefix() {
        assert_eq!(
            judge(b"../evil", false),
            Verdict::DotDot {
                removed: b"../".to_vec()
            }
        );
        assert_eq!(
            judge(b"a/../../b", false),
            Verdict::DotDot {
                removed: b"a/../../".to_vec()
            }
        );
        assert_eq!(
            judge(b"a/..", false),
            Verdict::DotDot {
                removed: b"a/..".to_vec()
            }
        );
    }

    #[test]
    fn link_targets_are_stripped_not_refused() {
        assert_eq!(
            judge(b"../../etc/passwd", true),
            safe("etc/passwd", Some("../../"))
        );
        assert_eq!(judge(b"/etc/passwd", true), safe("etc/passwd", Some("/")));
    }

    #[test]
    fn strip_components_counts_dot() {
        assert_eq!(strip_components(b"./a/b", 1), Some(b"a/b".to_vec()));
        assert_eq!(strip_components(b"a/b/c", 2), Some(b"c".to_vec()));
        assert_eq!(strip_components(b"a/b/", 2), None);
        assert_eq!(strip_components(b"a", 1), None);
        assert_eq!(strip_components(b"a/", 1), None);
        assert_eq!(strip_components(b"a", 0), Some(b"a".to_vec()));
    }

    #[test]
    fn links_must_stay_inside() {
        assert!(link_stays_inside(b"l", 0, b"a.txt"));
        assert!(link_stays_inside(b"d/l", 0, b"../a.txt"));
        assert!(!link_stays_inside(b"l", 0, b"../a.txt"));
        assert!(link_stays_inside(b"l", 1, b"../a.txt"));
        assert!(!link_stays_inside(b"l", 0, b"/etc"));
        assert!(!link_stays_inside(b"d/l", 0, b"x/../../.."));
        assert!(!link_stays_inside(b"d/l", 5, b"x/.."));
        assert!(!link_stays_inside(b"l", 0, b""));
    }

    #[test]
    fn depth_is_lexical() {
        assert_eq!(depth_of(b"/"), 0);
        assert_eq!(depth_of(b"/a/./b/../c"), 2);
        assert_eq!(depth_of(b"/.."), 0);
    }
}
