//! The benchmark's files: a workspace holding a generated text corpus and a directory of 10,000
//! files, an audit directory, module caches and the policy, all under one base directory.
//!
//! The corpus is generated from a fixed seed, so every run (and every machine) measures the same
//! bytes; it is kept between runs and regenerated only when missing or of the wrong size.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Files in the `ls` directory.
pub const MANY_FILES: usize = 10_000;
/// Name of the corpus inside the workspace.
pub const CORPUS: &str = "corpus.txt";
/// Name of the 10,000-file directory inside the workspace.
pub const MANY: &str = "many";

/// The benchmark's directory tree.
pub struct Fixture {
    /// Base directory.
    pub base: PathBuf,
    /// The workspace.
    pub ws: PathBuf,
    /// Audit directory (outside the workspace).
    pub audit: PathBuf,
    /// The policy file.
    pub policy: PathBuf,
    /// A module cache kept warm across runs.
    pub warm_cache: PathBuf,
    /// Where the server's stderr goes.
    pub log: PathBuf,
    /// Corpus size in bytes.
    pub corpus_bytes: u64,
}

impl Fixture {
    /// Creates (or reuses) everything under `base`.
    pub fn prepare(base: &Path, corpus_bytes: u64) -> std::io::Result<Self> {
        let ws = base.join("ws");
        let audit = base.join("audit");
        std::fs::create_dir_all(&ws)?;
        if audit.exists() {
            // A fresh log per run, so its size does not drift between runs.
            std::fs::remove_dir_all(&audit)?;
        }
        let f = Self {
            policy: base.join("policy.toml"),
            warm_cache: base.join("cache-warm"),
            log: base.join("runbox.log"),
            base: base.to_owned(),
            ws,
            audit,
            corpus_bytes,
        };
        std::fs::write(&f.log, b"")?;
        std::fs::write(&f.policy, POLICY)?;
        f.ensure_many()?;
        f.ensure_corpus()?;
        Ok(f)
    }

    /// The `serve` arguments for a given module cache directory.
    pub fn args(&self, cache: &Path) -> Vec<String> {
        let mut a = vec![
            "--workspace".to_owned(),
            self.ws.display().to_string(),
            "--audit-dir".into(),
            self.audit.display().to_string(),
            "--cache-dir".into(),
            cache.display().to_string(),
            "--config".into(),
            self.policy.display().to_string(),
        ];
        if nix::unistd::geteuid().is_root() {
            a.push("--allow-root".into());
        }
        a
    }

    /// `args` with an extra policy file instead of the default one.
    pub fn args_with_policy(&self, cache: &Path, policy: &Path) -> Vec<String> {
        let mut a = self.args(cache);
        if let Some(i) = a.iter().position(|s| s == "--config") {
            a[i + 1] = policy.display().to_string();
        }
        a
    }

    fn ensure_many(&self) -> std::io::Result<()> {
        let dir = self.ws.join(MANY);
        if dir.is_dir() && std::fs::read_dir(&dir)?.count() == MANY_FILES {
            return Ok(());
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir(&dir)?;
        for i in 0..MANY_FILES {
            std::fs::File::create(dir.join(format!("file-{i:05}.txt")))?;
        }
        Ok(())
    }

    fn ensure_corpus(&self) -> std::io::Result<()> {
        let path = self.ws.join(CORPUS);
        if std::fs::metadata(&path).is_ok_and(|m| m.len() == self.corpus_bytes) {
            return Ok(());
        }
        let tmp = self.base.join("corpus.tmp");
        let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp)?);
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut written = 0u64;
        let mut line = String::with_capacity(256);
        loop {
            line.clear();
            corpus_line(&mut rng, &mut line);
            let len = line.len() as u64;
            if written + len > self.corpus_bytes {
                // Pad the last line so the file has exactly the requested size.
                let pad = (self.corpus_bytes - written) as usize;
                if pad > 0 {
                    let mut last = "x".repeat(pad - 1);
                    last.push('\n');
                    out.write_all(last.as_bytes())?;
                }
                break;
            }
            out.write_all(line.as_bytes())?;
            written += len;
        }
        out.flush()?;
        drop(out);
        std::fs::rename(&tmp, &path)
    }
}

/// The benchmark policy: generous CPU and time limits so the 100 MB cases finish; everything
/// else is runbox's default (8 concurrent calls, 512 MiB per guest, 1 MiB of stdout kept).
const POLICY: &str = "\
[limits]
fuel = 5000000000000
max_timeout_ms = 600000
";

/// A small, fast, deterministic generator (xorshift64*).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const SERVICES: &[&str] = &["auth", "billing", "search", "upload", "gateway", "mailer"];
const WORDS: &[&str] = &[
    "request",
    "completed",
    "cache",
    "miss",
    "retrying",
    "connection",
    "reset",
    "by",
    "peer",
    "user",
    "logged",
    "in",
    "out",
    "token",
    "expired",
    "slow",
    "query",
    "on",
    "table",
    "orders",
    "payment",
    "accepted",
    "declined",
    "file",
    "stored",
    "queue",
    "depth",
    "high",
    "timeout",
    "while",
    "waiting",
    "for",
    "upstream",
    "ok",
];

/// One log-like line of about 110 bytes: `2026-11-27T12:34:56Z host-07 svc=auth level=INFO ...`.
fn corpus_line(rng: &mut XorShift, line: &mut String) {
    use std::fmt::Write as _;
    let level = match rng.below(100) {
        0..=1 => "DEBUG",
        2..=4 => "ERROR",
        5..=14 => "WARN",
        _ => "INFO",
    };
    let _ = write!(
        line,
        "2026-11-{:02}T{:02}:{:02}:{:02}Z host-{:02} svc={} level={} user=u{:05} latency_ms={} msg=\"",
        1 + rng.below(28),
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(32),
        SERVICES[rng.below(SERVICES.len() as u64) as usize],
        level,
        rng.below(100_000),
        rng.below(2000),
    );
    let words = 3 + rng.below(6);
    for i in 0..words {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(WORDS[rng.below(WORDS.len() as u64) as usize]);
    }
    line.push_str("\"\n");
}
