//! A test that the top-level modules of `host/src` depend on each other one way only: it reads
//! the source text, collects the `crate::X` (and crate-root `super::X`) paths each module uses
//! outside test code, and fails when the resulting graph has a cycle, or when [`crate::policy`]
//! reaches above its layer. Test-only: nothing here is built into runbox.
//!
//! What it reads is text, not the compiler's view, so it ignores: comments (doc links included),
//! string and char literals, items under `#[cfg(test)]`/`#[cfg(all(test, ..))]` (an inline
//! `mod NAME { .. }` or a `mod NAME;` file), `lib.rs` itself, and `super::` inside inline
//! non-test modules (none today). A glob or macro that names a module without `crate::` in the
//! text is not seen either.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The modules `policy` may use: the layers below it.
const POLICY_MAY_USE: &[&str] = &["error", "limits", "outcome", "workspace"];

pub(crate) fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Source text without comments, string literals and char literals (each replaced by a space).
pub(crate) fn strip_comments_and_literals(text: &str) -> String {
    let b: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let next = b.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < b.len() && b[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == '/' && b.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == '*' && b.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r'
            && matches!(next, Some('"') | Some('#'))
            && (i == 0 || !(b[i - 1].is_alphanumeric() || b[i - 1] == '_'))
        {
            // A raw string: r"..", r#".."#, ...
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == '"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push(' ');
        } else if c == '"' {
            i += 1;
            while i < b.len() && b[i] != '"' {
                if b[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c == '\'' {
            // A char literal ('x', '\n', '\u{..}') or a lifetime ('a): only the former is skipped.
            if next == Some('\\') {
                i += 2;
                while i < b.len() && b[i] != '\'' {
                    i += 1;
                }
                i += 1;
                out.push(' ');
            } else if b.get(i + 2) == Some(&'\'') {
                i += 3;
                out.push(' ');
            } else {
                out.push(c);
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// Whether an attribute's text gates on `test` (and not on `not(test)`).
fn is_test_gate(attr: &str) -> bool {
    let attr: String = attr.chars().filter(|c| !c.is_whitespace()).collect();
    attr.starts_with("#[cfg(")
        && !attr.contains("not(test)")
        && (attr.contains("(test") || attr.contains(",test"))
}

/// `text` (already stripped) without test-gated inline modules, and the names of test-gated
/// `mod NAME;` declarations (whose files are then not read).
pub(crate) fn strip_test_items(text: &str) -> (String, Vec<String>) {
    let mut out = String::with_capacity(text.len());
    let mut test_files = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("#[cfg(") {
        out.push_str(&rest[..at]);
        let attr_end = rest[at..].find(']').map_or(rest.len(), |e| at + e + 1);
        let attr = &rest[at..attr_end];
        if !is_test_gate(attr) {
            out.push_str(attr);
            rest = &rest[attr_end..];
            continue;
        }
        let after = rest[attr_end..].trim_start();
        let item = after.strip_prefix("pub ").unwrap_or(after);
        let Some(m) = item.strip_prefix("mod ") else {
            // A gated `use`, fn or impl: drop up to the end of the item (`;` or its block).
            let start = rest.len() - after.len();
            rest = &rest[skip_item(rest, start)..];
            continue;
        };
        let name: String = m
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let start = rest.len() - after.len();
        let end = skip_item(rest, start);
        if rest[start..end].trim_end().ends_with(';') {
            test_files.push(name);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    (out, test_files)
}

/// The end of the item starting at `start`: just past its `;` or its balanced `{ .. }`.
fn skip_item(text: &str, start: usize) -> usize {
    let mut depth = 0usize;
    for (k, ch) in text[start..].char_indices() {
        match ch {
            ';' if depth == 0 => return start + k + 1,
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return start + k + 1;
                }
            }
            _ => {}
        }
    }
    text.len()
}

/// The top-level modules named by `crate::` paths in `text` (grouped `crate::{a, b}` too).
fn crate_paths(text: &str, out: &mut BTreeSet<String>) {
    for (at, _) in text.match_indices("crate::") {
        if at > 0 {
            let before = text[..at].chars().next_back().unwrap_or(' ');
            if before.is_alphanumeric() || before == '_' || before == '$' {
                continue;
            }
        }
        let rest = &text[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 0usize;
            let mut item_start = true;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if item_start && !c.is_whitespace() => {
                        item_start = false;
                        out.insert(ident(&group[k..]));
                    }
                    _ => {}
                }
            }
        } else {
            out.insert(ident(rest));
        }
    }
}

fn ident(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// The top-level modules named through `super::` chains that climb to the crate root from a
/// file at `depth` (1 for `X.rs` and `X/mod.rs`, 2 for `X/a.rs`, ...).
fn super_paths(text: &str, depth: usize, out: &mut BTreeSet<String>) {
    let needle = "super::".repeat(depth);
    for (at, _) in text.match_indices(&needle) {
        let rest = &text[at + needle.len()..];
        if rest.starts_with("super::") {
            continue;
        }
        let before = text[..at].chars().next_back().unwrap_or(' ');
        if before.is_alphanumeric() || before == '_' || before == ':' {
            continue;
        }
        out.insert(ident(rest));
    }
}

/// Reads one file of module `top` at `depth` and, unless test-only, the files it declares.
fn read_module_file(path: &Path, depth: usize, deps: &mut BTreeSet<String>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return;
    };
    let (text, test_files) = strip_test_items(&strip_comments_and_literals(&text));
    crate_paths(&text, deps);
    super_paths(&text, depth, deps);
    // Child files: `X.rs` → `X/*.rs`; `X/mod.rs` → `X/*.rs`.
    let name = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    let dir = if name == "mod" {
        path.parent().map(Path::to_path_buf)
    } else {
        path.parent().map(|p| p.join(name))
    };
    let Some(dir) = dir else { return };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    children.sort();
    for child in children {
        let stem = child
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_owned();
        if stem == "mod" || test_files.contains(&stem) {
            continue;
        }
        if child.extension().is_some_and(|e| e == "rs") {
            read_module_file(&child, depth + 1, deps);
        } else if child.is_dir() && !child.with_extension("rs").exists() {
            read_module_file(&child.join("mod.rs"), depth + 1, deps);
        }
    }
}

/// Top-level module → the top-level modules its non-test code uses.
fn module_graph() -> Graph {
    let src = src_dir();
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap_or_default();
    let (_, test_only) = strip_test_items(&strip_comments_and_literals(&lib));
    let mut tops = BTreeSet::new();
    for e in std::fs::read_dir(&src).into_iter().flatten().flatten() {
        let p = e.path();
        let stem = p
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("")
            .to_owned();
        let is_module = p.extension().is_some_and(|x| x == "rs") || p.join("mod.rs").exists();
        if is_module && stem != "lib" && stem != "main" && !test_only.contains(&stem) {
            tops.insert(stem);
        }
    }
    let mut graph = Graph::new();
    for top in &tops {
        let file = if src.join(format!("{top}.rs")).exists() {
            src.join(format!("{top}.rs"))
        } else {
            src.join(top).join("mod.rs")
        };
        let mut deps = BTreeSet::new();
        read_module_file(&file, 1, &mut deps);
        deps.retain(|d| d != top && tops.contains(d));
        graph.insert(top.clone(), deps);
    }
    graph
}

/// The strongly connected groups of more than one module (Tarjan).
fn cycles(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'a> {
        graph: &'a Graph,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        groups: Vec<Vec<String>>,
    }
    fn visit<'a>(s: &mut State<'a>, v: &'a str) {
        let n = s.index.len();
        s.index.insert(v, n);
        s.low.insert(v, n);
        s.stack.push(v);
        s.on_stack.insert(v);
        for w in s.graph.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let lw = s.low[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(lw));
            } else if s.on_stack.contains(w) {
                let iw = s.index[w];
                let lv = s.low[v];
                s.low.insert(v, lv.min(iw));
            }
        }
        if s.low[v] == s.index[v] {
            let mut group = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                group.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if group.len() > 1 {
                group.sort();
                s.groups.push(group);
            }
        }
    }
    let mut s = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        groups: Vec::new(),
    };
    for v in graph.keys() {
        if !s.index.contains_key(v.as_str()) {
            visit(&mut s, v);
        }
    }
    s.groups
}

fn render(graph: &Graph) -> String {
    graph
        .iter()
        .map(|(k, v)| {
            format!(
                "{k} -> {}",
                v.iter().cloned().collect::<Vec<_>>().join(", ")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn top_level_modules_form_no_cycle() {
    let graph = module_graph();
    assert!(graph.contains_key("policy") && graph.contains_key("workspace"));
    let groups = cycles(&graph);
    // Shown with --nocapture: the graph as it is.
    println!("{}", render(&graph));
    assert!(
        groups.is_empty(),
        "top-level modules that import each other in a cycle: {groups:?}\n{}",
        render(&graph)
    );
}

#[test]
fn policy_uses_only_the_layers_below_it() {
    let graph = module_graph();
    let above: Vec<&String> = graph["policy"]
        .iter()
        .filter(|d| !POLICY_MAY_USE.contains(&d.as_str()))
        .collect();
    assert!(
        above.is_empty(),
        "policy uses {above:?}\n{}",
        render(&graph)
    );
}

#[test]
fn the_scanner_sees_what_it_should() {
    let text = strip_comments_and_literals(
        "use crate::{a::X, b};\n// crate::c\nlet s = \"crate::d\"; let r = r#\"crate::e\"#;\n\
         fn f<'a>(x: &'a str) -> char { '\"' }\nuse crate::g;\n\
         #[cfg(test)]\nmod tests { use crate::h; }\n#[cfg(test)]\nmod more;\nuse super::i;\n",
    );
    let (text, test_files) = strip_test_items(&text);
    let mut deps = BTreeSet::new();
    crate_paths(&text, &mut deps);
    super_paths(&text, 1, &mut deps);
    assert_eq!(deps, BTreeSet::from(["a", "b", "g", "i"].map(String::from)));
    assert_eq!(test_files, ["more"]);
    let mut g = Graph::new();
    g.insert("x".into(), BTreeSet::from(["y".to_owned()]));
    g.insert("y".into(), BTreeSet::from(["x".to_owned()]));
    g.insert("z".into(), BTreeSet::from(["x".to_owned()]));
    assert_eq!(cycles(&g), [["x", "y"]]);
}
