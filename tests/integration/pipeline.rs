//! Pipelines without a shell: `run` with `pipeline: [{command, args}, ...]`.

use crate::support::*;
use serde_json::{Value, json};

fn stage(command: &str, args: &[&str]) -> Value {
    json!({"command": command, "args": args})
}

fn pipeline(s: &mut Server, stages: &[Value]) -> Value {
    s.call("run", json!({ "pipeline": stages }))
}

fn exit_codes(out: &Value) -> Vec<Value> {
    out["stages"]
        .as_array()
        .expect("stages")
        .iter()
        .map(|st| st["exitCode"].clone())
        .collect()
}

const WORDS: &str = "x apple\nx banana\ny cherry\nx apple\nx apple\nx banana\nx date\ny apple\n";

#[test]
fn cat_grep_sort_uniq_sort_head() {
    let env = Env::new();
    env.file("f", WORDS);
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[
            stage("cat", &["f"]),
            stage("grep", &["x"]),
            stage("sort", &[]),
            stage("uniq", &["-c"]),
            stage("sort", &["-rn"]),
            stage("head", &["-n", "2"]),
        ],
    );
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["stdout"], "      3 x apple\n      2 x banana\n");
    assert_eq!(out["exitCode"], 0);
    assert_eq!(exit_codes(out), vec![json!(0); 6]);
    let commands: Vec<&str> = out["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|st| st["command"].as_str().unwrap())
        .collect();
    assert_eq!(commands, ["cat", "grep", "sort", "uniq", "sort", "head"]);
    // What each stage wrote is what the next one read.
    assert_eq!(out["stages"][0]["stdoutBytes"], WORDS.len());
    assert_eq!(out["stages"][1]["stdoutBytes"], 49);
    assert_eq!(text_json(&r), *out);

    // One received record and one completed record per stage, all under the call's id.
    let records = env.records_of(&request_id(&r));
    assert_eq!(records.len(), 12, "{records:#?}");
    for (n, command) in commands.iter().enumerate() {
        let of_stage: Vec<&Value> = records
            .iter()
            .filter(|rec| rec["pipeline"]["stage"] == n + 1)
            .collect();
        let stages: Vec<&str> = of_stage
            .iter()
            .map(|rec| rec["stage"].as_str().unwrap())
            .collect();
        assert_eq!(stages, ["received", "completed"], "stage {}", n + 1);
        assert!(of_stage.iter().all(|rec| rec["pipeline"]["of"] == 6));
        assert!(of_stage.iter().all(|rec| rec["command"] == *command));
    }
}

#[test]
fn find_name_wc_l() {
    let env = Env::new();
    env.file("src/main.rs", "fn main() {}\n")
        .file("src/lib/mod.rs", "\n")
        .file("src/lib/util.rs", "\n")
        .file("src/README.md", "\n")
        .file("build.rs.txt", "\n");
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[stage("find", &[".", "-name", "*.rs"]), stage("wc", &["-l"])],
    );
    assert!(!is_error(&r), "{r}");
    assert_eq!(structured(&r)["stdout"], "3\n");
}

#[test]
fn stdin_feeds_the_first_stage_and_cwd_applies_to_all() {
    let env = Env::new();
    env.file("sub/a", "one\n");
    let mut s = env.serve();
    let r = s.call(
        "run",
        json!({
            "pipeline": [stage("sort", &[]), stage("uniq", &[])],
            "stdin": "b\na\nb\n",
        }),
    );
    assert_eq!(structured(&r)["stdout"], "a\nb\n", "{r}");
    let r = s.call(
        "run",
        json!({"pipeline": [stage("cat", &["a"]), stage("tr", &["a-z", "A-Z"])], "cwd": "sub"}),
    );
    assert_eq!(structured(&r)["stdout"], "ONE\n", "{r}");
}

#[test]
fn a_failing_stage_does_not_stop_the_pipeline_and_every_exit_code_is_reported() {
    let env = Env::new();
    env.file("f", WORDS);
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[
            stage("grep", &["nothing-matches", "f"]),
            stage("wc", &["-l"]),
        ],
    );
    let out = structured(&r);
    assert_eq!(out["stdout"], "0\n", "{r}");
    assert_eq!(out["exitCode"], 0);
    assert_eq!(exit_codes(out), [json!(1), json!(0)]);
    // The last stage's exit code is the call's, as in a shell.
    let r = pipeline(
        &mut s,
        &[stage("cat", &["f"]), stage("grep", &["nothing-matches"])],
    );
    assert_eq!(structured(&r)["exitCode"], 1, "{r}");
    assert_eq!(exit_codes(structured(&r)), [json!(0), json!(1)]);
}

#[test]
fn stderr_of_every_stage_is_kept_in_order() {
    let env = Env::new();
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[
            stage("cat", &["missing-1"]),
            stage("cat", &["-", "missing-2"]),
        ],
    );
    let stderr = structured(&r)["stderr"].as_str().unwrap().to_owned();
    let first = stderr.find("missing-1").expect("stage 1's message");
    let second = stderr.find("missing-2").expect("stage 2's message");
    assert!(first < second, "{stderr}");
}

#[test]
fn a_refused_stage_refuses_the_whole_pipeline_before_anything_runs() {
    let env = Env::new();
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[stage("touch", &["made"]), stage("sh", &["-c", "id"])],
    );
    assert_eq!(error_code(&r), "COMMAND_NOT_ALLOWED", "{r}");
    let message = structured(&r)["error"]["message"].as_str().unwrap();
    assert!(message.contains("stage 2 (sh)"), "{message}");
    assert!(!env.ws.join("made").exists(), "stage 1 ran");

    let records = env.records_of(&request_id(&r));
    let stages: Vec<(&str, &Value)> = records
        .iter()
        .map(|rec| (rec["stage"].as_str().unwrap(), &rec["pipeline"]["stage"]))
        .collect();
    assert_eq!(
        stages,
        [
            ("received", &json!(1)),
            ("received", &json!(2)),
            ("denied", &json!(1)),
            ("denied", &json!(2)),
        ]
    );
    assert_eq!(records[3]["policy"]["rule"], "allowlist");
    assert!(
        records[2]["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("not run: stage 2 (sh)"),
        "{:?}",
        records[2]
    );
}

#[test]
fn a_writer_in_a_pipeline_is_refused_under_a_read_only_policy() {
    let env = Env::new().with_config("workspace_writable = false\n");
    env.file("f", WORDS);
    let mut s = env.serve();
    let r = pipeline(&mut s, &[stage("cat", &["f"]), stage("tee", &["copy"])]);
    assert_eq!(error_code(&r), "READ_ONLY", "{r}");
    assert!(!env.ws.join("copy").exists());
}

#[test]
fn malformed_pipelines_are_invalid_arguments() {
    let env = Env::new();
    let mut s = env.serve();
    for (args, expect) in [
        (json!({"pipeline": [stage("ls", &[])]}), "2 to 8 stages"),
        (
            json!({"pipeline": vec![stage("true", &[]); 9]}),
            "2 to 8 stages",
        ),
        (
            json!({"command": "ls", "pipeline": [stage("ls", &[]), stage("wc", &[])]}),
            "not both",
        ),
        (
            json!({"args": ["-l"], "pipeline": [stage("ls", &[]), stage("wc", &[])]}),
            "each stage",
        ),
        (json!({"args": ["x"]}), "names no command"),
        (
            json!({"pipeline": [{"command": "ls", "shell": "x"}, stage("wc", &[])]}),
            "shell",
        ),
    ] {
        let r = s.call("run", args.clone());
        assert_eq!(error_code(&r), "INVALID_ARGUMENT", "{args}: {r}");
        let message = structured(&r)["error"]["message"].as_str().unwrap();
        assert!(message.contains(expect), "{args}: {message}");
        // Every refusal is in the audit log too.
        let records = env.records_of(&request_id(&r));
        assert_eq!(records.last().unwrap()["stage"], "denied", "{args}");
    }
}

#[test]
fn a_stage_writing_more_than_the_pipe_carries_stops_with_output_limit() {
    let env = Env::new().with_config("[limits]\nmax_stdin_bytes = 1000\n");
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[
            stage("seq", &["10000"]),
            stage("wc", &["-l"]),
            stage("cat", &[]),
        ],
    );
    assert_eq!(error_code(&r), "OUTPUT_LIMIT", "{r}");
    let err = &structured(&r)["error"];
    assert!(
        err["message"].as_str().unwrap().contains("stage 1 (seq)"),
        "{err}"
    );
    let stages = err["partial"]["stages"].as_array().expect("partial stages");
    assert_eq!(stages.len(), 3);
    assert_eq!(stages[0]["exitCode"], 0);
    assert_eq!(stages[0]["stdoutBytes"], 48_894);
    assert_eq!(stages[1]["error"], "OUTPUT_LIMIT");
    assert_eq!(stages[2]["error"], "OUTPUT_LIMIT");
    let ends: Vec<String> = env
        .records_of(&request_id(&r))
        .iter()
        .filter(|rec| rec["stage"] != "received")
        .map(|rec| rec["stage"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ends, ["completed", "failed", "failed"]);
}

#[test]
fn the_stages_share_one_deadline() {
    let env = Env::new();
    let mut s = env.serve();
    // Each stage alone fits in the timeout; both together do not.
    let r = s.call(
        "run",
        json!({"pipeline": [stage("sleep", &["2"]), stage("sleep", &["2"])], "timeout_ms": 3000}),
    );
    assert_eq!(error_code(&r), "TIMEOUT", "{r}");
    let err = &structured(&r)["error"];
    assert!(
        err["message"].as_str().unwrap().contains("stage 2 (sleep)"),
        "{err}"
    );
    let stages = err["partial"]["stages"].as_array().unwrap();
    assert_eq!(stages[0]["exitCode"], 0);
    assert_eq!(stages[1]["error"], "TIMEOUT");
}

#[test]
fn the_schema_offers_pipelines() {
    let env = Env::new();
    let mut s = env.serve();
    let r = s.request("tools/list", json!({}));
    let schema = &r["result"]["tools"][0]["inputSchema"];
    let p = &schema["properties"]["pipeline"];
    assert_eq!(p["type"], "array", "{schema}");
    assert_eq!(p["minItems"], 2);
    assert_eq!(p["maxItems"], 8);
    let items = match p["items"]["$ref"].as_str() {
        Some(r) => &schema["$defs"][r.trim_start_matches("#/$defs/")],
        None => &p["items"],
    };
    assert_eq!(items["required"], json!(["command"]), "{schema}");
    assert_eq!(items["additionalProperties"], false);
}
