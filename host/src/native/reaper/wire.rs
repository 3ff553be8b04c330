//! What the server and a call's reaper tell each other: the plan of the command (JSON in a memfd,
//! read once by the reaper at start), the fixed descriptor numbers the reaper finds its ends on,
//! and the fixed-size reports the reaper writes back (started or failed, then how the command
//! ended). Pure encoding and decoding; it must not trust the bytes it decodes to be well formed.

use crate::native::spawn::Identity;
use nix::sys::resource::Resource;
use seccompiler::{BpfProgram, sock_filter};
use serde::{Deserialize, Serialize};

/// `argv[1]` of the runbox binary started as a reaper.
pub const REAPER_ARG: &str = "__native-reaper";
/// Descriptor of the plan (a memfd) in the reaper.
pub const PLAN_FD: i32 = 3;
/// Descriptor of the control pipe's read end: a byte asks for the kill, EOF means the server is
/// gone (and the tree is killed as well).
pub const CONTROL_FD: i32 = 4;
/// Descriptor of the report pipe's write end.
pub const REPORT_FD: i32 = 5;
/// Descriptors of the command's stdin, stdout and stderr.
pub const STDIO_FDS: [i32; 3] = [6, 7, 8];
/// Descriptor of the working directory.
pub const CWD_FD: i32 = 9;
/// Descriptor of the Landlock ruleset, when there is one.
pub const RULESET_FD: i32 = 10;
/// Descriptor of the call cgroup's `cgroup.procs`, when there is one.
pub const CGROUP_FD: i32 = 11;
/// The first descriptor number not handed to the reaper.
pub const FIRST_FREE_FD: i32 = 12;
/// Largest plan the reaper reads (argv and environment are bounded far below this by the
/// policy and the request size).
pub const MAX_PLAN_BYTES: u64 = 16 * 1024 * 1024;

/// The rlimits a plan may carry, by index.
const RESOURCES: [Resource; 7] = [
    Resource::RLIMIT_CPU,
    Resource::RLIMIT_AS,
    Resource::RLIMIT_FSIZE,
    Resource::RLIMIT_NOFILE,
    Resource::RLIMIT_NPROC,
    Resource::RLIMIT_CORE,
    Resource::RLIMIT_DATA,
];

/// Everything the reaper needs besides its descriptors to start the command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// The binary.
    pub path: Vec<u8>,
    /// `argv`, without NULs.
    pub argv: Vec<Vec<u8>>,
    /// `envp` as `KEY=VALUE`, without NULs.
    pub envp: Vec<Vec<u8>>,
    /// Whether [`RULESET_FD`] holds a Landlock ruleset.
    pub ruleset: bool,
    /// The seccomp programs, each instruction packed by [`pack`].
    pub seccomp: Vec<Vec<u64>>,
    /// Who the command runs as.
    pub identity: Identity,
    /// `(index in RESOURCES, soft, hard)`.
    pub rlimits: Vec<(u8, u64, u64)>,
    /// Most processes and threads the call's tree may have at once.
    pub max_tasks: u64,
    /// Whether [`CGROUP_FD`] holds the call cgroup's `cgroup.procs`.
    #[serde(default)]
    pub cgroup: bool,
}

/// Why a plan could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The JSON is malformed.
    #[error("malformed reaper plan: {0}")]
    Json(#[from] serde_json::Error),
    /// An rlimit index is out of range.
    #[error("unknown rlimit index {0}")]
    Resource(u8),
}

impl Plan {
    /// The rlimits as `(resource, soft, hard)`.
    pub fn resources(&self) -> Result<Vec<(Resource, u64, u64)>, PlanError> {
        self.rlimits
            .iter()
            .map(|&(i, soft, hard)| {
                RESOURCES
                    .get(usize::from(i))
                    .map(|r| (*r, soft, hard))
                    .ok_or(PlanError::Resource(i))
            })
            .collect()
    }

    /// The seccomp programs, unpacked.
    pub fn programs(&self) -> Vec<BpfProgram> {
        self.seccomp
            .iter()
            .map(|p| p.iter().map(|&i| unpack(i)).collect())
            .collect()
    }
}

/// Encodes rlimits for a plan (a resource outside [`RESOURCES`] is left out).
pub fn encode_rlimits(limits: &[(Resource, u64, u64)]) -> Vec<(u8, u64, u64)> {
    limits
        .iter()
        .filter_map(|&(r, soft, hard)| {
            let i = RESOURCES.iter().position(|x| *x == r)?;
            Some((u8::try_from(i).ok()?, soft, hard))
        })
        .collect()
}

/// One BPF instruction as a `u64`: code, jt, jf, k.
pub fn pack(i: &sock_filter) -> u64 {
    (u64::from(i.code) << 48) | (u64::from(i.jt) << 40) | (u64::from(i.jf) << 32) | u64::from(i.k)
}

fn unpack(v: u64) -> sock_filter {
    sock_filter {
        code: (v >> 48) as u16,
        jt: (v >> 40) as u8,
        jf: (v >> 32) as u8,
        k: v as u32,
    }
}

/// Size of one report on the pipe (below `PIPE_BUF`, so each is written whole).
pub const REPORT_BYTES: usize = 24;

/// What the reaper tells the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Report {
    /// The command has exec'd.
    Started,
    /// The command could not be started: the step and errno of [`crate::native::spawn::Step`].
    Failed {
        /// The failed step (`Step as u32`); 0 when the reaper itself failed before the command.
        step: u32,
        /// The OS error.
        errno: i32,
    },
    /// The tree is gone: the command's own wait status and CPU time, the processes killed at
    /// the end, and whether the tree was killed for passing the process limit.
    Ended {
        /// Raw wait status of the command.
        status: i32,
        /// Its user + system CPU seconds.
        cpu_seconds: f64,
        /// Live processes the final kill found.
        killed: u32,
        /// Whether the reaper killed the tree for having more than `max_tasks`.
        over_process_limit: bool,
    },
}

impl Report {
    /// The fixed-size encoding.
    pub fn encode(self) -> [u8; REPORT_BYTES] {
        let (kind, a, b, c, d): (u32, u32, i32, u32, u64) = match self {
            Self::Started => (1, 0, 0, 0, 0),
            Self::Failed { step, errno } => (2, step, errno, 0, 0),
            Self::Ended {
                status,
                cpu_seconds,
                killed,
                over_process_limit,
            } => (
                3,
                killed,
                status,
                u32::from(over_process_limit),
                cpu_seconds.to_bits(),
            ),
        };
        let mut out = [0u8; REPORT_BYTES];
        out[0..4].copy_from_slice(&kind.to_le_bytes());
        out[4..8].copy_from_slice(&a.to_le_bytes());
        out[8..12].copy_from_slice(&b.to_le_bytes());
        out[12..16].copy_from_slice(&c.to_le_bytes());
        out[16..24].copy_from_slice(&d.to_le_bytes());
        out
    }

    /// Decodes one report; `None` for anything else.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let word = |at: usize| -> Option<[u8; 4]> { bytes.get(at..at + 4)?.try_into().ok() };
        let kind = u32::from_le_bytes(word(0)?);
        let a = u32::from_le_bytes(word(4)?);
        let b = i32::from_le_bytes(word(8)?);
        let c = u32::from_le_bytes(word(12)?);
        let d = u64::from_le_bytes(bytes.get(16..24)?.try_into().ok()?);
        match kind {
            1 => Some(Self::Started),
            2 => Some(Self::Failed { step: a, errno: b }),
            3 => Some(Self::Ended {
                status: b,
                cpu_seconds: f64::from_bits(d),
                killed: a,
                over_process_limit: c != 0,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_round_trip_and_garbage_is_refused() {
        for r in [
            Report::Started,
            Report::Failed {
                step: 13,
                errno: libc::ENOENT,
            },
            Report::Ended {
                status: libc::SIGKILL,
                cpu_seconds: 1.25,
                killed: 7,
                over_process_limit: true,
            },
        ] {
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
        assert_eq!(Report::decode(&[1, 0, 0]), None);
        assert_eq!(Report::decode(&[9; REPORT_BYTES]), None);
    }

    #[test]
    fn plans_round_trip_with_filters_and_rlimits() {
        let programs =
            crate::native::confine::seccomp_programs(crate::native::confine::Sharing { ipc: true })
                .unwrap();
        let limits = vec![
            (Resource::RLIMIT_NPROC, 64, 64),
            (Resource::RLIMIT_CORE, 0, 0),
            (Resource::RLIMIT_DATA, 1 << 30, 1 << 30),
        ];
        let plan = Plan {
            path: b"/bin/sh".to_vec(),
            argv: vec![b"sh".to_vec()],
            envp: vec![b"A=b".to_vec()],
            ruleset: true,
            seccomp: programs
                .iter()
                .map(|p| p.iter().map(pack).collect())
                .collect(),
            identity: Identity::Drop {
                uid: 65534,
                gid: 65534,
            },
            rlimits: encode_rlimits(&limits),
            max_tasks: 64,
            cgroup: true,
        };
        let back: Plan = serde_json::from_slice(&serde_json::to_vec(&plan).unwrap()).unwrap();
        assert_eq!(back, plan);
        assert_eq!(back.resources().unwrap(), limits);
        let unpacked = back.programs();
        assert_eq!(unpacked.len(), programs.len());
        for (a, b) in unpacked.iter().zip(&programs) {
            assert_eq!(
                a.iter().map(pack).collect::<Vec<_>>(),
                b.iter().map(pack).collect::<Vec<_>>()
            );
        }
        let bad = Plan {
            rlimits: vec![(99, 0, 0)],
            ..plan
        };
        assert!(bad.resources().is_err());
    }
}
