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
fn a_stage_writing_more_than_a_pipe_holds_streams_through_it() {
    // Once the size a stage could hand on (stopped with OUTPUT_LIMIT); now stages stream.
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
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["stdout"], "10000\n");
    assert_eq!(exit_codes(out), [json!(0), json!(0), json!(0)]);
    assert_eq!(out["stages"][0]["stdoutBytes"], 48_894);
    let ends: Vec<Value> = env
        .records_of(&request_id(&r))
        .into_iter()
        .filter(|rec| rec["stage"] != "received")
        .collect();
    assert!(
        ends.iter().all(|rec| rec["stage"] == "completed"),
        "{ends:#?}"
    );
    let seq = ends.iter().find(|rec| rec["command"] == "seq").unwrap();
    assert_eq!(seq["result"]["stdout"]["bytes"], 48_894);
    assert_eq!(
        seq["result"]["stdout"]["truncated"], false,
        "what a stage hands on is not cut"
    );
}

#[test]
fn the_stages_share_one_deadline() {
    let env = Env::new();
    let mut s = env.serve();
    // Both stages run at once: each alone fits in the timeout and so do both together (one
    // after the other they would not)...
    let r = s.call(
        "run",
        json!({"pipeline": [stage("sleep", &["2"]), stage("sleep", &["2"])], "timeout_ms": 3000}),
    );
    assert!(!is_error(&r), "{r}");
    // ...and one deadline stops both.
    let r = s.call(
        "run",
        json!({"pipeline": [stage("sleep", &["30"]), stage("sleep", &["30"])], "timeout_ms": 1000}),
    );
    assert_eq!(error_code(&r), "TIMEOUT", "{r}");
    let err = &structured(&r)["error"];
    let stages = err["partial"]["stages"].as_array().unwrap();
    assert_eq!(stages[0]["error"], "TIMEOUT");
    assert_eq!(stages[1]["error"], "TIMEOUT");
    assert!(err["partial"]["durationMs"].as_u64().unwrap() < 30_000);
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

/// Writes `size` bytes of numbered lines (`line 1\n`, `line 2\n`, ...) to `ws/rel`, as a
/// stream (never the whole file in memory); returns the exact size written.
fn numbered_file(env: &Env, rel: &str, size: u64) -> u64 {
    use std::io::Write;
    let f = std::fs::File::create(env.ws.join(rel)).unwrap();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    let mut written = 0u64;
    let mut n = 1u64;
    while written < size {
        let line = format!("line {n}\n");
        w.write_all(line.as_bytes()).unwrap();
        written += line.len() as u64;
        n += 1;
    }
    w.flush().unwrap();
    written
}

#[test]
fn an_endless_writer_into_head_2_ends_with_heads_output_and_sigpipe_for_the_writer() {
    // `yes | head -2` of the issue; runbox has no `yes`, `seq inf` is as endless.
    let env = Env::new();
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[stage("seq", &["inf"]), stage("head", &["-n", "2"])],
    );
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["stdout"], "1\n2\n");
    // bash: PIPESTATUS 141 0. No "Broken pipe" message, as from a process SIGPIPE killed.
    assert_eq!(exit_codes(out), [json!(141), json!(0)]);
    assert_eq!(out["exitCode"], 0);
    assert_eq!(out["stderr"], "", "{out}");
}

#[test]
fn seq_to_a_hundred_million_into_head_3_ends_at_once() {
    let env = Env::new();
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[stage("seq", &["1", "100000000"]), stage("head", &["-3"])],
    );
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["stdout"], "1\n2\n3\n");
    assert_eq!(exit_codes(out), [json!(141), json!(0)]);
    // Bound by the result, not the clock: seq wrote a pipe's worth or so, not 889 MB.
    let handed_on = out["stages"][0]["stdoutBytes"].as_u64().unwrap();
    assert!(handed_on < 4 << 20, "seq wrote {handed_on} bytes");
}

#[test]
fn cat_of_a_200_mb_file_into_head_1_reads_a_little_of_it() {
    let env = Env::new();
    let size = numbered_file(&env, "big", 200 << 20);
    let mut s = env.serve();
    let r = pipeline(&mut s, &[stage("cat", &["big"]), stage("head", &["-1"])]);
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["stdout"], "line 1\n");
    assert_eq!(exit_codes(out), [json!(141), json!(0)]);
    let handed_on = out["stages"][0]["stdoutBytes"].as_u64().unwrap();
    assert!(
        handed_on < 4 << 20,
        "cat handed on {handed_on} of {size} bytes: it did not stop at the broken pipe"
    );
}

#[test]
fn eight_stages_stream_50_mb_in_bounded_server_memory() {
    let env = Env::new();
    let size = numbered_file(&env, "f", 50 << 20);
    let mut s = env.serve();
    // Every module the big pipeline uses is ready, so the peak below is the streaming's.
    let warm = pipeline(&mut s, &[stage("cat", &[]), stage("wc", &["-c"])]);
    assert!(!is_error(&warm), "{warm}");
    let before = s.peak_rss_kib();
    let mut stages = vec![stage("cat", &["f"])];
    stages.extend(std::iter::repeat_n(stage("cat", &[]), 6));
    stages.push(stage("wc", &["-c"]));
    let r = s.call("run", json!({"pipeline": stages, "timeout_ms": 120_000}));
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["stdout"], format!("{size}\n"));
    assert_eq!(exit_codes(out), vec![json!(0); 8]);
    for st in &out["stages"].as_array().unwrap()[..7] {
        assert_eq!(st["stdoutBytes"], size, "{st}");
    }
    let grown_kib = s.peak_rss_kib().saturating_sub(before);
    eprintln!("peak RSS {before} KiB before, grown by {grown_kib} KiB");
    // Holding the data even once would be 51,200 KiB; eight stages at once, 409,600 KiB.
    assert!(
        grown_kib < 16 * 1024,
        "the server's peak RSS grew by {grown_kib} KiB streaming {size} bytes through 8 stages"
    );
}

#[test]
fn a_client_cancellation_mid_stream_stops_every_stage() {
    let env = Env::new();
    let mut s = env.serve();
    let id = s.send_request(
        "tools/call",
        json!({"name": "run", "arguments": {"pipeline": [stage("seq", &["inf"]), stage("wc", &["-l"])]}}),
    );
    // The pipeline is streaming when a later call gets its answer (one slot each).
    let r = s.run("echo", &["started"]);
    assert_eq!(structured(&r)["exitCode"], 0);
    // Give `seq` time to have written (the check below wants output from it); under a loaded
    // machine the echo alone was not always enough.
    std::thread::sleep(std::time::Duration::from_secs(1));
    s.notify(
        "notifications/cancelled",
        json!({"requestId": id, "reason": "test"}),
    );
    let seq = env.wait_for_record("the end of seq", |r| {
        r["command"] == "seq" && r["stage"] != "received"
    });
    let wc = env.wait_for_record("the end of wc", |r| {
        r["command"] == "wc" && r["stage"] != "received"
    });
    for rec in [&seq, &wc] {
        assert_eq!(rec["stage"], "failed", "{rec}");
        assert_eq!(rec["error"]["code"], "CANCELLED", "{rec}");
        // Both were running (streaming), not one running and one waiting its turn.
        assert!(rec["result"]["durationMs"].as_u64().is_some(), "{rec}");
    }
    assert!(wc["result"]["stdout"]["bytes"].as_u64().is_some(), "{wc}");
    assert!(
        seq["result"]["stdout"]["bytes"].as_u64().unwrap() > 0,
        "{seq}"
    );
    let r = s.run("echo", &["after"]);
    assert_eq!(structured(&r)["stdout"], "after\n");
    assert!(
        !s.pending_ids().contains(&id),
        "a result was sent for a cancelled request"
    );
}

/// Native `sh` next to the WASI built-ins, or `None` (printing why) when the kernel cannot
/// confine it here.
fn native_env(name: &str) -> Option<Env> {
    if let Some(why) = crate::native::confinement_missing() {
        eprintln!("SKIPPED {name}: native confinement is incomplete here:\n{why}");
        return None;
    }
    Some(crate::native::native_env(""))
}

#[test]
fn a_native_writer_into_a_reader_that_stops_is_ended_as_by_sigpipe() {
    let Some(env) = native_env("a_native_writer_into_a_reader_that_stops_is_ended_as_by_sigpipe")
    else {
        return;
    };
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[
            stage("sh", &["-c", "while :; do echo y; done"]),
            stage("head", &["-n", "2"]),
        ],
    );
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    assert_eq!(out["stdout"], "y\ny\n");
    assert_eq!(exit_codes(out), [json!(141), json!(0)]);
    assert_eq!(
        out["stderr"], "",
        "no I/O error or Broken pipe noise: {out}"
    );
}

#[test]
fn a_native_stage_in_the_middle_streams() {
    let Some(env) = native_env("a_native_stage_in_the_middle_streams") else {
        return;
    };
    let mut s = env.serve();
    let r = pipeline(
        &mut s,
        &[
            stage("seq", &["100000"]),
            stage("sh", &["-c", "exec tr 7 x"]),
            stage("grep", &["-c", "x"]),
        ],
    );
    assert!(!is_error(&r), "{r}");
    let out = structured(&r);
    // 100000 - 9^5 (numbers below 100000 without a 7) - 0 (100000 has none) = 40951.
    assert_eq!(out["stdout"], "40951\n", "{out}");
    assert_eq!(exit_codes(out), vec![json!(0); 3]);
    assert_eq!(out["stages"][1]["runner"], "native");
    // A native reader that stops early ends its WASI writer with 141, as a shell does.
    let r = pipeline(
        &mut s,
        &[
            stage("seq", &["inf"]),
            stage("sh", &["-c", "exec head -n 1"]),
        ],
    );
    let out = structured(&r);
    assert_eq!(out["stdout"], "1\n", "{r}");
    assert_eq!(exit_codes(out), [json!(141), json!(0)]);
}

#[test]
fn a_timeout_mid_stream_stops_native_and_wasi_stages_both_ways() {
    let Some(env) = native_env("a_timeout_mid_stream_stops_native_and_wasi_stages_both_ways")
    else {
        return;
    };
    let mut s = env.serve();
    let marker = "while :; do echo; done # timeout-mid-stream";
    for stages in [
        // A native writer that never ends into a WASI reader that never ends...
        vec![stage("sh", &["-c", marker]), stage("wc", &["-l"])],
        // ...and a WASI writer into a native reader.
        vec![
            stage("seq", &["inf"]),
            stage(
                "sh",
                &["-c", "while read x; do :; done # timeout-mid-stream"],
            ),
        ],
    ] {
        let r = s.call("run", json!({"pipeline": stages, "timeout_ms": 1500}));
        assert_eq!(error_code(&r), "TIMEOUT", "{r}");
        let partial = &structured(&r)["error"]["partial"];
        for st in partial["stages"].as_array().unwrap() {
            assert_eq!(st["error"], "TIMEOUT", "{partial}");
            // Every stage ran until the one deadline (none waited for another to end).
            assert!(st["durationMs"].as_u64().unwrap() >= 1000, "{partial}");
        }
        assert!(
            partial["stages"][0]["stdoutBytes"].as_u64().unwrap() > 0,
            "it was streaming: {partial}"
        );
        assert!(
            crate::native::pids_with("timeout-mid-stream").is_empty(),
            "a native stage outlived its call"
        );
    }
}

/// Found by review: all the WASI stages of every call share the guest instance pool, and a
/// stage that found it full failed at once with COMMAND_FAILED — one 8-stage pipeline made
/// every other WASI call fail. A call now waits until its stages' instances are free.
#[test]
fn a_full_guest_pool_makes_calls_wait_never_fail() {
    let env = Env::new();
    let mut s = env.serve();
    let mut stages = vec![stage("sleep", &["2"])];
    stages.extend((0..7).map(|_| stage("cat", &[])));
    let call = |id: u32, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
               "params": {"name": "run", "arguments": arguments}})
        .to_string()
    };
    s.send_raw(call(101, json!({ "pipeline": stages })).as_bytes());
    std::thread::sleep(std::time::Duration::from_millis(500));
    s.send_raw(call(102, json!({"command": "echo", "args": ["waited"]})).as_bytes());
    let mut replies: Vec<Value> = (0..2).map(|_| s.next_response()).collect();
    replies.sort_by_key(|r| r["id"].as_u64());
    for r in &replies {
        assert_ne!(r["result"]["isError"], json!(true), "{r}");
    }
    assert_eq!(
        replies[1]["result"]["structuredContent"]["stdout"],
        "waited\n"
    );
    assert_eq!(
        exit_codes(&replies[0]["result"]["structuredContent"]).len(),
        8
    );
}
