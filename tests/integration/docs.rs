//! The README's client snippets work: each one is parsed, its command started with its own
//! arguments (paths substituted), and a tool is called through it.

use crate::support::*;
use serde_json::Value;
use std::path::Path;

const BIN_PLACEHOLDER: &str = "/abs/path/to/runbox";
const WS_PLACEHOLDER: &str = "/abs/path/to/project";

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

/// The fenced blocks of a language in the "Connecting a client" section.
fn blocks(lang: &str) -> Vec<String> {
    let text = readme();
    let section = text
        .split("## Connecting a client")
        .nth(1)
        .unwrap()
        .split("\n## ")
        .next()
        .unwrap()
        .to_owned();
    let fence = format!("```{lang}\n");
    section
        .split(&fence)
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .map(str::to_owned)
        .collect()
}

/// Starts the configured command (with placeholders replaced) and calls `run echo` through it.
fn exercise(command: &str, args: &[String], env: &Env) {
    assert_eq!(
        command, BIN_PLACEHOLDER,
        "snippets must use the documented placeholder"
    );
    let mut args: Vec<String> = args
        .iter()
        .map(|a| a.replace(WS_PLACEHOLDER, &env.ws.display().to_string()))
        .collect();
    assert_eq!(args.first().map(String::as_str), Some("serve"));
    args.remove(0);
    // Test-only additions: this suite runs as root, and keeps state out of the real home.
    args.extend([
        "--allow-root".into(),
        "--audit-dir".into(),
        env.audit.display().to_string(),
    ]);
    args.extend(["--cache-dir".into(), cache_dir().display().to_string()]);
    hand_over(env.dir.path());
    let mut s = Server::spawn(&args);
    s.initialize();
    let r = s.run("echo", &["from", "the", "readme"]);
    assert_eq!(structured(&r)["stdout"], "from the readme\n");
}

#[test]
fn json_client_configs_start_a_working_server() {
    let configs = blocks("json");
    assert!(
        configs.len() >= 2,
        "expected the mcpServers and VS Code snippets"
    );
    let mut shapes = Vec::new();
    for text in configs {
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("README JSON does not parse ({e}):\n{text}"));
        let (shape, server) = if let Some(s) = v.get("mcpServers") {
            ("mcpServers", &s["runbox"])
        } else if let Some(s) = v.get("servers") {
            assert_eq!(
                s["runbox"]["type"], "stdio",
                "VS Code entries need type stdio"
            );
            ("servers", &s["runbox"])
        } else {
            continue;
        };
        shapes.push(shape);
        let args: Vec<String> = serde_json::from_value(server["args"].clone()).unwrap();
        exercise(server["command"].as_str().unwrap(), &args, &Env::new());
    }
    shapes.sort();
    assert_eq!(shapes, ["mcpServers", "servers"]);
}

#[test]
fn claude_mcp_add_line_starts_a_working_server() {
    let line = blocks("sh")
        .into_iter()
        .flat_map(|b| b.lines().map(str::to_owned).collect::<Vec<_>>())
        .find(|l| l.starts_with("claude mcp add"))
        .expect("a `claude mcp add` snippet");
    let (head, tail) = line
        .split_once(" -- ")
        .expect("`--` before the server command");
    assert!(head.contains("--transport stdio"), "{head}");
    let mut words = tail.split_whitespace().map(str::to_owned);
    let command = words.next().unwrap();
    let args: Vec<String> = words.collect();
    exercise(&command, &args, &Env::new());
}

/// Every test docs/security.md cites as proof exists: `module::name` must be a `fn name` in
/// tests/integration/module.rs (`module::*` only needs the file), so the threat map cannot
/// silently point at tests that were renamed or removed.
#[test]
fn security_md_cites_only_tests_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("docs/security.md")).unwrap();
    let mut cited = 0;
    let mut missing = Vec::new();
    for span in text.split('`').skip(1).step_by(2) {
        let Some((module, name)) = span.split_once("::") else {
            continue;
        };
        if !module.chars().all(|c| c.is_ascii_lowercase() || c == '_')
            || !name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c == '_' || c == '*')
        {
            continue;
        }
        let file = root.join(format!("tests/integration/{module}.rs"));
        let Ok(source) = std::fs::read_to_string(&file) else {
            missing.push(format!("{span} (no {})", file.display()));
            continue;
        };
        cited += 1;
        if name != "*" && !source.contains(&format!("fn {name}()")) {
            missing.push(span.to_owned());
        }
    }
    assert!(
        cited > 40,
        "only {cited} tests cited; did the format change?"
    );
    assert!(
        missing.is_empty(),
        "docs/security.md cites missing tests: {missing:?}"
    );
}

/// The README's error-code table lists exactly the codes runbox has, in the same order, with the
/// same retryable flag: clients branch on these, so the table is part of the contract.
#[test]
fn readme_error_table_matches_the_error_codes() {
    let text = readme();
    let rows: Vec<(String, bool)> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("| `")?;
            let (code, rest) = rest.split_once("` |")?;
            if code.is_empty() || !code.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                return None;
            }
            let retryable = rest.trim_end().trim_end_matches('|').trim_end();
            let retryable = match retryable.rsplit('|').next()?.trim() {
                "yes" => true,
                "no" => false,
                _ => return None,
            };
            Some((code.to_owned(), retryable))
        })
        .collect();
    let codes: Vec<(String, bool)> = runbox::error::ErrorCode::ALL
        .iter()
        .map(|c| (c.as_str().to_owned(), c.retryable()))
        .collect();
    assert_eq!(rows, codes, "README's error table vs ErrorCode::ALL");
}

/// Every file docs/architecture.md names in backquotes (a path with a `/`, or a `.rs`/`.toml`
/// file name) exists: in the repository, or under `host/src` for module paths.
#[test]
fn architecture_md_names_only_files_that_exist() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let named: Vec<&str> = text
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|t| !t.contains(" ") && !t.contains("::") && !t.starts_with("//"))
        .filter(|t| t.contains('/') || t.ends_with(".rs") || t.ends_with(".toml"))
        .collect();
    assert!(named.len() > 20, "too few paths found: {named:?}");
    let missing: Vec<&&str> = named
        .iter()
        .filter(|p| {
            let p = p.trim_end_matches('/');
            !root.join(p).exists() && !root.join("host/src").join(p).exists()
        })
        .collect();
    assert!(
        missing.is_empty(),
        "named in docs/architecture.md but missing: {missing:?}"
    );
}
