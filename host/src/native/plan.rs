//! The inputs of one child, built before `clone`: its environment, rlimits, C strings and
//! descriptors. Pure apart from opening the stdin source and the pipes.

use super::NATIVE_PATH;
use super::scratch::CallScratch;
use crate::error::RunError;
use crate::limits::Limits;
use crate::policy::NativeCommand;
use crate::policy::toolchain::MemoryRlimit;
use nix::sys::resource::Resource;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};

/// The command's whole environment: runbox's fixed variables, then the ones `env_pass` took
/// from runbox's environment at start (`passed`), then the policy's `env`.
pub(super) fn environment(
    command: &NativeCommand,
    passed: &[(String, String)],
    scratch: &CallScratch<'_>,
) -> Result<Vec<CString>, RunError> {
    let mut env = std::collections::BTreeMap::new();
    env.insert("PATH".to_owned(), NATIVE_PATH.to_owned());
    env.insert("HOME".to_owned(), scratch.home.display().to_string());
    env.insert("TMPDIR".to_owned(), scratch.tmp.display().to_string());
    env.insert("LANG".to_owned(), "C.UTF-8".to_owned());
    for (k, v) in passed {
        env.insert(k.clone(), v.clone());
    }
    for (k, v) in &command.env {
        env.insert(k.clone(), v.clone());
    }
    env.iter()
        .map(|(k, v)| cstring(format!("{k}={v}").as_bytes()))
        .collect()
}

/// The rlimits of every process of the command, capped at runbox's own hard limits (which an
/// unprivileged process cannot raise). `RLIMIT_NPROC` is `processes` times `nproc_share`: 1 in a
/// namespace of its own (the kernel counts that call only), the most concurrent calls when the
/// calls share the uid's count (the reaper mode, which bounds each call's tree itself).
/// `memory_bytes` becomes `RLIMIT_AS` or `RLIMIT_DATA` as the command's `memory_rlimit` says,
/// or neither (`off`: runbox's own limits stay).
pub(super) fn rlimits(
    l: &Limits,
    nproc_share: u64,
    memory: MemoryRlimit,
) -> Vec<(Resource, u64, u64)> {
    let nproc = l.processes.saturating_mul(nproc_share.max(1));
    let cap =
        |r: Resource, v: u64| nix::sys::resource::getrlimit(r).map_or(v, |(_, hard)| v.min(hard));
    let memory = match memory {
        MemoryRlimit::AddressSpace => Some(Resource::RLIMIT_AS),
        MemoryRlimit::Data => Some(Resource::RLIMIT_DATA),
        MemoryRlimit::Off => None,
    };
    let mut out = vec![
        // Soft = hard: SIGKILL at the limit. (A SIGXCPU at a lower soft limit would be ignored
        // by the command, which is PID 1 of its namespace and so immune to default-action
        // signals other than SIGKILL.)
        (
            Resource::RLIMIT_CPU,
            cap(Resource::RLIMIT_CPU, l.cpu_seconds),
            cap(Resource::RLIMIT_CPU, l.cpu_seconds),
        ),
        (
            Resource::RLIMIT_FSIZE,
            cap(Resource::RLIMIT_FSIZE, l.file_size_bytes),
            cap(Resource::RLIMIT_FSIZE, l.file_size_bytes),
        ),
        (
            Resource::RLIMIT_NOFILE,
            cap(Resource::RLIMIT_NOFILE, l.open_files),
            cap(Resource::RLIMIT_NOFILE, l.open_files),
        ),
        (
            Resource::RLIMIT_NPROC,
            cap(Resource::RLIMIT_NPROC, nproc),
            cap(Resource::RLIMIT_NPROC, nproc),
        ),
        (Resource::RLIMIT_CORE, 0, 0),
    ];
    if let Some(r) = memory {
        out.push((r, cap(r, l.memory_bytes), cap(r, l.memory_bytes)));
    }
    out
}

pub(super) fn cstring(bytes: &[u8]) -> Result<CString, RunError> {
    CString::new(bytes)
        .map_err(|_| RunError::invalid("an argument or variable contains a NUL byte"))
}

pub(super) fn pipe() -> nix::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
}

/// The request's stdin as a descriptor: `/dev/null` when empty, else a memfd holding the bytes
/// (so no writer task can block on a command that does not read).
pub(super) fn stdin_fd(bytes: &[u8]) -> std::io::Result<OwnedFd> {
    use std::io::{Seek, Write};
    if bytes.is_empty() {
        return Ok(std::fs::File::open("/dev/null")?.into());
    }
    let fd = nix::sys::memfd::memfd_create(c"runbox-stdin", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
        .map_err(std::io::Error::from)?;
    let mut file = std::fs::File::from(fd);
    file.write_all(bytes)?;
    file.rewind()?;
    Ok(file.into())
}

/// Moves a descriptor above 2 so the child's `dup2` onto 0–2 cannot clobber another source.
pub(super) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, RunError> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let raw = nix::fcntl::fcntl(&fd, nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3))
        .map_err(|e| RunError::internal(format!("fcntl: {e}")))?;
    // SAFETY: fcntl returned a new descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(raw) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rlimits_cover_every_resource_and_core_is_off() {
        let r = rlimits(&Limits::default(), 1, MemoryRlimit::AddressSpace);
        let shared = rlimits(&Limits::default(), 8, MemoryRlimit::AddressSpace);
        let nproc = |r: &[(Resource, u64, u64)]| {
            r.iter()
                .find(|(res, _, _)| *res == Resource::RLIMIT_NPROC)
                .map(|x| x.1)
        };
        let (own, hard) = nix::sys::resource::getrlimit(Resource::RLIMIT_NPROC).unwrap();
        let _ = own;
        assert_eq!(
            nproc(&shared),
            Some((Limits::default().processes * 8).min(hard))
        );
        let names: Vec<_> = r.iter().map(|(res, _, _)| *res).collect();
        for want in [
            Resource::RLIMIT_CPU,
            Resource::RLIMIT_AS,
            Resource::RLIMIT_FSIZE,
            Resource::RLIMIT_NOFILE,
            Resource::RLIMIT_NPROC,
            Resource::RLIMIT_CORE,
        ] {
            assert!(names.contains(&want), "{want:?}");
        }
        assert!(r.contains(&(Resource::RLIMIT_CORE, 0, 0)));
    }

    #[test]
    fn memory_rlimit_picks_the_resource_or_none() {
        let has = |m: MemoryRlimit, want: Resource| {
            rlimits(&Limits::default(), 1, m)
                .iter()
                .any(|(r, _, _)| *r == want)
        };
        assert!(has(MemoryRlimit::AddressSpace, Resource::RLIMIT_AS));
        assert!(!has(MemoryRlimit::AddressSpace, Resource::RLIMIT_DATA));
        assert!(has(MemoryRlimit::Data, Resource::RLIMIT_DATA));
        assert!(!has(MemoryRlimit::Data, Resource::RLIMIT_AS));
        for r in [Resource::RLIMIT_AS, Resource::RLIMIT_DATA] {
            assert!(!has(MemoryRlimit::Off, r), "{r:?}");
        }
    }
}
