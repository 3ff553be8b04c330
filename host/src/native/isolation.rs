//! Which mechanism holds a native call's process tree together, chosen once at start from the
//! policy's `sandbox.isolation` and what the probes found, and what each one guarantees (the
//! words `doctor`, the audit record and the refusal messages use). Pure: it probes nothing and
//! never runs anything.

use crate::policy::Isolation;

/// The tree isolation in force for native calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// A new user + PID + IPC namespace per call; the command is its PID 1.
    Namespaces,
    /// No namespace: a per-call reaper process, the command's parent and child subreaper, kills
    /// and reaps every process of the call (the mode Docker's default seccomp profile allows).
    Reaper,
}

impl Mechanism {
    /// The name in `doctor`, logs and the audit record's `sandbox.confinement.mechanism`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Namespaces => "user+pid+ipc namespaces",
            Self::Reaper => "per-call reaper (no namespaces)",
        }
    }

    /// What the mechanism guarantees, in one line for `doctor`.
    pub fn guarantees(self) -> &'static str {
        match self {
            Self::Namespaces => {
                "a user + PID + IPC namespace per call: the whole tree dies with its PID 1; \
                 RLIMIT_NPROC counts this call only; SysV IPC and POSIX message queues are \
                 private to the call and freed with it"
            }
            Self::Reaper => {
                "a reaper process per call (child subreaper, unkillable by the command): every \
                 orphan (setsid, double fork) comes back to it and the whole tree is killed on \
                 exit, timeout, cancellation or server death; the call's processes and threads \
                 are counted and the call is stopped with PROCESS_LIMIT past the policy's \
                 `processes`, within RLIMIT_NPROC = processes x max_concurrent shared by the \
                 sandbox uid; SysV IPC and POSIX message queues are refused by seccomp"
            }
        }
    }
}

/// The mechanism a policy gets on a machine where namespaces and the reaper do or do not work;
/// `None` when the one the policy asks for is unavailable.
pub fn choose(policy: Isolation, namespaces: bool, reaper: bool) -> Option<Mechanism> {
    match policy {
        Isolation::Namespaces => namespaces.then_some(Mechanism::Namespaces),
        Isolation::Reaper => reaper.then_some(Mechanism::Reaper),
        Isolation::Auto if namespaces => Some(Mechanism::Namespaces),
        Isolation::Auto => reaper.then_some(Mechanism::Reaper),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_prefers_namespaces_and_falls_back_to_the_reaper() {
        assert_eq!(
            choose(Isolation::Auto, true, true),
            Some(Mechanism::Namespaces)
        );
        assert_eq!(
            choose(Isolation::Auto, false, true),
            Some(Mechanism::Reaper)
        );
        assert_eq!(choose(Isolation::Auto, false, false), None);
        assert_eq!(
            choose(Isolation::Reaper, true, true),
            Some(Mechanism::Reaper)
        );
        assert_eq!(choose(Isolation::Namespaces, false, true), None);
        assert_eq!(choose(Isolation::Reaper, true, false), None);
    }
}
