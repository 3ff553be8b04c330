//! Kernel confinement of native commands: the Landlock ruleset and the seccomp filters.
//!
//! The rule builders here are pure (which paths get which rights, which syscalls are refused) and
//! tested on their own; the effects are thin: [`SystemPaths::open`] opens the policy's paths once
//! at start, [`landlock_ruleset`] creates one call's ruleset in the parent, and the child only
//! calls `landlock_restrict_self` on it and installs the prepared filters ([`spawn`]).
//!
//! What the rules grant (everything else is denied, since every filesystem right is handled):
//! - read + execute beneath the policy's `exec_paths` and on each native binary;
//! - read beneath the policy's `read_paths` (a narrow `/etc` list);
//! - read + write on a few device files (`/dev/null`, `/dev/zero`, `/dev/full`, `/dev/random`,
//!   `/dev/urandom`);
//! - read + write, never execute, beneath the workspace (read only for read-only commands;
//!   execute too for a command with `workspace_exec = true`);
//! - read + write beneath the call's scratch directory (its `HOME` and `TMPDIR`);
//! - for one command only, its toolchain paths ([`command_rules`]): read + execute beneath its
//!   `exec_paths`, read beneath its `read_paths`, read + write without execute beneath its
//!   `write_paths`.
//!
//! TCP bind and connect are handled with no rule, so both are denied; signals and abstract unix
//! sockets are scoped to the sandbox. Landlock (ABI 7 here) does not cover UDP, raw sockets or
//! connecting to path-named unix sockets, so seccomp refuses `socket()` outright. Without an IPC
//! namespace per call (the reaper mode), seccomp also refuses SysV IPC and POSIX message queues.
//!
//! [`spawn`]: super::spawn

use crate::policy::SandboxPolicy;
use crate::policy::toolchain::Toolchain;
use landlock::{
    ABI, Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr,
    RulesetCreated, RulesetCreatedAttr, RulesetError, Scope,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule,
};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The Landlock ABI whose rights runbox asks for: ABI 6 (Linux 6.12) handles every filesystem
/// right including device ioctls, TCP, and both scopes. "Fully enforced" means all of it holds.
pub const TARGET_ABI: ABI = ABI::V6;

/// Device files every native command may read and write.
pub const DEVICE_FILES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// What a path rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// Read and execute (system directories, the native binaries).
    ReadExec,
    /// Read only (the `/etc` list).
    Read,
    /// Read and write files, never execute (devices, the workspace, the scratch directory).
    ReadWrite,
}

/// The Landlock rights of a grant on a directory (`is_dir`) or a single file. A file only takes
/// file rights; asking for directory rights on a file would make the ruleset "partial".
pub fn access_for(grant: Grant, is_dir: bool) -> BitFlags<AccessFs> {
    let all = AccessFs::from_all(TARGET_ABI);
    let rights = match grant {
        Grant::ReadExec => AccessFs::from_read(TARGET_ABI),
        Grant::Read => AccessFs::from_read(TARGET_ABI) & !AccessFs::Execute,
        Grant::ReadWrite => {
            all & !(AccessFs::Execute
                | AccessFs::MakeChar
                | AccessFs::MakeBlock
                | AccessFs::MakeSock
                | AccessFs::IoctlDev)
        }
    };
    if is_dir {
        rights
    } else {
        rights & AccessFs::from_file(TARGET_ABI)
    }
}

/// The workspace's rights: read + write without execute, or read only; with `exec`, execute
/// as well (a command's `workspace_exec`).
pub fn workspace_access(writable: bool, exec: bool) -> BitFlags<AccessFs> {
    let base = if writable {
        access_for(Grant::ReadWrite, true)
    } else {
        access_for(Grant::Read, true)
    };
    if exec { base | AccessFs::Execute } else { base }
}

/// The path rules one command's toolchain keys add. Pure: nothing is opened here.
pub fn command_rules(toolchain: &Toolchain) -> Vec<(PathBuf, Grant)> {
    let mut rules = Vec::new();
    let mut add = |paths: &[PathBuf], grant| rules.extend(paths.iter().map(|p| (p.clone(), grant)));
    add(&toolchain.exec_paths, Grant::ReadExec);
    add(&toolchain.read_paths, Grant::Read);
    add(&toolchain.write_paths, Grant::ReadWrite);
    rules
}

/// The static path rules of a policy: its exec and read paths, each native binary, the devices.
/// Pure: nothing is opened here.
pub fn static_rules(sandbox: &SandboxPolicy, binaries: &[PathBuf]) -> Vec<(PathBuf, Grant)> {
    let mut rules = Vec::new();
    rules.extend(
        sandbox
            .exec_paths
            .iter()
            .map(|p| (p.clone(), Grant::ReadExec)),
    );
    rules.extend(binaries.iter().map(|p| (p.clone(), Grant::ReadExec)));
    rules.extend(sandbox.read_paths.iter().map(|p| (p.clone(), Grant::Read)));
    rules.extend(
        DEVICE_FILES
            .iter()
            .map(|p| (PathBuf::from(p), Grant::ReadWrite)),
    );
    rules
}

/// The static rules opened once at start (`O_PATH` handles), so a call adds them without
/// resolving any path again.
#[derive(Debug)]
pub struct SystemPaths {
    opened: Vec<(PathBuf, PathFd, BitFlags<AccessFs>)>,
    skipped: Vec<PathBuf>,
}

impl SystemPaths {
    /// Opens every rule's path; paths that do not exist (`/lib64` on some systems) are skipped
    /// and listed by [`SystemPaths::skipped`].
    pub fn open(rules: &[(PathBuf, Grant)]) -> Self {
        let mut opened = Vec::new();
        let mut skipped = Vec::new();
        for (path, grant) in rules {
            let (Ok(meta), Ok(fd)) = (std::fs::metadata(path), PathFd::new(path)) else {
                skipped.push(path.clone());
                continue;
            };
            opened.push((path.clone(), fd, access_for(*grant, meta.is_dir())));
        }
        Self { opened, skipped }
    }

    /// The paths in force with their rights, for `runbox doctor`.
    pub fn granted(&self) -> impl Iterator<Item = (&Path, BitFlags<AccessFs>)> {
        self.opened.iter().map(|(p, _, a)| (p.as_path(), *a))
    }

    /// The policy paths that did not exist at start.
    pub fn skipped(&self) -> &[PathBuf] {
        &self.skipped
    }
}

/// The workspace of one call as the ruleset sees it.
#[derive(Debug, Clone, Copy)]
pub struct WorkspaceRule<F: AsFd> {
    /// The workspace root.
    pub root: F,
    /// Whether the command may write it.
    pub writable: bool,
    /// Whether the command may execute files in it (`workspace_exec`).
    pub exec: bool,
}

/// Creates one call's Landlock ruleset (in the parent; the child only enforces it): the
/// system paths, the command's own toolchain paths (`command`), the workspace and the scratch
/// directory. `None` when the kernel has no Landlock at all.
pub fn landlock_ruleset(
    system: &SystemPaths,
    command: Option<&SystemPaths>,
    workspace: WorkspaceRule<impl AsFd>,
    scratch: impl AsFd,
) -> Result<Option<OwnedFd>, RulesetError> {
    ruleset(system, command, workspace, scratch).map(Into::into)
}

/// The ruleset itself, also used by the start-up probe to learn how much of it the kernel
/// enforces.
pub fn ruleset(
    system: &SystemPaths,
    command: Option<&SystemPaths>,
    workspace: WorkspaceRule<impl AsFd>,
    scratch: impl AsFd,
) -> Result<RulesetCreated, RulesetError> {
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(TARGET_ABI))?
        .handle_access(AccessNet::from_all(TARGET_ABI))?
        .scope(Scope::from_all(TARGET_ABI))?
        .create()?;
    for (_, fd, access) in system
        .opened
        .iter()
        .chain(command.iter().flat_map(|c| &c.opened))
    {
        ruleset = ruleset.add_rule(PathBeneath::new(fd, *access))?;
    }
    let ws_access = workspace_access(workspace.writable, workspace.exec);
    ruleset = ruleset
        .add_rule(PathBeneath::new(workspace.root, ws_access))?
        .add_rule(PathBeneath::new(
            scratch,
            access_for(Grant::ReadWrite, true),
        ))?;
    Ok(ruleset)
}

/// SysV IPC and POSIX message queues: refused when a call has no IPC namespace of its own
/// (the reaper mode), since their objects would be shared with other calls and outlive them.
const SHARED_IPC_SYSCALLS: &[i64] = &[
    libc::SYS_shmget,
    libc::SYS_shmat,
    libc::SYS_shmctl,
    libc::SYS_shmdt,
    libc::SYS_semget,
    libc::SYS_semop,
    libc::SYS_semtimedop,
    libc::SYS_semctl,
    libc::SYS_msgget,
    libc::SYS_msgsnd,
    libc::SYS_msgrcv,
    libc::SYS_msgctl,
    libc::SYS_mq_open,
    libc::SYS_mq_unlink,
    libc::SYS_mq_timedsend,
    libc::SYS_mq_timedreceive,
    libc::SYS_mq_notify,
    libc::SYS_mq_getsetattr,
];

/// What the commands of different calls, and the server, have in common.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sharing {
    /// No IPC namespace per call: SysV IPC and POSIX message queues are refused.
    pub ipc: bool,
}

/// Rules matching calls that reach a process other than the caller by pid, which neither the
/// uid (calls share it) nor Landlock's scopes (signals, ptrace) cover: resource limits,
/// scheduling and I/O priority of another process, or of a whole group or user.
fn other_process_rules(rules: &mut BTreeMap<i64, Vec<SeccompRule>>) {
    let rule = |conds: Vec<(u8, SeccompCmpOp, u64)>| {
        let conds = conds
            .into_iter()
            .filter_map(|(arg, op, v)| {
                SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, v).ok()
            })
            .collect();
        SeccompRule::new(conds).ok()
    };
    // pid in arg 0; 0 means the caller.
    for nr in [
        libc::SYS_prlimit64,
        libc::SYS_sched_setaffinity,
        libc::SYS_sched_setscheduler,
        libc::SYS_sched_setparam,
        libc::SYS_sched_setattr,
    ] {
        rules.insert(
            nr,
            rule(vec![(0, SeccompCmpOp::Ne, 0)]).into_iter().collect(),
        );
    }
    // (which, who): only (PRIO_PROCESS / IOPRIO_WHO_PROCESS, 0), the caller itself.
    for (nr, own) in [
        (libc::SYS_setpriority, libc::PRIO_PROCESS as u64),
        (libc::SYS_ioprio_set, 1),
    ] {
        let r = [
            rule(vec![(0, SeccompCmpOp::Ne, own)]),
            rule(vec![(1, SeccompCmpOp::Ne, 0)]),
        ];
        rules.insert(nr, r.into_iter().flatten().collect());
    }
}

/// Syscalls refused with `EPERM`: every `socket()` (no network of any family, no path-named unix
/// sockets), `socketpair()` other than unix stream/seqpacket, new namespaces (`unshare`, `setns`,
/// `clone` with a `CLONE_NEW*` flag), kernel keyrings, `perf_event_open`, `bpf`, `userfaultfd`,
/// limits and priorities of other processes ([`other_process_rules`]); with `sharing.ipc` also
/// SysV IPC and POSIX message queues.
fn denied_rules(sharing: Sharing) -> BTreeMap<i64, Vec<SeccompRule>> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    if sharing.ipc {
        for &nr in SHARED_IPC_SYSCALLS {
            rules.insert(nr, Vec::new());
        }
    }
    other_process_rules(&mut rules);
    for nr in [
        libc::SYS_socket,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_perf_event_open,
        libc::SYS_bpf,
        libc::SYS_userfaultfd,
    ] {
        rules.insert(nr, Vec::new());
    }
    let cond = |arg: u8, op: SeccompCmpOp, value: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
    };
    let mut pair = Vec::new();
    if let Ok(c) = cond(0, SeccompCmpOp::Ne, libc::AF_UNIX as u64)
        && let Ok(r) = SeccompRule::new(vec![c])
    {
        pair.push(r);
    }
    // The socket type's low nibble; flags (SOCK_CLOEXEC, SOCK_NONBLOCK) sit above it.
    for ty in 0..16u64 {
        if ty == libc::SOCK_STREAM as u64 || ty == libc::SOCK_SEQPACKET as u64 {
            continue;
        }
        if let Ok(c) = cond(1, SeccompCmpOp::MaskedEq(0xf), ty)
            && let Ok(r) = SeccompRule::new(vec![c])
        {
            pair.push(r);
        }
    }
    rules.insert(libc::SYS_socketpair, pair);
    let namespaces = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
    ];
    let clone = namespaces
        .iter()
        .filter_map(|&flag| {
            let bit = flag as u64;
            SeccompCondition::new(0, SeccompCmpArgLen::Qword, SeccompCmpOp::MaskedEq(bit), bit)
                .ok()
                .and_then(|c| SeccompRule::new(vec![c]).ok())
        })
        .collect();
    rules.insert(libc::SYS_clone, clone);
    rules
}

/// Syscalls refused with `ENOSYS`, so callers fall back: io_uring (its socket and file
/// operations would bypass the filter above) and `clone3` (its flags are in memory the filter
/// cannot read; glibc falls back to `clone`).
fn missing_rules() -> BTreeMap<i64, Vec<SeccompRule>> {
    [
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_clone3,
    ]
    .into_iter()
    .map(|nr| (nr, Vec::new()))
    .collect()
}

/// The x32 ABI's marker on x86_64 syscall numbers.
const X32_SYSCALL_BIT: i64 = 0x4000_0000;

/// Whether this kernel runs x32 syscalls (most distributions build it without). When it does,
/// the same syscalls arrive with the x32 bit set and must be refused too.
fn kernel_has_x32() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    // SAFETY: getpid through the x32 entry: harmless, ENOSYS when x32 is compiled out.
    let rc = unsafe { libc::syscall(X32_SYSCALL_BIT | libc::SYS_getpid) };
    !(rc < 0 && nix::errno::Errno::last() == nix::errno::Errno::ENOSYS)
}

/// The rules plus their x32 twins, when the kernel has x32.
fn with_x32(rules: BTreeMap<i64, Vec<SeccompRule>>, x32: bool) -> BTreeMap<i64, Vec<SeccompRule>> {
    if !x32 {
        return rules;
    }
    let mut out = rules.clone();
    for (nr, r) in rules {
        out.insert(nr | X32_SYSCALL_BIT, r);
    }
    out
}

/// Why the seccomp filters could not be built.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the seccomp filter: {0}")]
pub struct FilterError(String);

/// The two seccomp programs every native command gets (EPERM list, then ENOSYS list). Built once
/// at start; a syscall not listed is allowed. `sharing` says what calls share ([`Sharing`]).
pub fn seccomp_programs(sharing: Sharing) -> Result<Vec<BpfProgram>, FilterError> {
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| FilterError(format!("{e:?}")))?;
    let x32 = kernel_has_x32();
    [
        (denied_rules(sharing), libc::EPERM),
        (missing_rules(), libc::ENOSYS),
    ]
    .into_iter()
    .map(|(rules, errno)| {
        let filter = SeccompFilter::new(
            with_x32(rules, x32),
            SeccompAction::Allow,
            SeccompAction::Errno(errno as u32),
            arch,
        )
        .map_err(|e| FilterError(e.to_string()))?;
        BpfProgram::try_from(filter).map_err(|e| FilterError(e.to_string()))
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_only_get_file_rights() {
        let f = access_for(Grant::ReadExec, false);
        assert!(f.contains(AccessFs::Execute | AccessFs::ReadFile));
        assert!(!f.contains(AccessFs::ReadDir));
        assert_eq!(f & !AccessFs::from_file(TARGET_ABI), BitFlags::EMPTY);
    }

    #[test]
    fn the_workspace_is_executable_only_when_asked() {
        for writable in [true, false] {
            assert!(!workspace_access(writable, false).contains(AccessFs::Execute));
            assert!(workspace_access(writable, true).contains(AccessFs::Execute));
        }
        assert!(!workspace_access(false, true).contains(AccessFs::WriteFile));
        let rw = workspace_access(true, false);
        assert!(rw.contains(AccessFs::WriteFile | AccessFs::MakeReg | AccessFs::RemoveFile));
        assert!(rw.contains(AccessFs::Refer | AccessFs::Truncate));
        assert!(!rw.contains(AccessFs::MakeChar | AccessFs::MakeBlock));
        let ro = workspace_access(false, false);
        assert!(ro.contains(AccessFs::ReadFile | AccessFs::ReadDir));
        assert!(!ro.contains(AccessFs::WriteFile));
        assert!(!ro.contains(AccessFs::MakeReg));
    }

    #[test]
    fn read_paths_are_not_executable_and_etc_is_not_whole() {
        let sandbox = SandboxPolicy::build(None).unwrap();
        let rules = static_rules(&sandbox, &[PathBuf::from("/opt/tool")]);
        assert!(rules.contains(&(PathBuf::from("/usr"), Grant::ReadExec)));
        assert!(rules.contains(&(PathBuf::from("/opt/tool"), Grant::ReadExec)));
        assert!(rules.contains(&(PathBuf::from("/etc/passwd"), Grant::Read)));
        assert!(rules.contains(&(PathBuf::from("/dev/null"), Grant::ReadWrite)));
        assert!(!rules.iter().any(|(p, _)| p == Path::new("/etc")));
        assert!(!access_for(Grant::Read, true).contains(AccessFs::Execute));
    }

    #[test]
    fn toolchain_paths_get_their_own_grants() {
        let t = Toolchain {
            exec_paths: vec!["/opt/rust".into()],
            read_paths: vec!["/srv/registry".into()],
            write_paths: vec!["/srv/cache".into()],
            ..Toolchain::default()
        };
        assert_eq!(
            command_rules(&t),
            [
                (PathBuf::from("/opt/rust"), Grant::ReadExec),
                (PathBuf::from("/srv/registry"), Grant::Read),
                (PathBuf::from("/srv/cache"), Grant::ReadWrite),
            ]
        );
        assert!(command_rules(&Toolchain::default()).is_empty());
        assert!(!access_for(Grant::ReadWrite, true).contains(AccessFs::Execute));
    }

    #[test]
    fn missing_paths_are_skipped() {
        let sys = SystemPaths::open(&[
            (PathBuf::from("/no/such/dir"), Grant::ReadExec),
            (PathBuf::from("/dev/null"), Grant::ReadWrite),
        ]);
        assert_eq!(sys.skipped(), [PathBuf::from("/no/such/dir")]);
        assert_eq!(sys.granted().count(), 1);
    }

    #[test]
    fn seccomp_lists_cover_sockets_namespaces_and_io_uring() {
        let none = Sharing { ipc: false };
        let denied = denied_rules(none);
        assert!(!denied.contains_key(&libc::SYS_shmget));
        let shared = denied_rules(Sharing { ipc: true });
        for nr in [
            libc::SYS_shmget,
            libc::SYS_semget,
            libc::SYS_msgget,
            libc::SYS_mq_open,
        ] {
            assert!(shared[&nr].is_empty(), "{nr} is refused outright");
        }
        assert!(
            denied[&libc::SYS_socket].is_empty(),
            "socket() is refused outright"
        );
        assert_eq!(denied[&libc::SYS_socketpair].len(), 15);
        assert_eq!(denied[&libc::SYS_clone].len(), 7);
        let missing = missing_rules();
        assert!(missing.contains_key(&libc::SYS_io_uring_setup));
        assert!(missing.contains_key(&libc::SYS_clone3));
        let twins = with_x32(denied.clone(), true);
        assert!(twins.contains_key(&(libc::SYS_socket | X32_SYSCALL_BIT)));
        assert_eq!(twins.len(), 2 * denied.len());
        assert_eq!(with_x32(denied.clone(), false).len(), denied.len());
        let programs = seccomp_programs(Sharing { ipc: true }).unwrap();
        assert_eq!(programs.len(), 2);
        assert!(programs.iter().all(|p| !p.is_empty()));
    }

    /// The filters, applied to a thread of their own: another process's limits and priority
    /// are refused; the caller's own are not, and a path's mode may still change.
    #[test]
    fn other_processes_are_out_of_reach() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let path = std::ffi::CString::new(file.as_os_str().as_encoded_bytes()).unwrap();
        let parent = std::process::id() as libc::pid_t;
        let results = std::thread::spawn(move || {
            let programs = seccomp_programs(Sharing { ipc: true }).unwrap();
            // SAFETY: PR_SET_NO_NEW_PRIVS with plain integer arguments, on this thread.
            unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
            for p in &programs {
                seccompiler::apply_filter(p).unwrap();
            }
            let errno = |rc: i64| {
                if rc < 0 {
                    nix::errno::Errno::last_raw()
                } else {
                    0
                }
            };
            let mut lim: libc::rlimit64 = libc::rlimit64 {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: raw system calls with valid pointers to locals.
            unsafe {
                [
                    errno(
                        libc::prlimit64(parent, libc::RLIMIT_NOFILE, std::ptr::null(), &mut lim)
                            as i64,
                    ),
                    errno(
                        libc::prlimit64(0, libc::RLIMIT_NOFILE, std::ptr::null(), &mut lim) as i64,
                    ),
                    errno(libc::setpriority(libc::PRIO_USER, 0, 19) as i64),
                    errno(libc::setpriority(libc::PRIO_PROCESS, parent as u32, 19) as i64),
                    errno(libc::chmod(path.as_ptr(), 0o600) as i64),
                    errno(
                        libc::utimensat(libc::AT_FDCWD, path.as_ptr(), std::ptr::null(), 0) as i64,
                    ),
                ]
            }
        })
        .join()
        .unwrap();
        let eperm = libc::EPERM;
        assert_eq!(results, [eperm, 0, eperm, eperm, 0, 0], "{results:?}");
    }
}
