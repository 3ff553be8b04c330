//! Unit tests of the check step: the request's shape, the bounds of one stage, the read-only
//! refusal and the may-write decision, timeout bounds, and a refused stage refusing the call.

use super::*;
use crate::api::PipelineStage;
use crate::policy::parse_builtin_manifest;
use crate::policy::{Overrides, parse_policy};

/// A policy with the built-in commands only, over a fresh workspace.
struct Fixture {
    policy: Policy,
    catalog: Catalog,
    workspace: Workspace,
    guest_env: Arc<[(String, String)]>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        let flags = Overrides {
            workspace: Some(dir.path().to_owned()),
            audit_dir: Some("/audit".into()),
            ..Default::default()
        };
        let policy = Policy::build(parse_policy("").unwrap(), &flags).unwrap();
        let builtins = parse_builtin_manifest(crate::BUILTIN_MANIFEST).unwrap();
        Self {
            catalog: Catalog::from_builtins(&builtins, None).unwrap(),
            workspace: Workspace::open(dir.path()).unwrap(),
            guest_env: Arc::from(vec![("LANG".to_owned(), "C.UTF-8".to_owned())]),
            policy,
            _dir: dir,
        }
    }

    fn checker(&self) -> Checker<'_> {
        Checker {
            policy: &self.policy,
            catalog: &self.catalog,
            workspace: &self.workspace,
            native: None,
            guest_env: &self.guest_env,
        }
    }

    fn check(&self, r: &Request<'_>) -> Result<Checked<'_>, RunError> {
        self.checker().check(r)
    }
}

fn request<'a>(command: &'a str, args: &'a [String]) -> Request<'a> {
    Request {
        command,
        args,
        cwd: None,
        stdin: None,
        timeout_ms: None,
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

fn pipeline(commands: &[&str]) -> RunArgs {
    let mut args = RunArgs::command("x", Vec::new());
    args.command = None;
    args.pipeline = Some(
        commands
            .iter()
            .map(|c| PipelineStage {
                command: (*c).to_owned(),
                args: Vec::new(),
            })
            .collect(),
    );
    args
}

#[test]
fn a_command_is_a_call_of_one_stage_that_gets_the_stdin() {
    let mut args = RunArgs::command("cat", strings(&["-n"]));
    args.stdin = Some("in".into());
    args.cwd = Some("sub".into());
    args.timeout_ms = Some(5);
    let call = shape_of(&args).unwrap();
    assert_eq!(call.shape, Shape::Single);
    assert_eq!(call.stages.len(), 1);
    let s = call.stages[0];
    assert_eq!(
        (s.command, s.args, s.cwd),
        ("cat", &args.args[..], Some("sub"))
    );
    assert_eq!((s.stdin, s.timeout_ms), (Some("in"), Some(5)));
}

#[test]
fn only_a_pipelines_first_stage_gets_the_stdin() {
    let mut args = pipeline(&["cat", "sort", "wc"]);
    args.stdin = Some("in".into());
    let call = shape_of(&args).unwrap();
    assert_eq!(call.shape, Shape::Pipeline);
    let stdins: Vec<_> = call.stages.iter().map(|s| s.stdin).collect();
    assert_eq!(stdins, [Some("in"), None, None]);
}

#[test]
fn stage_counts_outside_two_to_eight_are_refused() {
    for count in [0, 1, 9, 100] {
        let e = shape_of(&pipeline(&vec!["cat"; count])).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains(&count.to_string()), "{}", e.message);
    }
    for count in [2, MAX_STAGES] {
        assert!(shape_of(&pipeline(&vec!["cat"; count])).is_ok());
    }
}

#[test]
fn top_level_args_and_both_or_neither_shape_are_refused() {
    let mut args = pipeline(&["cat", "wc"]);
    args.args = strings(&["-n"]);
    let e = shape_of(&args).unwrap_err();
    assert!(e.message.contains("each stage"), "{}", e.message);
    args.args.clear();
    args.command = Some("cat".into());
    let e = shape_of(&args).unwrap_err();
    assert!(e.message.contains("not both"), "{}", e.message);
    args.command = None;
    args.pipeline = None;
    let e = shape_of(&args).unwrap_err();
    assert_eq!(e.message, "the request names no command");
}

#[test]
fn argument_count_and_bytes_are_bounded() {
    let mut f = Fixture::new();
    f.policy.request.max_args = 2;
    f.policy.request.max_arg_bytes = 5;
    assert!(f.check(&request("echo", &strings(&["a", "b"]))).is_ok());
    let e = f
        .check(&request("echo", &strings(&["a", "b", "c"])))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert_eq!(e.message, "3 arguments given; the limit is 2");
    let e = f
        .check(&request("echo", &strings(&["abc", "def"])))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert_eq!(e.message, "arguments total 6 bytes; the limit is 5");
}

#[test]
fn a_nul_byte_in_an_argument_is_refused() {
    let f = Fixture::new();
    let e = f
        .check(&request("echo", &strings(&["a", "b\0c"])))
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert_eq!(e.message, "argument 1 contains a NUL byte");
}

#[test]
fn stdin_is_bounded() {
    let mut f = Fixture::new();
    f.policy.request.max_stdin_bytes = 3;
    let ok = Request {
        stdin: Some("abc"),
        ..request("cat", &[])
    };
    assert_eq!(f.check(&ok).unwrap().stdin, "abc".as_bytes());
    let e = f
        .check(&Request {
            stdin: Some("abcd"),
            ..ok
        })
        .unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidArgument);
    assert_eq!(e.message, "stdin is 4 bytes; the limit is 3");
}

#[test]
fn the_may_write_decision_is_made_once_here() {
    let mut f = Fixture::new();
    assert!(f.check(&request("touch", &[])).unwrap().writable);
    assert!(!f.check(&request("cat", &[])).unwrap().writable);
    f.policy.workspace_writable = false;
    let e = f.check(&request("touch", &[])).unwrap_err();
    assert_eq!(e.code, ErrorCode::ReadOnly);
    assert!(
        e.message.starts_with("touch changes files"),
        "{}",
        e.message
    );
    assert!(!f.check(&request("cat", &[])).unwrap().writable);
}

#[test]
fn timeout_must_be_between_one_and_the_policy_maximum() {
    let f = Fixture::new();
    let with = |ms| Request {
        timeout_ms: Some(ms),
        ..request("cat", &[])
    };
    assert_eq!(f.check(&with(5)).unwrap().limits.timeout_ms, 5);
    let max = f.policy.max_timeout_ms;
    assert_eq!(f.check(&with(max)).unwrap().limits.timeout_ms, max);
    for ms in [0, max + 1] {
        let e = f.check(&with(ms)).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument, "{ms}");
    }
    let default = f.check(&request("cat", &[])).unwrap().limits;
    assert_eq!(default, f.policy.limits);
}

#[test]
fn unknown_names_and_escaping_directories_are_refused() {
    let f = Fixture::new();
    let e = f.check(&request("/bin/ls", &[])).unwrap_err();
    assert_eq!(e.code, ErrorCode::CommandNotAllowed);
    for cwd in ["../", "missing", "/etc"] {
        let r = Request {
            cwd: Some(cwd),
            ..request("ls", &[])
        };
        assert!(f.check(&r).is_err(), "{cwd}");
    }
    let c = f
        .check(&Request {
            cwd: Some("sub"),
            ..request("ls", &[])
        })
        .unwrap();
    assert_eq!(c.cwd.relative, "sub");
}

#[test]
fn a_built_in_command_gets_its_name_as_argv0_and_the_policy_env() {
    let f = Fixture::new();
    let c = f.check(&request("echo", &strings(&["hi"]))).unwrap();
    assert_eq!(c.argv, strings(&["echo", "hi"]));
    assert_eq!(c.rule(), "allowlist:builtin");
    let Target::Wasi(program) = &c.target else {
        panic!("a built-in command runs on the WASI runner")
    };
    assert_eq!(program.env(), &*f.guest_env);
}

#[test]
fn a_refused_stage_refuses_the_whole_call() {
    let f = Fixture::new();
    let args = pipeline(&["cat", "nope", "touch", "wc"]);
    let call = shape_of(&args).unwrap();
    let refusal = f.checker().check_call(&call).unwrap_err();
    assert_eq!(refusal.stage, 1, "the first refused stage is reported");
    assert_eq!(refusal.error.code, ErrorCode::CommandNotAllowed);
    let args = pipeline(&["cat", "sort", "wc"]);
    let call = shape_of(&args).unwrap();
    assert_eq!(f.checker().check_call(&call).unwrap().len(), 3);
}
