//! What the native runner finds out once at start: who commands run as, the policy's paths
//! opened, which tree isolation works here, and the seccomp filters for it, probed. Shared by
//! the runner and `runbox doctor`, so both see the same; it runs nothing of a command.

use super::confine::{self, SystemPaths};
use super::isolation::{self, Mechanism};
use super::probe::{self, Protections};
use super::spawn::Identity;
use crate::policy::{self, Policy};

/// Who native commands run as: the policy's sandbox ids when runbox is root, runbox's own ids
/// otherwise.
pub fn identity_for(sandbox: &policy::SandboxPolicy) -> Identity {
    let euid = nix::unistd::geteuid();
    if euid.is_root() {
        Identity::Drop {
            uid: sandbox.user,
            gid: sandbox.group,
        }
    } else {
        Identity::Keep {
            uid: euid.as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        }
    }
}

/// Opens the policy's paths, probes how a call's tree can be held together, builds the seccomp
/// filters for that mechanism and probes the kernel with them.
pub fn prepare(
    policy: &Policy,
    identity: Identity,
) -> (SystemPaths, Vec<seccompiler::BpfProgram>, Protections) {
    let binaries: Vec<_> = policy.native.values().map(|c| c.path.clone()).collect();
    let system = SystemPaths::open(&confine::static_rules(&policy.sandbox, &binaries));
    let namespaces = probe::probe_namespaces(identity);
    let reaper = probe::probe_reaper();
    let mechanism = isolation::choose(policy.sandbox.isolation, namespaces.is_ok(), reaper.is_ok());
    // Without an IPC namespace of its own, a call must not reach the shared SysV IPC objects.
    let seccomp = confine::seccomp_programs(confine::Sharing {
        ipc: mechanism != Some(Mechanism::Namespaces),
    });
    let protections = Protections::probe(
        identity,
        policy.sandbox.isolation,
        (namespaces, reaper),
        &system,
        seccomp
            .as_deref()
            .map_err(|e| probe::ProbeError::FilterBuild(e.to_string())),
    );
    (system, seccomp.unwrap_or_default(), protections)
}
