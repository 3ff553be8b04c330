//! What confinement this machine gives native commands, found by trying each piece once at start:
//! Landlock (the kernel's ABI and how much of runbox's ruleset it enforces), seccomp, the user,
//! PID and IPC namespaces, what the reaper mode needs (`/proc/PID/task/TID/children`), and (for
//! information) cgroups; the tree isolation in force follows from them and the policy
//! ([`isolation`](super::isolation)). `runbox doctor` prints the result with a fix
//! for each missing piece; the runner refuses native calls when the policy requires confinement
//! and a piece is missing.
//!
//! Each probe runs in a throw-away thread or child process, so the server itself is never
//! restricted.

pub use crate::native::access::{WorkspaceAccessError, permits, workspace_access};
use crate::native::confine::{self, SystemPaths};
use crate::native::isolation::{self, Mechanism};
use crate::native::spawn::{Identity, NAMESPACES};
use crate::policy::Isolation;
use landlock::RulesetStatus;
use seccompiler::BpfProgram;
use std::path::Path;

/// How much of runbox's Landlock ruleset the kernel enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Every requested right is enforced.
    Full,
    /// Some rights are missing on this kernel (older ABI).
    Partial,
    /// Landlock is absent or disabled.
    None,
}

impl Enforcement {
    /// Lower-case name for logs and `doctor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "fully enforced",
            Self::Partial => "partly enforced",
            Self::None => "not enforced",
        }
    }
}

/// Why a piece of confinement is not available here; `doctor` prints it, the runner's refusal
/// names it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProbeError {
    /// The seccomp filters could not be built for this architecture.
    #[error("{0}")]
    FilterBuild(String),
    /// The kernel refused to install a filter.
    #[error("{0}")]
    FilterInstall(String),
    /// A pipe for the namespace probe could not be made.
    #[error("{0}")]
    Pipe(nix::Error),
    /// The kernel refused the namespaces.
    #[error("clone(CLONE_NEWUSER|CLONE_NEWPID|CLONE_NEWIPC): {0}")]
    Clone(nix::Error),
    /// The uid/gid maps of the probe child could not be written.
    #[error("writing uid_map/gid_map: {0}")]
    IdMaps(String),
    /// The probe's own thread panicked.
    #[error("the probe thread panicked")]
    ThreadPanicked,
    /// The kernel does not list a process's children (`CONFIG_PROC_CHILDREN`), which the
    /// reaper's tree walk needs.
    #[error("/proc/self/task/TID/children is unreadable: {0}")]
    NoChildrenList(String),
}

/// The probe results.
#[derive(Debug, Clone)]
pub struct Protections {
    /// runbox's effective uid.
    pub euid: u32,
    /// Who native commands run as.
    pub identity: Identity,
    /// The kernel's Landlock ABI (`None`: no Landlock).
    pub landlock_abi: Option<i32>,
    /// How much of the ruleset holds.
    pub landlock: Enforcement,
    /// Why Landlock is not fully enforced, when it is not.
    pub landlock_detail: Option<String>,
    /// Whether the seccomp filters install (`Err` says why not).
    pub seccomp: Result<(), ProbeError>,
    /// Whether a user + PID + IPC namespace can be made (`Err` says why not).
    pub namespaces: Result<(), ProbeError>,
    /// Whether the reaper mode works here (`Err` says why not).
    pub reaper: Result<(), ProbeError>,
    /// The policy's `sandbox.isolation`.
    pub isolation: Isolation,
    /// cgroup facilities present (informational: the PID namespace does the killing).
    pub cgroups: String,
}

impl Protections {
    /// Runs the remaining probes; `trees` are the namespace and reaper probes' results
    /// ([`probe_namespaces`], [`probe_reaper`]), run first because the seccomp filters depend on
    /// the mechanism they select.
    pub fn probe(
        identity: Identity,
        isolation: Isolation,
        trees: (Result<(), ProbeError>, Result<(), ProbeError>),
        system: &SystemPaths,
        seccomp: Result<&[BpfProgram], ProbeError>,
    ) -> Self {
        let landlock_abi = landlock_abi();
        let (landlock, landlock_detail) = probe_landlock(system);
        let seccomp = seccomp.and_then(probe_seccomp);
        Self {
            euid: nix::unistd::geteuid().as_raw(),
            identity,
            landlock_abi,
            landlock,
            landlock_detail,
            seccomp,
            namespaces: trees.0,
            reaper: trees.1,
            isolation,
            cgroups: cgroup_summary(),
        }
    }

    /// The tree isolation in force, if the one the policy asks for works here.
    pub fn mechanism(&self) -> Option<Mechanism> {
        isolation::choose(self.isolation, self.namespaces.is_ok(), self.reaper.is_ok())
    }

    /// Whether every protection is in force.
    pub fn complete(&self) -> bool {
        self.landlock == Enforcement::Full && self.seccomp.is_ok() && self.mechanism().is_some()
    }

    /// One line naming what confines a native command here, for the audit log.
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("landlock {}", self.landlock.as_str())];
        parts.push(
            if self.seccomp.is_ok() {
                "seccomp"
            } else {
                "no seccomp"
            }
            .to_owned(),
        );
        parts.push(
            self.mechanism()
                .map_or("no tree isolation", Mechanism::as_str)
                .to_owned(),
        );
        let (Identity::Drop { uid, .. } | Identity::Keep { uid, .. }) = self.identity;
        parts.push(format!("uid {uid}"));
        format!("native: {}", parts.join(", "))
    }

    /// One line per missing protection: what is missing and how to fix it.
    pub fn missing(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.landlock != Enforcement::Full {
            out.push(format!(
                "Landlock {} (kernel ABI {}; runbox needs ABI {}): run Linux 6.12 or newer with \
                 CONFIG_SECURITY_LANDLOCK=y and `landlock` in the `lsm=` boot parameter{}",
                self.landlock.as_str(),
                self.landlock_abi.map_or("none".into(), |a| a.to_string()),
                confine::TARGET_ABI as i32,
                self.landlock_detail
                    .as_deref()
                    .map_or(String::new(), |d| format!(" ({d})"))
            ));
        }
        if let Err(e) = &self.seccomp {
            out.push(format!(
                "seccomp unavailable ({e}): use a kernel built with CONFIG_SECCOMP_FILTER=y, and \
                 do not run runbox under a seccomp profile that forbids seccomp(2)"
            ));
        }
        if self.mechanism().is_some() {
            return out;
        }
        if let (Isolation::Reaper | Isolation::Auto, Err(e)) = (self.isolation, &self.reaper) {
            out.push(format!(
                "the per-call reaper is unavailable ({e}): use a kernel built with \
                 CONFIG_PROC_CHILDREN=y (every distribution kernel is)"
            ));
        }
        if self.isolation != Isolation::Reaper
            && let Err(e) = &self.namespaces
        {
            out.push(format!(
                "user + PID + IPC namespaces unavailable ({e}): run runbox as root, or allow \
                 unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, \
                 user.max_user_namespaces > 0, and on Ubuntu \
                 kernel.apparmor_restrict_unprivileged_userns=0 or an AppArmor profile for runbox); \
                 or set sandbox.isolation = \"auto\" or \"reaper\" to use the per-call reaper \
                 instead (docs/security.md, \"Known limits\")"
            ));
        }
        out
    }
}

/// The kernel's Landlock ABI version, or `None`.
fn landlock_abi() -> Option<i32> {
    const LANDLOCK_CREATE_RULESET_VERSION: libc::c_uint = 1;
    // SAFETY: the documented version query: no ruleset, size 0, the version flag.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<libc::c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    (abi > 0).then_some(abi as i32)
}

/// Enforces a ruleset of the real shape in a throw-away thread and reads back the status.
fn probe_landlock(system: &SystemPaths) -> (Enforcement, Option<String>) {
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            return (
                Enforcement::None,
                Some(format!("no temp dir for the probe: {e}")),
            );
        }
    };
    let result = std::thread::scope(|s| {
        s.spawn(|| {
            let ws = std::fs::File::open(dir.path()).map_err(|e| e.to_string())?;
            let rule = confine::WorkspaceRule {
                root: &ws,
                writable: true,
                exec: false,
            };
            let created = confine::ruleset(system, None, rule, &ws).map_err(|e| e.to_string())?;
            created.restrict_self().map_err(|e| e.to_string())
        })
        .join()
    });
    match result {
        Ok(Ok(status)) => match status.ruleset {
            RulesetStatus::FullyEnforced => (Enforcement::Full, None),
            RulesetStatus::PartiallyEnforced => (
                Enforcement::Partial,
                Some("the kernel lacks some of the rights runbox asks for".into()),
            ),
            RulesetStatus::NotEnforced => (
                Enforcement::None,
                Some("Landlock is not enabled in this kernel".into()),
            ),
        },
        Ok(Err(e)) => (Enforcement::None, Some(e)),
        Err(_) => (Enforcement::None, Some("the probe thread panicked".into())),
    }
}

/// Installs the filters in a throw-away thread.
fn probe_seccomp(programs: &[BpfProgram]) -> Result<(), ProbeError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            programs.iter().try_for_each(|p| {
                seccompiler::apply_filter(p).map_err(|e| ProbeError::FilterInstall(e.to_string()))
            })
        })
        .join()
        .unwrap_or(Err(ProbeError::ThreadPanicked))
    })
}

/// Whether the reaper's tree walk works: this thread's `children` list must be readable.
pub fn probe_reaper() -> Result<(), ProbeError> {
    let tid = nix::unistd::gettid();
    std::fs::read_to_string(format!("/proc/self/task/{tid}/children"))
        .map(drop)
        .map_err(|e| ProbeError::NoChildrenList(e.to_string()))
}

/// Makes a child in the namespaces native calls get ([`NAMESPACES`]), maps its ids, lets it
/// exit.
pub fn probe_namespaces(identity: Identity) -> Result<(), ProbeError> {
    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(ProbeError::Pipe)?;
    let rfd = std::os::fd::AsRawFd::as_raw_fd(&r);
    let wfd = std::os::fd::AsRawFd::as_raw_fd(&w);
    let mut stack = vec![0u8; 64 * 1024];
    let child = Box::new(move || -> isize {
        // SAFETY: in the cloned child: close(2), read(2) and _exit(2) only. Its own copy of the
        // write end must go, or the read below would never see EOF.
        unsafe {
            libc::close(wfd);
            let mut b = [0u8; 1];
            libc::read(rfd, b.as_mut_ptr().cast(), 1);
            libc::_exit(0)
        }
    });
    // SAFETY: the child only reads a pipe and exits (async-signal-safe).
    let pid = unsafe { nix::sched::clone(child, &mut stack, NAMESPACES, Some(libc::SIGCHLD)) }
        .map_err(ProbeError::Clone)?;
    drop(r);
    let mapped = crate::native::spawn::write_id_maps(pid, identity)
        .map_err(|e| ProbeError::IdMaps(e.to_string()));
    drop(w);
    let _ = nix::sys::wait::waitpid(pid, None);
    mapped
}

/// Which cgroup facilities exist, for `doctor`.
fn cgroup_summary() -> String {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let v2: Vec<&str> = mounts
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
            (kind == "cgroup2").then_some(at)
        })
        .collect();
    let freezer = Path::new("/sys/fs/cgroup/freezer").is_dir();
    let pids = Path::new("/sys/fs/cgroup/pids").is_dir();
    format!(
        "cgroup2 {}; cgroup v1 freezer {}, pids {}",
        if v2.is_empty() {
            "not mounted".to_owned()
        } else {
            format!("mounted at {}", v2.join(", "))
        },
        if freezer { "present" } else { "absent" },
        if pids { "present" } else { "absent" },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> Protections {
        Protections {
            euid: 0,
            identity: Identity::Drop {
                uid: 65534,
                gid: 65534,
            },
            landlock_abi: Some(7),
            landlock: Enforcement::Full,
            landlock_detail: None,
            seccomp: Ok(()),
            namespaces: Ok(()),
            reaper: Ok(()),
            isolation: Isolation::Auto,
            cgroups: String::new(),
        }
    }

    #[test]
    fn permission_bits_follow_owner_then_group_then_other() {
        assert!(permits(0o700, 5, 5, 5, 9, 0o7));
        assert!(
            !permits(0o077, 5, 5, 5, 5, 0o1),
            "the owner class wins even when denied"
        );
        assert!(permits(0o750, 1, 7, 2, 7, 0o5));
        assert!(!permits(0o750, 1, 7, 2, 7, 0o2));
        assert!(permits(0o755, 0, 0, 65534, 65534, 0o5));
        assert!(!permits(0o755, 0, 0, 65534, 65534, 0o7));
        assert!(permits(0o1777, 0, 0, 65534, 65534, 0o7));
    }

    #[test]
    fn own_identity_always_passes_the_workspace_check() {
        let keep = Identity::Keep { uid: 1, gid: 1 };
        assert!(workspace_access(Path::new("/nonexistent"), keep, true).is_ok());
        let nobody = Identity::Drop {
            uid: 65534,
            gid: 65534,
        };
        let dir = tempfile::tempdir().unwrap();
        let e = workspace_access(dir.path(), nobody, true).unwrap_err();
        assert!(
            matches!(
                e,
                WorkspaceAccessError::Root {
                    uid: 65534,
                    write: true,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            e.to_string()
                .starts_with("uid 65534 cannot write the workspace"),
            "{e}"
        );
    }

    #[test]
    fn each_missing_piece_is_named_with_a_fix() {
        let p = complete();
        assert!(p.complete());
        assert!(p.missing().is_empty());
        let mut q = p.clone();
        q.landlock = Enforcement::Partial;
        q.namespaces = Err(ProbeError::Clone(nix::Error::EPERM));
        q.reaper = Err(ProbeError::NoChildrenList("ENOENT".into()));
        assert!(!q.complete());
        let m = q.missing();
        assert_eq!(m.len(), 3);
        assert!(m[0].contains("Landlock partly enforced") && m[0].contains("6.12"));
        assert!(m[1].contains("CONFIG_PROC_CHILDREN"));
        assert!(m[2].contains("unprivileged_userns_clone"));
        // Without namespaces, auto falls back to the reaper and nothing is missing for it.
        let mut docker = p.clone();
        docker.namespaces = Err(ProbeError::Clone(nix::Error::EPERM));
        assert!(docker.complete());
        assert_eq!(docker.mechanism(), Some(Mechanism::Reaper));
        assert!(docker.summary().contains("reaper"), "{}", docker.summary());
        docker.isolation = Isolation::Namespaces;
        assert!(!docker.complete());
        assert!(docker.missing()[0].contains("sandbox.isolation"));
        let mut r = p;
        r.seccomp = Err(ProbeError::FilterInstall("EINVAL".into()));
        assert!(r.missing()[0].contains("CONFIG_SECCOMP_FILTER"));
    }
}
