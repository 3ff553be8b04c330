//! The line `tar -tv` prints for a member, as GNU tar 1.34 formats it: mode string, owner/group
//! (names, or numbers when the archive has none or `--numeric-owner`), size in a column that
//! only widens, `YYYY-MM-DD HH:MM` in UTC, the name, and `-> target` / `link to target`.
//!
//! Pure formatting: no I/O.

/// What the listing needs from a header.
pub struct Member<'a> {
    pub kind: u8,
    pub mode: u32,
    pub user: String,
    pub group: String,
    pub size: u64,
    pub mtime: i64,
    pub name: &'a [u8],
    pub link: Option<&'a [u8]>,
}

/// GNU's starting width of the owner/group/size field; it grows and stays grown.
pub struct Widths {
    ugs: usize,
}

impl Default for Widths {
    fn default() -> Self {
        Widths { ugs: 18 }
    }
}

/// The verbose line of `m` (without the newline).
pub fn line(m: &Member<'_>, widths: &mut Widths) -> Vec<u8> {
    let size = m.size.to_string();
    let pad = m.user.len() + 1 + m.group.len() + size.len();
    widths.ugs = widths.ugs.max(pad);
    let width = widths.ugs - pad + size.len();
    let mut out = format!(
        "{} {}/{} {:>width$} {} ",
        mode_string(m.kind, m.mode),
        m.user,
        m.group,
        size,
        timestamp(m.mtime)
    )
    .into_bytes();
    out.extend_from_slice(m.name);
    match (m.kind, m.link) {
        (b'2', Some(t)) => {
            out.extend_from_slice(b" -> ");
            out.extend_from_slice(t);
        }
        (b'1', Some(t)) => {
            out.extend_from_slice(b" link to ");
            out.extend_from_slice(t);
        }
        _ => {}
    }
    out
}

/// `drwxr-xr-x`, with GNU tar's type letters (`h` for a hard link).
pub fn mode_string(kind: u8, mode: u32) -> String {
    let t = match kind {
        b'1' => 'h',
        b'2' => 'l',
        b'3' => 'c',
        b'4' => 'b',
        b'5' => 'd',
        b'6' => 'p',
        b'7' => 'C',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    let special = |x: u32, special: u32, on: char, off: char, plain: char| match (
        mode & x != 0,
        mode & special != 0,
    ) {
        (true, true) => on,
        (false, true) => off,
        (true, false) => plain,
        (false, false) => '-',
    };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S', 'x'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S', 'x'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T', 'x'));
    s
}

/// `YYYY-MM-DD HH:MM` in UTC (the guest's only time zone).
pub fn timestamp(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's method).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    // d in 1..=31 and m in 1..=12 by construction.
    (if m <= 2 { y + 1 } else { y }, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gnu_columns() {
        let mut w = Widths::default();
        let m = Member {
            kind: b'5',
            mode: 0o755,
            user: "root".into(),
            group: "root".into(),
            size: 0,
            mtime: 1_704_164_645,
            name: b"d/",
            link: None,
        };
        assert_eq!(
            String::from_utf8(line(&m, &mut w)).unwrap(),
            "drwxr-xr-x root/root         0 2024-01-02 03:04 d/"
        );
        let m = Member {
            kind: b'1',
            user: "0".into(),
            group: "0".into(),
            mode: 0o644,
            name: b"h",
            link: Some(b"a"),
            ..m
        };
        assert_eq!(
            String::from_utf8(line(&m, &mut w)).unwrap(),
            "hrw-r--r-- 0/0               0 2024-01-02 03:04 h link to a"
        );
    }

    #[test]
    fn modes_and_dates() {
        assert_eq!(mode_string(b'0', 0o4755), "-rwsr-xr-x");
        assert_eq!(mode_string(b'5', 0o1777), "drwxrwxrwt");
        assert_eq!(mode_string(b'2', 0o777), "lrwxrwxrwx");
        assert_eq!(timestamp(0), "1970-01-01 00:00");
        assert_eq!(timestamp(951_782_400), "2000-02-29 00:00");
        assert_eq!(timestamp(-60), "1969-12-31 23:59");
    }
}
