//! The `shell` tool (issue #15 items 2–5): bash syntax interpreted by runbox, every command
//! checked against the allowlist before the script runs and again as it starts, streaming
//! pipelines, redirections inside the workspace, bounds, audit records.

use crate::support::*;
use serde_json::{Value, json};

fn sh(s: &mut Server, script: &str) -> Value {
    s.call("shell", json!({ "script": script }))
}

fn out(r: &Value) -> String {
    assert!(!is_error(r), "expected a result, got {r}");
    structured(r)["stdout"].as_str().unwrap().to_owned()
}

fn code(r: &Value) -> i64 {
    assert!(!is_error(r), "expected a result, got {r}");
    structured(r)["exitCode"].as_i64().unwrap()
}

/// The audit records of request `rid`, in the order written.
fn audit_records(env: &Env, rid: &str) -> Vec<Value> {
    let mut files: Vec<_> = std::fs::read_dir(&env.audit)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    files
        .iter()
        .flat_map(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .collect::<Vec<_>>()
        })
        .filter(|v| v["requestId"] == rid)
        .collect()
}

fn fixture() -> Env {
    let env = Env::new();
    env.file("a.txt", "one\ntwo\nthree\n");
    env.file("src/main.rs", "fn main() {} // TODO\n");
    env.file("src/lib.rs", "// TODO one\n// TODO two\npub fn f() {}\n");
    env.file("logs/x.log", "start\nend-x\n");
    env.file("logs/y.log", "start\nend-y\n");
    env
}

#[test]
fn the_issues_examples_run_as_bash_runs_them() {
    let env = fixture();
    let mut s = env.serve();
    assert_eq!(
        out(&sh(&mut s, "grep -rn TODO src | sort | head -20")),
        "src/lib.rs:1:// TODO one\nsrc/lib.rs:2:// TODO two\nsrc/main.rs:1:fn main() {} // TODO\n"
    );
    assert_eq!(
        out(&sh(&mut s, "wc -l src/*.rs")),
        " 3 src/lib.rs\n 1 src/main.rs\n 4 total\n"
    );
    assert_eq!(
        out(&sh(&mut s, "for f in logs/*.log; do tail -1 \"$f\"; done")),
        "end-x\nend-y\n"
    );
    assert_eq!(
        out(&sh(
            &mut s,
            "cat > notes.md <<'EOF'\n# $HOME\nbody\nEOF\ncat notes.md"
        )),
        "# $HOME\nbody\n"
    );
    assert_eq!(
        std::fs::read_to_string(env.ws.join("notes.md")).unwrap(),
        "# $HOME\nbody\n"
    );
    assert_eq!(out(&sh(&mut s, "cd src && ls")), "lib.rs\nmain.rs\n");
    assert_eq!(out(&sh(&mut s, "n=$(wc -l < a.txt); echo $n")), "3\n");
}

#[test]
fn control_flow_variables_and_expansions() {
    let env = fixture();
    let mut s = env.serve();
    let cases: &[(&str, &str)] = &[
        (
            "x=5; if [ $x -gt 3 ]; then echo big; else echo small; fi",
            "big\n",
        ),
        ("for i in 1 2 3; do echo -n $i; done; echo", "123\n"),
        (
            "i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo $i",
            "3\n",
        ),
        ("case foo.rs in *.txt) echo t;; *.rs) echo r;; esac", "r\n"),
        (
            "f() { local y=$1; echo \"<$y>\"; }; f 'a b'; echo \"[$y]\"",
            "<a b>\n[]\n",
        ),
        (
            "set -- a 'b c' d; echo $#; for a in \"$@\"; do echo \"$a\"; done",
            "3\na\nb c\nd\n",
        ),
        (
            "x=path/to/file.tar.gz; echo ${x##*/} ${x%%.*} ${x%.*} ${#x}",
            "file.tar.gz path/to/file path/to/file.tar 19\n",
        ),
        ("echo ${unset:-default} ${unset:+alt}x", "default x\n"),
        (
            "false || echo recovered; true && echo chained",
            "recovered\nchained\n",
        ),
        ("(cd src; echo in) ; pwd", "in\n/\n"),
        ("echo {a,b}{1,2}", "a1 a2 b1 b2\n"),
        ("printf '%s-%d\\n' x 3", "x-3\n"),
        ("echo \"$(echo nested $(echo deep))\"", "nested deep\n"),
        ("[[ abc == a* ]] && echo match", "match\n"),
        ("read a b <<< 'one two three'; echo \"$b\"", "two three\n"),
        (
            "while IFS= read -r line; do echo \"[$line]\"; done < a.txt",
            "[one]\n[two]\n[three]\n",
        ),
        ("echo '*.txt' *.txt \"*.txt\"", "*.txt a.txt *.txt\n"),
        ("echo nomatch*", "nomatch*\n"),
        ("seq 5 | head -2", "1\n2\n"),
        ("seq 1 100000000 | head -3", "1\n2\n3\n"),
        ("echo $((2**10 + 7 % 4))", "1027\n"),
        (
            "cat a.txt | while read l; do echo $l; done | tail -1",
            "three\n",
        ),
        ("echo err >&2; echo out", "out\n"),
        ("ls nonexistent 2>/dev/null; echo $?", "2\n"),
        ("echo a > f.txt; echo b >> f.txt; cat f.txt", "a\nb\n"),
    ];
    for (script, want) in cases {
        let r = sh(&mut s, script);
        assert_eq!(&out(&r), want, "script: {script}\nresult: {r}");
    }
}

#[test]
fn exit_status_set_e_and_pipefail() {
    let env = fixture();
    let mut s = env.serve();
    assert_eq!(code(&sh(&mut s, "exit 3")), 3);
    assert_eq!(code(&sh(&mut s, "false")), 1);
    let r = sh(&mut s, "set -e; echo a; false; echo b");
    assert_eq!((out(&r), code(&r)), ("a\n".into(), 1));
    let r = sh(&mut s, "set -o pipefail; false | true; echo $?");
    assert_eq!(out(&r), "1\n");
    assert_eq!(code(&sh(&mut s, "! true")), 1);
}

#[test]
fn a_command_outside_the_allowlist_refuses_the_whole_script_before_anything_runs() {
    let env = fixture();
    let mut s = env.serve();
    let r = sh(&mut s, "echo x > made.txt; curl http://example.com");
    assert_eq!(error_code(&r), "COMMAND_NOT_ALLOWED");
    let msg = structured(&r)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("curl") && msg.contains("at byte 19"), "{msg}");
    assert!(!env.ws.join("made.txt").exists(), "nothing ran");
    for script in [
        "eval ls",
        "bash -c ls",
        "echo $(python3 -c 1)",
        "ls &",
        "cat <(ls)",
        "source x.sh",
        "exec 3>f",
    ] {
        let r = sh(&mut s, script);
        assert!(is_error(&r), "{script}: {r}");
        let c = error_code(&r);
        assert!(
            c == "COMMAND_NOT_ALLOWED" || c == "INVALID_ARGUMENT",
            "{script}: {r}"
        );
    }
}

#[test]
fn a_command_made_at_run_time_is_judged_when_it_would_start() {
    let env = fixture();
    let mut s = env.serve();
    let r = sh(&mut s, "echo before; c=curl; $c http://x; echo after");
    assert_eq!(error_code(&r), "COMMAND_NOT_ALLOWED");
    let partial = &structured(&r)["error"]["partial"];
    assert_eq!(partial["stdout"], "before\n", "{r}");
}

#[test]
fn paths_stay_in_the_workspace() {
    let env = fixture();
    let mut s = env.serve();
    let r = sh(&mut s, "cd ..");
    assert_eq!(error_code(&r), "PATH_OUTSIDE_WORKSPACE");
    let r = sh(&mut s, "echo x > ../escape.txt");
    assert_eq!(error_code(&r), "PATH_OUTSIDE_WORKSPACE");
    assert!(!env.dir.path().join("escape.txt").exists());
    assert_eq!(
        out(&sh(&mut s, "cd /src && pwd && cd / && pwd")),
        "/src\n/\n"
    );
}

#[test]
fn bounds_stop_runaway_scripts() {
    let env = fixture();
    let mut s = env.serve();
    let r = sh(&mut s, "while true; do :; done");
    assert_eq!(error_code(&r), "SCRIPT_LIMIT", "{r}");
    let r = sh(&mut s, "f() { f; }; f");
    assert_eq!(error_code(&r), "SCRIPT_LIMIT", "{r}");
    let r = sh(&mut s, "echo {1..100000000}");
    assert_eq!(error_code(&r), "SCRIPT_LIMIT", "{r}");
    let r = s.call(
        "shell",
        json!({"script": "while true; do sleep 1; done", "timeout_ms": 1500}),
    );
    assert_eq!(error_code(&r), "TIMEOUT", "{r}");
}

#[test]
fn the_result_lists_the_commands_and_the_audit_log_records_the_script() {
    let env = fixture();
    let mut s = env.serve();
    let r = sh(&mut s, "echo hi | wc -c; ls nope");
    let st = structured(&r);
    let cmds = st["commands"].as_array().unwrap();
    let argv: Vec<&Value> = cmds.iter().map(|c| &c["argv"]).collect();
    assert_eq!(argv, [&json!(["wc", "-c"]), &json!(["ls", "nope"])], "{r}");
    assert_eq!(cmds[1]["exitCode"], 2);
    let rid = request_id(&r);
    drop(s);
    let mine = audit_records(&env, &rid);
    assert!(
        mine.iter()
            .any(|v| v["stage"] == "received" && v["script"].is_string()),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .any(|v| v["command"] == "wc" && v["stage"] == "completed"),
        "{mine:?}"
    );
    assert!(
        mine.iter()
            .any(|v| v["command"] == "ls" && v["stage"] == "completed"),
        "{mine:?}"
    );
}

#[test]
fn exported_variables_reach_commands_only_where_the_policy_allows_the_name() {
    let env = fixture();
    let mut s = env.serve();
    // TZ is a guest environment name the policy allows: export and a per-command assignment
    // both reach `date`.
    let r = sh(
        &mut s,
        "date -d @0 +%H; export TZ=UTC-3; date -d @0 +%H; TZ=UTC-5 date -d @0 +%H",
    );
    assert_eq!(out(&r), "00\n03\n05\n", "{r}");
    // A name outside the allowed set stays the script's own.
    let r = sh(
        &mut s,
        "export SECRET=x; echo \"[$SECRET]\"; jq -n 'env.SECRET'",
    );
    assert_eq!(out(&r), "[x]\nnull\n", "{r}");
}

/// The review's breaks (issue #15): each script aborted the server, grew it without bound or
/// wedged WASI for every call; now each is stopped by a bound and the server answers after it.
#[test]
fn the_reviews_breaks_are_stopped_by_bounds_and_the_server_survives() {
    let env = fixture();
    let mut s = env.serve();
    let alive = |s: &mut Server| assert_eq!(out(&sh(s, "echo ok")), "ok\n");
    let limited: &[&str] = &[
        // Deep recursion in the arithmetic parser (built at run time).
        "x=!; for i in 1 2 3 4 5 6 7 8 9 10 11 12; do x=$x$x; done; echo $(( ${x}1 ))",
        "x=1+; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do x=$x$x; done; (( ${x}1 ))",
        // A replacement whose result would be a terabyte.
        "x=a; for i in $(seq 1 20); do x=$x$x; done; y=${x//a/$x}",
        // A word of many megabytes from one small value.
        "x=a; for i in $(seq 1 20); do x=$x$x; done; echo \"$x$x$x$x$x$x$x$x\" > /dev/null",
        // A huge pattern.
        "x=a; for i in $(seq 1 20); do x=$x$x; done; case a in $x$x) echo m;; esac",
        // More WASI stages at once than the guest pool holds.
        "seq 1 1000000 | cat | cat | cat | cat | cat | cat | cat | wc -l",
    ];
    for script in limited {
        let r = s.call("shell", json!({ "script": script, "timeout_ms": 20000 }));
        assert_eq!(error_code(&r), "SCRIPT_LIMIT", "{script}: {r}");
        alive(&mut s);
    }
    // A `[[ ]]` thousands of operators deep is refused before it runs.
    let deep = format!("[[ {}a ]]", "! ".repeat(3000));
    assert_eq!(error_code(&sh(&mut s, &deep)), "SCRIPT_LIMIT");
    alive(&mut s);
    // `test` with thousands of arguments answers 2, as a malformed test.
    let r = sh(
        &mut s,
        "x=!; for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14; do x=\"$x $x\"; done; test $x a; echo $?",
    );
    assert_eq!(out(&r), "2\n", "{r}");
    alive(&mut s);
    // Eight WASI stages still run.
    assert_eq!(
        out(&sh(
            &mut s,
            "seq 1 1000 | cat | cat | cat | cat | cat | cat | wc -l"
        )),
        "1000\n"
    );
}

#[test]
fn the_reply_and_the_audit_stay_bounded_and_name_what_a_script_did() {
    let env = fixture();
    let mut s = env.serve();
    // 1000 commands of long arguments of control characters: the reply keeps a bounded list.
    let r = sh(
        &mut s,
        "w=$(printf '%0256d' 0); w=${w//0/$'\\x01'}; x=\"$w $w $w $w $w $w $w $w\"; for i in $(seq 1 1000); do dirname $x $x > /dev/null; done",
    );
    let text = r.to_string();
    assert!(text.len() < 4 << 20, "a reply of {} bytes", text.len());
    assert_eq!(structured(&r)["commandsStarted"], 1002, "{}", &text[..300]);
    // The script is kept whole in the log up to 8 KiB, so a long comment cannot hide what
    // follows it, and a command refused at run time has its own record with its argv.
    let padding = "# a harmless comment\n".repeat(20);
    let r = sh(
        &mut s,
        &format!("{padding}echo PWNED > inws.txt; c=id; $c /etc"),
    );
    assert_eq!(error_code(&r), "COMMAND_NOT_ALLOWED");
    let rid = request_id(&r);
    drop(s);
    let mine = audit_records(&env, &rid);
    let script = mine
        .iter()
        .find(|v| v["stage"] == "received" && v["script"].is_string())
        .expect("the script's received record");
    assert!(
        script["script"]
            .as_str()
            .unwrap()
            .contains("echo PWNED > inws.txt")
    );
    let refused = mine
        .iter()
        .find(|v| v["stage"] == "denied" && v["command"] == "id")
        .unwrap_or_else(|| panic!("no denied record of id: {mine:?}"));
    assert_eq!(refused["argv"], json!(["/etc"]));
}
