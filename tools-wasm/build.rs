//! Reads `commands.toml`, the single list of commands shared with the host, validates it and
//! writes `$OUT_DIR/manifest.rs` with the names in file order.
//!
//! The dispatcher (`src/registry.rs`) checks its own table against these names at compile time,
//! so a command that is dispatched but not listed, or listed but not dispatched, stops the build.
//! The parser here understands only the subset of TOML the manifest uses (`[[command]]` tables
//! of `key = "string"` lines and `#` comments); anything else is an error, never a guess.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo::rerun-if-changed=commands.toml");
    // An empty path must not mean the current directory (src/empty_path.rs).
    if env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("wasi") {
        println!("cargo::rustc-link-arg-bins=--wrap=__wasilibc_find_relpath");
        println!("cargo::rustc-link-arg-bins=--wrap=__wasilibc_find_relpath_alloc");
    }
    if let Err(message) = run() {
        println!("cargo::error=commands.toml: {message}");
    }
}

/// One `[[command]]` entry.
#[derive(Default)]
struct Entry {
    name: Option<String>,
    description: Option<String>,
    access: Option<String>,
    line: usize,
}

fn run() -> Result<(), String> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let text = fs::read_to_string(manifest_dir.join("commands.toml")).map_err(|e| e.to_string())?;
    let entries = parse(&text)?;
    let mut names: Vec<&str> = Vec::new();
    let mut out = String::from("/// Command names from `commands.toml`, in file order.\n");
    out.push_str("pub const NAMES: &[&str] = &[\n");
    for e in &entries {
        let line = e.line;
        let name = e
            .name
            .as_deref()
            .ok_or(format!("line {line}: missing `name`"))?;
        let description = e
            .description
            .as_deref()
            .ok_or(format!("line {line}: missing `description`"))?;
        let access = e
            .access
            .as_deref()
            .ok_or(format!("line {line}: missing `access`"))?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("line {line}: bad command name {name:?}"));
        }
        if names.contains(&name) {
            return Err(format!("line {line}: {name:?} is listed twice"));
        }
        if description.trim().is_empty() || description.contains('\n') {
            return Err(format!(
                "line {line}: {name}: description must be one non-empty line"
            ));
        }
        if access != "read" && access != "write" {
            return Err(format!(
                "line {line}: {name}: access must be \"read\" or \"write\""
            ));
        }
        names.push(name);
        let _ = writeln!(out, "    {name:?},");
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    fs::write(out_dir.join("manifest.rs"), out).map_err(|e| e.to_string())
}

fn parse(text: &str) -> Result<Vec<Entry>, String> {
    let mut entries: Vec<Entry> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        if content == "[[command]]" {
            entries.push(Entry {
                line,
                ..Entry::default()
            });
            continue;
        }
        let (key, value) = content
            .split_once('=')
            .ok_or(format!("line {line}: expected `key = \"value\"`"))?;
        let value = parse_string(value.trim()).ok_or(format!("line {line}: expected a string"))?;
        let entry = entries
            .last_mut()
            .ok_or(format!("line {line}: key outside a [[command]] table"))?;
        let slot = match key.trim() {
            "name" => &mut entry.name,
            "description" => &mut entry.description,
            "access" => &mut entry.access,
            other => return Err(format!("line {line}: unknown key `{other}`")),
        };
        if slot.replace(value).is_some() {
            return Err(format!("line {line}: key `{}` given twice", key.trim()));
        }
    }
    Ok(entries)
}

/// Drops a `#` comment that is not inside a string.
fn strip_comment(line: &str) -> &str {
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in line.char_indices() {
        match c {
            '\\' if in_string => escaped = !escaped,
            '"' if !escaped => in_string = !in_string,
            '#' if !in_string => return &line[..i],
            _ => escaped = false,
        }
        if c != '\\' {
            escaped = false;
        }
    }
    line
}

/// A basic TOML string (`"..."` with `\"` and `\\` escapes).
fn parse_string(value: &str) -> Option<String> {
    let inner = value.strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                '"' => out.push('"'),
                '\\' => out.push('\\'),
                _ => return None,
            },
            '"' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}
