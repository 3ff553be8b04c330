//! The limits a policy file may set, written once: [`PartialLimits`] is the one type behind
//! `[limits]`, `[native.NAME.limits]` and a tool manifest's `[limits]`, each of which may hold
//! only its own keys ([`LimitsTable`]); [`PartialLimits::over`] is the one merge rule (a given
//! key replaces the one below it); [`check_limits`] is the one range check. Pure: no I/O, and
//! nothing here knows where the limits came from beyond the table's name.

use super::{ConfigError, invalid};
use crate::limits::Limits;
use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserializer, Serialize};
use std::fmt;

/// Limits as written in one table: every key optional. The keys of all three tables are here;
/// which of them a table accepts is its [`LimitsTable`]'s business.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct PartialLimits {
    /// Default wall-clock limit of a call.
    pub timeout_ms: Option<u64>,
    /// Highest `timeout_ms` a request may ask for (`[limits]` only).
    pub max_timeout_ms: Option<u64>,
    /// WASI fuel per call.
    pub fuel: Option<u64>,
    /// Memory per call (a guest's linear memory; a native process's address space).
    pub memory_bytes: Option<u64>,
    /// WASI table elements per call.
    pub table_elements: Option<u64>,
    /// Stdout bytes kept per call.
    pub stdout_bytes: Option<u64>,
    /// Stderr bytes kept per call.
    pub stderr_bytes: Option<u64>,
    /// WASI: bytes written to files per call.
    pub write_bytes: Option<u64>,
    /// Calls running at once (`[limits]` only).
    pub max_concurrent: Option<usize>,
    /// Largest stdin a request may carry (`[limits]` only).
    pub max_stdin_bytes: Option<usize>,
    /// Most arguments a request may carry (`[limits]` only).
    pub max_args: Option<usize>,
    /// Largest total size of all arguments (`[limits]` only).
    pub max_arg_bytes: Option<usize>,
    /// Native: CPU seconds per process.
    pub cpu_seconds: Option<u64>,
    /// Native: largest file a process may write.
    pub file_size_bytes: Option<u64>,
    /// Native: open files per process.
    pub open_files: Option<u64>,
    /// Native: processes at once per command.
    pub processes: Option<u64>,
}

/// Where a set of limits is written, which decides the keys it may hold (any other key is
/// refused by the parser, naming it and the keys allowed, as serde words it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitsTable {
    /// The policy's `[limits]`: every key.
    Policy,
    /// `[native.NAME.limits]`: the keys that apply to a native process.
    Native,
    /// A tool manifest's `[limits]`: the keys that apply to a WASI guest.
    Manifest,
}

/// One limit of a command: its key, its value in a [`PartialLimits`] and its slot in [`Limits`].
struct CommandKey {
    key: &'static str,
    field: fn(&mut PartialLimits) -> &mut Option<u64>,
    slot: fn(&mut Limits) -> &mut u64,
}

/// Every limit of one command, in [`Limits`]' order (the order errors are found in).
const COMMAND_KEYS: [CommandKey; 11] = [
    CommandKey {
        key: "timeout_ms",
        field: |p| &mut p.timeout_ms,
        slot: |l| &mut l.timeout_ms,
    },
    CommandKey {
        key: "fuel",
        field: |p| &mut p.fuel,
        slot: |l| &mut l.fuel,
    },
    CommandKey {
        key: "memory_bytes",
        field: |p| &mut p.memory_bytes,
        slot: |l| &mut l.memory_bytes,
    },
    CommandKey {
        key: "table_elements",
        field: |p| &mut p.table_elements,
        slot: |l| &mut l.table_elements,
    },
    CommandKey {
        key: "stdout_bytes",
        field: |p| &mut p.stdout_bytes,
        slot: |l| &mut l.stdout_bytes,
    },
    CommandKey {
        key: "stderr_bytes",
        field: |p| &mut p.stderr_bytes,
        slot: |l| &mut l.stderr_bytes,
    },
    CommandKey {
        key: "write_bytes",
        field: |p| &mut p.write_bytes,
        slot: |l| &mut l.write_bytes,
    },
    CommandKey {
        key: "cpu_seconds",
        field: |p| &mut p.cpu_seconds,
        slot: |l| &mut l.cpu_seconds,
    },
    CommandKey {
        key: "file_size_bytes",
        field: |p| &mut p.file_size_bytes,
        slot: |l| &mut l.file_size_bytes,
    },
    CommandKey {
        key: "open_files",
        field: |p| &mut p.open_files,
        slot: |l| &mut l.open_files,
    },
    CommandKey {
        key: "processes",
        field: |p| &mut p.processes,
        slot: |l| &mut l.processes,
    },
];

impl LimitsTable {
    /// The keys this table accepts, in the order serde's messages list them.
    pub const fn keys(self) -> &'static [&'static str] {
        match self {
            Self::Policy => &[
                "timeout_ms",
                "max_timeout_ms",
                "fuel",
                "memory_bytes",
                "table_elements",
                "stdout_bytes",
                "stderr_bytes",
                "write_bytes",
                "max_concurrent",
                "max_stdin_bytes",
                "max_args",
                "max_arg_bytes",
                "cpu_seconds",
                "file_size_bytes",
                "open_files",
                "processes",
            ],
            Self::Native => &[
                "timeout_ms",
                "memory_bytes",
                "stdout_bytes",
                "stderr_bytes",
                "cpu_seconds",
                "file_size_bytes",
                "open_files",
                "processes",
            ],
            Self::Manifest => &[
                "timeout_ms",
                "fuel",
                "memory_bytes",
                "table_elements",
                "stdout_bytes",
                "stderr_bytes",
                "write_bytes",
            ],
        }
    }

    /// The name serde's "expected struct ..." message gives the table (the names of the three
    /// structs this type replaced, so messages stay as they were).
    const fn struct_name(self) -> &'static str {
        match self {
            Self::Policy => "LimitsFile",
            Self::Native => "NativeLimitsFile",
            Self::Manifest => "ManifestLimits",
        }
    }
}

impl PartialLimits {
    /// `base` with every limit given here put in its place: the one merge rule.
    pub fn over(&self, base: Limits) -> Limits {
        let mut p = self.clone();
        let mut out = base;
        for k in &COMMAND_KEYS {
            if let Some(v) = *(k.field)(&mut p) {
                *(k.slot)(&mut out) = v;
            }
        }
        out
    }

    /// The first limit given here that is above `base`'s, as (key, given, base's value).
    pub fn first_above(&self, base: &Limits) -> Option<(&'static str, u64, u64)> {
        let mut p = self.clone();
        let mut b = *base;
        COMMAND_KEYS.iter().find_map(|k| {
            let v = (*(k.field)(&mut p))?;
            let limit = *(k.slot)(&mut b);
            (v > limit).then_some((k.key, v, limit))
        })
    }

    /// `limits` written out in full for `table`: every command limit it accepts.
    pub fn written(limits: &Limits, table: LimitsTable) -> Self {
        let mut out = Self::default();
        let mut l = *limits;
        for k in COMMAND_KEYS
            .iter()
            .filter(|k| table.keys().contains(&k.key))
        {
            *(k.field)(&mut out) = Some(*(k.slot)(&mut l));
        }
        out
    }
}

/// `deserialize_with` for the policy's `[limits]`.
pub fn policy_table<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PartialLimits>, D::Error> {
    read_table(d, LimitsTable::Policy).map(Some)
}

/// `deserialize_with` for `[native.NAME.limits]`.
pub fn native_table<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PartialLimits>, D::Error> {
    read_table(d, LimitsTable::Native).map(Some)
}

/// `deserialize_with` for a tool manifest's `[limits]`.
pub fn manifest_table<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PartialLimits>, D::Error> {
    read_table(d, LimitsTable::Manifest).map(Some)
}

fn read_table<'de, D: Deserializer<'de>>(
    d: D,
    table: LimitsTable,
) -> Result<PartialLimits, D::Error> {
    d.deserialize_struct(table.struct_name(), table.keys(), TableVisitor(table))
}

struct TableVisitor(LimitsTable);

impl<'de> Visitor<'de> for TableVisitor {
    type Value = PartialLimits;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "struct {}", self.0.struct_name())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PartialLimits, A::Error> {
        fn put<T, E: de::Error>(slot: &mut Option<T>, key: &'static str, v: T) -> Result<(), E> {
            if slot.is_some() {
                return Err(E::duplicate_field(key));
            }
            *slot = Some(v);
            Ok(())
        }
        let mut p = PartialLimits::default();
        while let Some(key) = map.next_key_seed(KeySeed(self.0))? {
            match key {
                "max_timeout_ms" => put(&mut p.max_timeout_ms, key, map.next_value()?)?,
                "max_concurrent" => put(&mut p.max_concurrent, key, map.next_value()?)?,
                "max_stdin_bytes" => put(&mut p.max_stdin_bytes, key, map.next_value()?)?,
                "max_args" => put(&mut p.max_args, key, map.next_value()?)?,
                "max_arg_bytes" => put(&mut p.max_arg_bytes, key, map.next_value()?)?,
                _ => {
                    if let Some(k) = COMMAND_KEYS.iter().find(|k| k.key == key) {
                        put((k.field)(&mut p), key, map.next_value()?)?;
                    }
                }
            }
        }
        Ok(p)
    }
}

/// A key of `table`: any other is refused while the key is read, so the parser's message points
/// at the key.
struct KeySeed(LimitsTable);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        d.deserialize_identifier(self)
    }
}

impl Visitor<'_> for KeySeed {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<&'static str, E> {
        let keys = self.0.keys();
        keys.iter()
            .find(|k| **k == v)
            .copied()
            .ok_or_else(|| E::unknown_field(v, keys))
    }
}

/// Refuses `v` outside `lo..=hi`, naming `key`.
pub(crate) fn in_range(key: &str, v: u64, lo: u64, hi: u64) -> Result<(), ConfigError> {
    if v < lo || v > hi {
        Err(invalid(key, format!("{v} is outside {lo}..={hi}")))
    } else {
        Ok(())
    }
}

/// Checks one set of limits for sense; `prefix` (`limits.` or `native.NAME.limits.`) starts
/// the key named in the error.
pub(crate) fn check_limits(
    prefix: &str,
    l: &Limits,
    max_timeout_ms: u64,
) -> Result<(), ConfigError> {
    const GIB: u64 = 1024 * 1024 * 1024;
    let key = |k: &str| format!("{prefix}{k}");
    in_range(&key("timeout_ms"), l.timeout_ms, 1, max_timeout_ms)?;
    in_range(&key("fuel"), l.fuel, 1_000, u64::MAX)?;
    in_range(&key("memory_bytes"), l.memory_bytes, 1024 * 1024, 64 * GIB)?;
    in_range(&key("table_elements"), l.table_elements, 1, 100_000_000)?;
    in_range(&key("stdout_bytes"), l.stdout_bytes, 0, 256 * 1024 * 1024)?;
    in_range(&key("stderr_bytes"), l.stderr_bytes, 0, 256 * 1024 * 1024)?;
    in_range(&key("write_bytes"), l.write_bytes, 0, 1024 * GIB)?;
    in_range(&key("cpu_seconds"), l.cpu_seconds, 1, 24 * 3600)?;
    in_range(&key("file_size_bytes"), l.file_size_bytes, 0, 1024 * GIB)?;
    in_range(&key("open_files"), l.open_files, 16, 1 << 20)?;
    in_range(&key("processes"), l.processes, 1, 100_000)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The parser's messages for bad limits tables, as the three structs this type replaced
    /// gave them (recorded from c0bd26d): the key at fault, where it is, and the keys allowed.
    #[test]
    fn messages_for_bad_tables_are_those_of_the_old_structs() {
        let mut lines = Vec::new();
        for t in [
            "[limits]\ncpu_secs = 1\n",
            "[limits]\ntimeout_ms = -1\n",
            "[limits]\nmax_concurrent = -1\n",
            "limits = 5\n",
            "[native.sh]\npath = \"/bin/sh\"\n[native.sh.limits]\nfuel = 5\n",
            "[native.sh]\npath = \"/bin/sh\"\nlimits = 5\n",
            "[native.sh]\npath = \"/bin/sh\"\nlimits = { processes = \"x\" }\n",
        ] {
            let e = crate::policy::parse_policy(t).err().map(|e| e.to_string());
            lines.push(format!("POLICY {t:?} => {e:?}"));
        }
        for t in [
            "[limits]\ncpu_seconds = 1\n",
            "[limits]\nmax_timeout_ms = 1\n",
            "limits = 5\n",
            "[limits]\nfuel = \"x\"\n",
        ] {
            let e = toml::from_str::<crate::policy::manifest::Manifest>(t)
                .err()
                .map(|e| e.to_string());
            lines.push(format!("MANIFEST {t:?} => {e:?}"));
        }
        let expected: Vec<&str> = include_str!("testdata/limits_messages.txt")
            .lines()
            .collect();
        assert_eq!(lines, expected);
    }

    #[test]
    fn given_keys_replace_the_base_and_nothing_else() {
        let p = PartialLimits {
            fuel: Some(5000),
            processes: Some(3),
            max_concurrent: Some(2),
            ..PartialLimits::default()
        };
        let base = Limits::default();
        let l = p.over(base);
        assert_eq!((l.fuel, l.processes), (5000, 3));
        assert_eq!(
            Limits {
                fuel: base.fuel,
                processes: base.processes,
                ..l
            },
            base
        );
        assert_eq!(p.first_above(&base), None);
        let p = PartialLimits {
            stdout_bytes: Some(base.stdout_bytes + 1),
            ..PartialLimits::default()
        };
        assert_eq!(
            p.first_above(&base),
            Some(("stdout_bytes", base.stdout_bytes + 1, base.stdout_bytes))
        );
    }

    #[test]
    fn a_written_table_holds_exactly_its_command_keys() {
        let l = Limits::default();
        let native = PartialLimits::written(&l, LimitsTable::Native);
        assert_eq!(native.fuel, None);
        assert_eq!(native.processes, Some(l.processes));
        let manifest = PartialLimits::written(&l, LimitsTable::Manifest);
        assert_eq!(manifest.write_bytes, Some(l.write_bytes));
        assert_eq!(manifest.cpu_seconds, None);
        let all = PartialLimits::written(&l, LimitsTable::Policy);
        assert_eq!(all.over(Limits { fuel: 1, ..l }), l);
        assert_eq!(all.max_timeout_ms, None);
    }
}
