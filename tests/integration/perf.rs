//! The performance machinery behaves correctly: the instance pool falls back cleanly when its
//! address space cannot be reserved. (No test here asserts a timing; those live in the
//! benchmark, `cargo bench --bench runbox-bench`.)

use crate::support::*;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// An address-space limit that fits one on-demand guest (a 4 GiB reservation plus guards) but
/// not the default pool of 8 such slots.
const ADDRESS_SPACE_LIMIT: u64 = 16 << 30;

#[test]
fn pool_that_cannot_be_reserved_falls_back_to_on_demand() {
    let env = Env::new();
    let mut cmd = Command::new(runbox_bin());
    cmd.arg("exec")
        .args(env.policy_args())
        .args(["echo", "--", "still", "runs"]);
    // SAFETY: the closure runs in the child between fork and exec and only calls setrlimit,
    // which is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_LIMIT,
                rlim_max: ADDRESS_SPACE_LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &limit) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "still runs\n");
    assert!(
        stderr.contains("cannot reserve the instance pool"),
        "the fallback must be logged: {stderr}"
    );
}

#[test]
fn pooled_instances_start_clean_for_every_call() {
    // A pool slot is reused by the next call: its static data and memory must come back as the
    // module defines them, whatever the previous guest wrote.
    let env = Env::new().with_guests(&["residue"]);
    let mut s = env.serve();
    for _ in 0..5 {
        let r = s.run("residue", &[]);
        assert_eq!(structured(&r)["stdout"], "runs=1 dirty=0\n", "{r}");
    }
}
