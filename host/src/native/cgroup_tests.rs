//! Tests of the per-call cgroups against a fake cgroup2 tree (plain files in a temporary
//! directory): the files runbox writes, the split of its own cgroup, the refusals, and the
//! reading of `memory.events`. A real cgroup v2 host is not needed (nor touched).

use super::*;

/// A fake cgroup2 mount with runbox's cgroup at `svc`, offering `controllers`, holding `procs`.
fn fake(controllers: &str, procs: &[u32]) -> (tempfile::TempDir, Host) {
    let root = tempfile::tempdir().unwrap();
    let svc = root.path().join("svc");
    std::fs::create_dir(&svc).unwrap();
    std::fs::write(svc.join("cgroup.controllers"), controllers).unwrap();
    std::fs::write(svc.join("cgroup.subtree_control"), "").unwrap();
    let list: Vec<String> = procs.iter().map(u32::to_string).collect();
    std::fs::write(svc.join("cgroup.procs"), list.join("\n")).unwrap();
    let host = Host {
        mounts: format!(
            "proc /proc proc rw 0 0\ncgroup2 {} cgroup2 rw,nosuid 0 0\n",
            root.path().display()
        ),
        own: "4:memory:/x\n0::/svc\n".to_owned(),
        pid: 4242,
    };
    (root, host)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn auto_moves_runbox_into_a_leaf_and_enables_the_controllers() {
    let (root, host) = fake("cpu io memory pids", &[4242]);
    let svc = root.path().join("svc");
    // doctor's look changes nothing.
    assert_eq!(
        CallCgroups::assess(&CgroupSetting::Auto, &host).unwrap(),
        svc
    );
    assert!(!svc.join(SERVER_LEAF).exists());
    assert_eq!(read(&svc.join("cgroup.subtree_control")), "");
    std::fs::create_dir(svc.join(format!("{CALL_PREFIX}1-0"))).unwrap();
    let cg = CallCgroups::establish(&CgroupSetting::Auto, &host).unwrap();
    assert_eq!(cg.parent(), svc);
    assert_eq!(read(&svc.join(SERVER_LEAF).join("cgroup.procs")), "4242");
    assert_eq!(read(&svc.join("cgroup.subtree_control")), "+memory +pids");
    assert!(
        !svc.join(format!("{CALL_PREFIX}1-0")).exists(),
        "a stale call cgroup was left"
    );
}

#[test]
fn a_call_cgroup_gets_its_limits_and_is_removed_after_a_kill() {
    let (root, host) = fake("memory pids", &[4242]);
    let cg = CallCgroups::establish(&CgroupSetting::Auto, &host).unwrap();
    let limits = Limits {
        memory_bytes: 64 << 20,
        processes: 16,
        ..Limits::default()
    };
    let call = cg.create(&limits).unwrap();
    let dir = call.dir().to_owned();
    assert_eq!(dir, root.path().join(format!("svc/{CALL_PREFIX}4242-0")));
    assert_eq!(read(&dir.join("memory.max")), (64u64 << 20).to_string());
    assert_eq!(read(&dir.join("pids.max")), "16");
    assert_eq!(read(&dir.join("memory.oom.group")), "1");
    assert_eq!(read(&dir.join("memory.swap.max")), "0");
    // The spawner writes the child's pid through the descriptor.
    let fd = call.procs().unwrap().try_clone_to_owned().unwrap();
    std::fs::File::from(fd).write_all(b"777").unwrap();
    assert_eq!(read(&dir.join("cgroup.procs")), "777");
    assert!(!call.oom_killed());
    std::fs::write(
        dir.join("memory.events"),
        "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\noom_group_kill 1\n",
    )
    .unwrap();
    assert!(call.oom_killed());
    // The next call gets the next name.
    let second = cg.create(&limits).unwrap();
    assert!(second.dir().ends_with(format!("{CALL_PREFIX}4242-1")));
    drop(call);
    assert!(!dir.exists(), "the call cgroup was not removed");
    drop(second);
    assert!(
        root.path().join("svc").join(SERVER_LEAF).exists(),
        "the server's own leaf was removed"
    );
}

#[test]
fn kill_writes_cgroup_kill_and_a_busy_cgroup_does_not_panic_the_drop() {
    let (_root, host) = fake("memory pids", &[4242]);
    let cg = CallCgroups::establish(&CgroupSetting::Auto, &host).unwrap();
    let call = cg.create(&Limits::default()).unwrap();
    call.kill();
    assert_eq!(read(&call.dir().join("cgroup.kill")), "1");
    // A directory the fake cannot lose (as a real cgroup's live child would be): the removal
    // gives up after its bounded tries and leaves the directory for the next start.
    std::fs::create_dir(call.dir().join("child")).unwrap();
    let dir = call.dir().to_owned();
    drop(call);
    assert!(dir.join("child").exists());
}

#[test]
fn missing_controllers_other_processes_and_no_v2_are_named() {
    let (_root, host) = fake("cpu io", &[4242]);
    let e = CallCgroups::establish(&CgroupSetting::Auto, &host).unwrap_err();
    assert!(
        matches!(&e, CgroupUnavailable::Controllers { have, .. } if have == "cpu io"),
        "{e}"
    );
    assert!(e.to_string().contains("hybrid"), "{e}");
    let (root, host) = fake("memory pids", &[4242, 99]);
    let e = CallCgroups::establish(&CgroupSetting::Auto, &host).unwrap_err();
    assert!(matches!(e, CgroupUnavailable::Shared { .. }), "{e}");
    assert!(
        !root.path().join("svc").join(SERVER_LEAF).exists(),
        "runbox moved itself although it could not split the cgroup"
    );
    let mut v1 = host.clone();
    v1.mounts = "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n".into();
    assert_eq!(
        CallCgroups::establish(&CgroupSetting::Auto, &v1).unwrap_err(),
        CgroupUnavailable::NotMounted
    );
    let mut no_own = host;
    no_own.own = "4:memory:/x\n".into();
    assert_eq!(
        CallCgroups::establish(&CgroupSetting::Auto, &no_own).unwrap_err(),
        CgroupUnavailable::NoOwnCgroup
    );
    assert_eq!(
        CallCgroups::establish(&CgroupSetting::Off, &Host::current()).unwrap_err(),
        CgroupUnavailable::Off
    );
}

#[test]
fn a_delegated_directory_is_used_as_it_is() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("runbox.slice");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("cgroup.controllers"), "memory pids").unwrap();
    std::fs::write(dir.join("cgroup.subtree_control"), "memory pids").unwrap();
    // Review: a plain directory laid out like a cgroup was taken, and nothing enforced it.
    let plain = Host {
        mounts: "proc /proc proc rw 0 0\n".to_owned(),
        own: String::new(),
        pid: 7,
    };
    let refused = CallCgroups::establish(&CgroupSetting::Dir(dir.clone()), &plain);
    assert!(
        matches!(&refused, Err(CgroupUnavailable::NotCgroup2 { dir: d }) if *d == dir),
        "{refused:?}"
    );
    assert!(CallCgroups::assess(&CgroupSetting::Dir(dir.clone()), &plain).is_err());
    let host = Host {
        mounts: format!("cgroup2 {} cgroup2 rw 0 0\n", root.path().display()),
        own: String::new(),
        pid: 7,
    };
    let cg = CallCgroups::establish(&CgroupSetting::Dir(dir.clone()), &host).unwrap();
    assert_eq!(cg.parent(), dir);
    // Already enabled: not written again.
    assert_eq!(read(&dir.join("cgroup.subtree_control")), "memory pids");
    assert!(!dir.join(SERVER_LEAF).exists());
    let missing = CallCgroups::establish(&CgroupSetting::Dir(root.path().join("nope")), &host);
    assert!(
        matches!(missing, Err(CgroupUnavailable::Io { .. })),
        "{missing:?}"
    );
}

#[test]
fn memory_events_are_read_defensively() {
    assert_eq!(oom_kills("oom 2\noom_kill 3\n"), 3);
    assert_eq!(oom_kills("oom_kill x\n"), 0);
    assert_eq!(oom_kills(""), 0);
    assert_eq!(oom_kills("oom_group_kill 1\n"), 0);
}
