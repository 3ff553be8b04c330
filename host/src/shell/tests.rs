//! The interpreter against a host that runs a few commands in-process: what bash prints for
//! the shell's own constructs, with no guest or process involved.

use super::*;
use crate::pipe::PipeReader;

/// A host whose commands are `cat` (stdin to stdout), `fail` (exit 7) and `spam` (writes
/// until its reader leaves, then exits 141); everything else is not allowed.
pub struct FakeHost {
    pub ws: Workspace,
    pub started: std::sync::Mutex<Vec<String>>,
}

impl FakeHost {
    pub fn new(dir: &std::path::Path) -> Self {
        Self {
            ws: Workspace::open(dir).unwrap(),
            started: std::sync::Mutex::new(Vec::new()),
        }
    }
}

async fn copy(r: &PipeReader, w: &crate::pipe::PipeWriter) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        let n = r.read(&mut buf).await;
        if n == 0 {
            return true;
        }
        if w.write_all(&buf[..n]).await.is_err() {
            return false;
        }
    }
}

impl Host for FakeHost {
    fn allows(&self, name: &str) -> bool {
        matches!(name, "cat" | "fail" | "spam")
    }
    async fn record_refusal(&self, _argv: &[String], _cwd: &str, _error: &crate::error::RunError) {}
    fn workspace(&self) -> &Workspace {
        &self.ws
    }
    fn may_write(&self) -> bool {
        true
    }
    async fn run(&self, start: CommandStart) -> CommandEnd {
        self.started.lock().unwrap().push(start.argv[0].clone());
        let status = match start.argv[0].as_str() {
            "cat" => {
                if copy(&start.stdin, &start.stdout).await {
                    0
                } else {
                    SIGPIPE_STATUS
                }
            }
            "fail" => 7,
            "spam" => loop {
                if start.stdout.write_all(b"spam\n").await.is_err() {
                    break SIGPIPE_STATUS;
                }
            },
            other => panic!("the interpreter started {other}, which is not allowed"),
        };
        CommandEnd {
            status: Ok(status),
            stderr: Vec::new(),
            runner: Some(RunnerKind::Wasi),
        }
    }
}

/// Runs `script` (checked first) on a fresh fake host in `dir`; stdout and the status.
pub async fn run_in(
    dir: &std::path::Path,
    script: &str,
    stdin: &str,
) -> (String, Result<i32, ShellError>) {
    let host = FakeHost::new(dir);
    let program = match parse(script).and_then(|p| check::check(&host, script, &p).map(|()| p)) {
        Ok(p) => p,
        Err(e) => return (String::new(), Err(e)),
    };
    let end = run_script(
        &host,
        ScriptRequest {
            program: &program,
            text: script,
            cwd: String::new(),
            stdin: bytes::Bytes::from(stdin.to_owned()),
            bounds: Bounds::default(),
            write_pool: WritePool::new(1 << 30),
            cancel: CancellationToken::new(),
        },
    )
    .await;
    (end.stdout.text(), end.status)
}

async fn run(script: &str) -> (String, Result<i32, ShellError>) {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), script, "").await
}

async fn stdout(script: &str) -> String {
    let (out, status) = run(script).await;
    assert!(status.is_ok(), "{script}: {status:?}");
    out
}

#[tokio::test]
async fn builtins_and_control_flow() {
    let cases: &[(&str, &str)] = &[
        ("set -o pipefail; false | true; echo $?", "1\n"),
        ("false | true; echo $?", "0\n"),
        ("f() { local y=$1; echo \"<$y>\"; }; f 'a b'", "<a b>\n"),
        ("x='a  b'; echo $x \"$x\"", "a b a  b\n"),
        ("set -- 1 2 3; shift; echo $@ $#", "2 3 2\n"),
        ("for ((i=0; i<3; i++)); do echo -n $i; done; echo", "012\n"),
        ("until [ \"$n\" = xxx ]; do n=x$n; done; echo $n", "xxx\n"),
        (
            "for i in 1 2 3 4; do [ $i = 2 ] && continue; [ $i = 4 ] && break; echo $i; done",
            "1\n3\n",
        ),
        ("echo $(echo a; echo b)", "a b\n"),
        ("x=$(false); echo $?", "1\n"),
        ("echo ${x:=set}; echo $x", "set\nset\n"),
        (
            "s=hello; echo ${s:1:3} ${s^} ${s^^} ${s/l/L} ${s//l/L}",
            "ell Hello HELLO heLlo heLLo\n",
        ),
        ("case b in a) echo a;; b|c) echo bc;; esac", "bc\n"),
        ("echo a; { echo b; echo c; } | cat", "a\nb\nc\n"),
        ("spam | cat | { read l; echo $l; }", "spam\n"),
        ("IFS=: read a b <<< 'x:y:z'; echo $a $b", "x y:z\n"),
        ("v=1; (v=2; echo $v); echo $v", "2\n1\n"),
        ("echo -e 'a\\tb'", "a\tb\n"),
        ("test -z '' && [ -n x ] && [ 1 -lt 2 ] && echo ok", "ok\n"),
        ("[[ -z $nothing && abc =~ ^a.c$ ]] && echo re", "re\n"),
        ("x=3; (( x > 2 )) && echo gt", "gt\n"),
        (
            "echo \"${undefined-dflt}\" '${literal}'",
            "dflt ${literal}\n",
        ),
        ("a=1 b=2; echo $a$b", "12\n"),
        ("echo one two | { read x y; echo $y; }", "two\n"),
        ("f() { return 3; }; f; echo $?", "3\n"),
        (
            "cat <<EOF\nv=$((1+1)) $(echo sub)\n\\$x\nEOF",
            "v=2 sub\n$x\n",
        ),
        ("cat <<-EOF\n\tindented\n\tEOF", "indented\n"),
        ("echo x 1>&2 2>/dev/null; echo y", "y\n"),
    ];
    for (script, want) in cases {
        assert_eq!(&stdout(script).await, want, "script: {script}");
    }
}

#[tokio::test]
async fn exit_and_set_e() {
    let (o, st) = run("echo a; exit 4; echo b").await;
    assert_eq!((o, st.ok()), ("a\n".into(), Some(4)));
    let (o, st) = run("set -e; fail; echo no").await;
    assert_eq!((o, st.ok()), (String::new(), Some(7)));
    let (o, st) = run("set -e; fail || echo yes").await;
    assert_eq!((o, st.ok()), ("yes\n".into(), Some(0)));
    let (o, st) = run("set -e; if fail; then :; fi; echo on").await;
    assert_eq!((o, st.ok()), ("on\n".into(), Some(0)));
    let (o, st) = run("(exit 5); echo $?").await;
    assert_eq!((o, st.ok()), ("5\n".into(), Some(0)));
}

#[tokio::test]
async fn nothing_outside_the_allowlist_starts() {
    let (_, st) = run("echo ok; curl x").await;
    assert!(
        matches!(st, Err(ShellError::NotAllowed { ref name, offset: Some(9), .. }) if name == "curl"),
        "{st:?}"
    );
    let (out, st) = run("echo ok; c=curl; $c x").await;
    assert_eq!(out, "ok\n");
    assert!(matches!(st, Err(ShellError::NotAllowed { .. })), "{st:?}");
    let (_, st) = run("echo $(rm -rf /)").await;
    assert!(
        matches!(st, Err(ShellError::NotAllowed { ref name, .. }) if name == "rm"),
        "{st:?}"
    );
}

#[tokio::test]
async fn redirections_write_inside_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let (out, st) = run_in(
        dir.path(),
        "echo a > f; echo b >> f; cat < f; cat f 2>&1 >/dev/null",
        "",
    )
    .await;
    assert_eq!(st.unwrap(), 0);
    assert_eq!(out, "a\nb\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f")).unwrap(),
        "a\nb\n"
    );
    let (_, st) = run_in(dir.path(), "echo x > ../f", "").await;
    assert!(matches!(st, Err(ShellError::Outside(_))), "{st:?}");
    let (out, _) = run_in(dir.path(), "cat < missing; echo $?", "").await;
    assert_eq!(out, "1\n");
}

#[tokio::test]
async fn stdin_is_shared_as_a_descriptor_is() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _) = run_in(dir.path(), "read a; read b; echo $b$a; cat", "1\n2\n3\n").await;
    assert_eq!(out, "21\n3\n");
}
