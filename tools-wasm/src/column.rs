//! `column`: util-linux 2.38 `column`. Without `-t` the input lines become entries laid out in
//! columns (down first, `-x` across first) to fit `-c` (80) columns, padded with tabs to
//! multiples of 8 as util-linux does; with `-t` each line is split into cells (on runs of
//! whitespace, or on each of the `-s` characters without merging) and printed as a table, cells
//! padded to their column's width and joined by `-o` (two spaces), the last column unpadded.
//! Empty lines are skipped (`-L` keeps them in a table). Exit 1 when a file cannot be read.
//!
//! Reads only the files it is given. The table options that need libsmartcols' other output
//! modes (`-J`, `-r`, `-W`, `-E`, `-H`, `-N`, …) are refused, not approximated.

use crate::cli::{self, Out};
use std::ffi::OsString;
use std::io::{self, BufRead, Write};

struct Options {
    table: bool,
    across: bool,
    width: usize,
    separators: Option<Vec<char>>,
    output_separator: String,
    keep_empty: bool,
    right: Vec<usize>,
    files: Vec<OsString>,
}

fn command() -> clap::Command {
    let mut cmd = cli::command("column", "Columnate lists.")
        .arg(cli::flag("table").short('t').long("table"))
        .arg(cli::flag("fillrows").short('x').long("fillrows"))
        .arg(cli::opt("output-width").short('c').long("output-width"))
        .arg(cli::opt("separator").short('s').long("separator"))
        .arg(
            cli::opt("output-separator")
                .short('o')
                .long("output-separator"),
        )
        .arg(
            cli::flag("table-empty-lines")
                .short('L')
                .long("table-empty-lines"),
        )
        .arg(cli::opt("table-right").short('R').long("table-right"))
        .arg(
            clap::Arg::new("files")
                .num_args(0..)
                .action(clap::ArgAction::Append)
                .value_parser(clap::value_parser!(OsString)),
        );
    for (id, short, long, value) in UNSUPPORTED {
        let arg = if *value { cli::opt(id) } else { cli::flag(id) };
        cmd = cmd.arg(arg.short(*short).long(*long));
    }
    cmd
}

/// util-linux options this front end refuses: (id, short, long, takes a value).
const UNSUPPORTED: &[(&str, char, &str, bool)] = &[
    ("json", 'J', "json", false),
    ("tree", 'r', "tree", true),
    ("tree-id", 'i', "tree-id", true),
    ("tree-parent", 'p', "tree-parent", true),
    ("table-wrap", 'W', "table-wrap", true),
    ("table-noextreme", 'E', "table-noextreme", true),
    ("table-hide", 'H', "table-hide", true),
    ("table-columns", 'N', "table-columns", true),
    ("table-order", 'O', "table-order", true),
    ("table-truncate", 'T', "table-truncate", true),
    ("table-noheadings", 'd', "table-noheadings", false),
    ("table-name", 'n', "table-name", true),
    ("table-columns-limit", 'l', "table-columns-limit", true),
    ("keep-empty-lines", 'e', "keep-empty-lines", false),
];

fn parse(args: Vec<OsString>) -> Result<Options, i32> {
    let m = cli::parse(command(), args, 1)?;
    if let Some((_, short, long, _)) = UNSUPPORTED.iter().find(|(id, _, _, value)| {
        if *value {
            m.contains_id(id)
        } else {
            m.get_flag(id)
        }
    }) {
        cli::error(
            "column",
            format!("-{short}/--{long} is not supported by runbox's column"),
        );
        return Err(1);
    }
    let width = match cli::last_str(&m, "output-width") {
        None => 80,
        Some(w) => match w.parse::<usize>() {
            Ok(v) => v,
            Err(_) => {
                cli::error("column", format!("invalid columns argument: '{w}'"));
                return Err(1);
            }
        },
    };
    let mut right = Vec::new();
    if let Some(list) = cli::last_str(&m, "table-right") {
        for item in list.split(',') {
            match item.parse::<usize>() {
                Ok(n) if n > 0 => right.push(n - 1),
                _ => {
                    cli::error(
                        "column",
                        format!("-R takes column numbers in runbox's column, not '{item}'"),
                    );
                    return Err(1);
                }
            }
        }
    }
    Ok(Options {
        table: m.get_flag("table"),
        across: m.get_flag("fillrows"),
        width,
        separators: cli::last_str(&m, "separator").map(|s| s.chars().collect()),
        output_separator: cli::last_str(&m, "output-separator").unwrap_or_else(|| "  ".into()),
        keep_empty: m.get_flag("table-empty-lines"),
        right,
        files: cli::all_os(&m, "files"),
    })
}

/// `column`.
pub fn main(args: Vec<OsString>) -> i32 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let mut lines: Vec<String> = Vec::new();
    let mut code = 0;
    if o.files.is_empty()
        && let Err(e) = read(&mut io::stdin().lock(), &mut lines)
    {
        cli::error("column", cli::io_message(&e));
        code = 1;
    }
    for f in &o.files {
        let result =
            std::fs::File::open(f).and_then(|file| read(&mut io::BufReader::new(file), &mut lines));
        if let Err(e) = result {
            cli::io_error("column", std::path::Path::new(f), &e);
            code = 1;
        }
    }
    let mut out = Out::new();
    if o.table {
        table(&o, &lines, &mut out);
    } else {
        let entries: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| !l.is_empty())
            .collect();
        fill(&o, &entries, &mut out);
    }
    if !out.finish("column") {
        return 1;
    }
    code
}

fn read(input: &mut impl BufRead, lines: &mut Vec<String>) -> io::Result<()> {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            return Ok(());
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        lines.push(String::from_utf8_lossy(&buf).into_owned());
    }
}

fn width(s: &str) -> usize {
    s.chars().count()
}

/// The list modes: util-linux's `columnate_fillcols` / `columnate_fillrows`.
fn fill(o: &Options, entries: &[&str], out: &mut Out) {
    if entries.is_empty() {
        return;
    }
    let longest = entries.iter().map(|e| width(e)).max().unwrap_or(0);
    let max = (longest + 8) & !7;
    if max >= o.width {
        for e in entries {
            let _ = writeln!(out, "{e}");
        }
        return;
    }
    let numcols = (o.width / max).max(1);
    let tabs_to = |out: &mut Out, chcnt: &mut usize, endcol: usize| {
        loop {
            let next = (*chcnt + 8) & !7;
            if next > endcol {
                break;
            }
            let _ = out.write_all(b"\t");
            *chcnt = next;
        }
    };
    if o.across {
        let (mut chcnt, mut col, mut endcol) = (0usize, 0usize, max);
        for (i, e) in entries.iter().enumerate() {
            let _ = out.write_all(e.as_bytes());
            chcnt += width(e);
            if i + 1 == entries.len() {
                break;
            }
            col += 1;
            if col == numcols {
                chcnt = 0;
                col = 0;
                endcol = max;
                let _ = out.write_all(b"\n");
            } else {
                tabs_to(out, &mut chcnt, endcol);
                endcol += max;
            }
        }
        if chcnt > 0 {
            let _ = out.write_all(b"\n");
        }
        return;
    }
    let numrows = entries.len().div_ceil(numcols);
    for row in 0..numrows {
        let (mut chcnt, mut endcol, mut base) = (0usize, max, row);
        for _ in 0..numcols {
            let e = entries[base];
            let _ = out.write_all(e.as_bytes());
            chcnt += width(e);
            base += numrows;
            if base >= entries.len() {
                break;
            }
            tabs_to(out, &mut chcnt, endcol);
            endcol += max;
        }
        let _ = out.write_all(b"\n");
    }
}

/// Splits a line into cells: runs of whitespace, or each separator character (no merging).
fn cells<'a>(o: &Options, line: &'a str) -> Vec<&'a str> {
    match &o.separators {
        None => line.split_whitespace().collect(),
        Some(seps) => line.split(|c| seps.contains(&c)).collect(),
    }
}

/// `-t`: every row gets every column; cells padded to the column's width except in the last
/// column; `-R` columns are padded on the left.
fn table(o: &Options, lines: &[String], out: &mut Out) {
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .filter(|l| o.keep_empty || !l.is_empty())
        .map(|l| cells(o, l))
        .collect();
    let ncols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; ncols];
    for row in &rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(width(c));
        }
    }
    for row in &rows {
        let mut line = String::new();
        for (i, w) in widths.iter().enumerate() {
            let cell = row.get(i).copied().unwrap_or("");
            let pad = w - width(cell);
            let last = i + 1 == ncols;
            if o.right.contains(&i) {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if !last {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            if !last {
                line.push_str(&o.output_separator);
            }
        }
        let _ = writeln!(out, "{line}");
    }
}
