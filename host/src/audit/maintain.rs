//! Keeping the directory in order: (re)opening it after a start or a fault, setting a torn
//! tail aside, rotating to a new file, and pruning files past the retention. Runs under the
//! writer's lock ([`AuditLog::lock`]); nothing here is reachable without it.

use super::record::{self, FileInfo, RecoveredInfo};
use super::{AuditError, AuditLog, AuditRecord, Current, Stage, State, files, reserve};
use files::LogFile;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use time::{Date, OffsetDateTime};

impl AuditLog {
    /// (Re)opens the directory: recovery, chain state, current file, pruning.
    pub(super) fn reopen(&self, st: &mut State) -> Result<(), AuditError> {
        let dir = &self.config.dir;
        let open_err = |source| AuditError::Open {
            dir: dir.clone(),
            source,
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(open_err)?;
        let now = self.clock.now();

        // 1. Set aside a torn tail of the newest file.
        let recovered = match files::list(dir).map_err(open_err)?.last() {
            Some(newest) => self.recover(newest).map_err(open_err)?,
            None => None,
        };

        // 2. Pick the chain up where it ended: the newest file with a record. A chain already
        //    further along in memory (the file vanished while we ran) is kept.
        let listed = files::list(dir).map_err(open_err)?;
        let mut newest_seq = None;
        for f in listed.iter().rev() {
            let mut fh = File::open(&f.path).map_err(open_err)?;
            if let (_, Some(last)) = files::read_tail(&mut fh).map_err(open_err)? {
                if last.seq >= st.seq {
                    st.seq = last.seq;
                    st.last_hash = last.hash.clone().unwrap_or_default();
                }
                if st.last_file.is_none() {
                    st.last_file = Some(f.name.clone());
                }
                if Some(f) == listed.last() {
                    newest_seq = Some(last.seq);
                }
                break;
            }
        }

        // 3. Continue today's newest file if the chain ends in it and it has room; else begin
        //    a new file.
        st.total_bytes = dir_bytes(dir).map_err(open_err)?;
        st.current = None;
        let today = now.date();
        let cont = listed.last().filter(|f| {
            f.day == today
                && f.bytes < self.config.max_file_bytes
                && (f.bytes == 0 || newest_seq == Some(st.seq))
        });
        match cont {
            Some(f) => {
                st.current = Some(open_file(dir, &f.name, f.day, false).map_err(open_err)?);
                st.last_file = Some(f.name.clone());
                let gone = self.prune(st, now);
                st.pending_pruned.extend(gone);
                if f.bytes == 0 {
                    self.write_open(st, now, f.name.clone(), None, "start")?;
                }
            }
            None => {
                let reason = match &st.last_file {
                    None => "new",
                    Some(last) if !listed.iter().any(|f| &f.name == last) => "lost",
                    Some(_) => "start",
                };
                self.rotate(st, now, reason)?;
            }
        }

        // 4. Put the recovery on record.
        if let Some(info) = recovered {
            let mut r = AuditRecord::new(Stage::Recovered);
            r.recovered = Some(info);
            self.write_record(st, &mut r, now)?;
        }
        self.sync_current(st)
    }

    /// Cuts a torn tail off `f`, saving the bytes as `<name>.torn-<offset>`.
    fn recover(&self, f: &LogFile) -> std::io::Result<Option<RecoveredInfo>> {
        let mut fh = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
            .open(&f.path)?;
        let (tail, _) = files::read_tail(&mut fh)?;
        if tail.good_end == tail.len {
            return Ok(None);
        }
        let mut torn = Vec::new();
        fh.seek(SeekFrom::Start(tail.good_end))?;
        std::io::Read::read_to_end(&mut fh, &mut torn)?;
        let saved = format!("{}.torn-{}", f.name, tail.good_end);
        let saved_as = match create_private(&self.config.dir.join(&saved)) {
            Ok(mut out) => out
                .write_all(&torn)
                .and_then(|()| out.sync_all())
                .ok()
                .map(|()| saved),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Some(saved),
            Err(e) => return Err(e),
        };
        fh.set_len(tail.good_end)?;
        fh.sync_all()?;
        tracing::warn!(
            file = %f.name,
            offset = tail.good_end,
            bytes = torn.len(),
            "audit log ended in a torn line (crash or power loss); set it aside"
        );
        Ok(Some(RecoveredInfo {
            file: f.name.clone(),
            offset: tail.good_end,
            bytes: torn.len() as u64,
            sha256: record::sha256_hex(&torn),
            saved_as,
        }))
    }

    /// Closes the current file (synced) and begins the next, whose first record is `open`.
    pub(super) fn rotate(
        &self,
        st: &mut State,
        now: OffsetDateTime,
        reason: &str,
    ) -> Result<(), AuditError> {
        let dir = &self.config.dir;
        let open_err = |source| AuditError::Open {
            dir: dir.clone(),
            source,
        };
        if let Some(cur) = st.current.take() {
            reserve::release(&cur.file, cur.len);
            cur.file.sync_data().map_err(|source| AuditError::Write {
                file: cur.name.clone(),
                source,
            })?;
            self.syncer.synced_up_to(st.seq);
        }
        let gone = self.prune(st, now);
        st.pending_pruned.extend(gone);
        // The new file must sort after every file there is or was: never an earlier day (a
        // clock set back) and never a name already used, not even by a file that vanished.
        let listed = files::list(dir).map_err(open_err)?;
        let known: Vec<(Date, u32)> = listed
            .iter()
            .map(|f| (f.day, f.index))
            .chain(st.last_file.as_deref().and_then(files::parse_name))
            .collect();
        let day = known
            .iter()
            .map(|(d, _)| *d)
            .fold(now.date(), std::cmp::max);
        let index = known
            .iter()
            .filter(|(d, _)| *d == day)
            .map(|(_, i)| i + 1)
            .max()
            .unwrap_or(1);
        let name = files::file_name(day, index);
        st.current = Some(open_file(dir, &name, day, true).map_err(open_err)?);
        let previous = st.last_file.clone();
        let opened = self
            .write_open(st, now, name.clone(), previous, reason)
            .and_then(|()| self.sync_current(st));
        if let Err(e) = opened {
            // An empty file would be picked up again; remove it so the next attempt starts clean.
            st.current = None;
            let _ = std::fs::remove_file(dir.join(&name));
            return Err(e);
        }
        Ok(())
    }

    /// Syncs the current file now (records of the log's own, which are never left to a batch).
    fn sync_current(&self, st: &State) -> Result<(), AuditError> {
        if let Some(cur) = &st.current {
            cur.file.sync_data().map_err(|source| AuditError::Write {
                file: cur.name.clone(),
                source,
            })?;
            self.syncer.synced_up_to(st.seq);
        }
        Ok(())
    }

    /// Writes the `open` record that begins a file.
    fn write_open(
        &self,
        st: &mut State,
        now: OffsetDateTime,
        name: String,
        previous: Option<String>,
        reason: &str,
    ) -> Result<(), AuditError> {
        let mut r = AuditRecord::new(Stage::Open);
        r.file = Some(FileInfo {
            name: name.clone(),
            previous: previous.filter(|p| *p != name),
            reason: reason.to_owned(),
        });
        self.write_record(st, &mut r, now)?;
        st.last_file = Some(name);
        Ok(())
    }

    /// Deletes files (and their torn tails) whose newest record is older than the retention.
    /// Returns their names. Failures are reported on stderr and otherwise ignored: an old file
    /// that cannot be deleted costs space, not records.
    pub(super) fn prune(&self, st: &mut State, now: OffsetDateTime) -> Vec<String> {
        let dir = &self.config.dir;
        let Ok(listed) = files::list(dir) else {
            return Vec::new();
        };
        let keep = st.current.as_ref().map(|c| c.name.as_str());
        let aged: Vec<(LogFile, OffsetDateTime)> = listed
            .into_iter()
            .filter(|f| Some(f.name.as_str()) != keep)
            .map(|f| {
                let t = files::newest_time(&f);
                (f, t)
            })
            .collect();
        let mut gone = Vec::new();
        for f in files::expired(&aged, now, self.config.retention(), keep) {
            match std::fs::remove_file(&f.path) {
                Ok(()) => gone.push(f.name.clone()),
                Err(e) => {
                    tracing::warn!(file = %f.name, "cannot delete an expired audit file: {e}")
                }
            }
        }
        if let Ok(torn) = files::list_torn(dir) {
            for (path, base, _) in torn {
                if gone.contains(&base) || (!dir.join(&base).exists() && keep != Some(&base)) {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
        if !gone.is_empty() {
            tracing::info!(files = ?gone, "deleted audit files past the retention");
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        if let Ok(total) = dir_bytes(dir) {
            st.total_bytes = total;
        }
        gone
    }
}

/// Opens (or with `create`, creates exclusively) a log file for appending, 0600, and syncs the
/// directory entry of a new file.
pub(super) fn open_file(
    dir: &Path,
    name: &str,
    day: Date,
    create: bool,
) -> std::io::Result<Current> {
    let path = dir.join(name);
    let mut opts = OpenOptions::new();
    opts.append(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW);
    if create {
        opts.create_new(true);
    }
    let file = opts.open(&path)?;
    if create {
        File::open(dir)?.sync_all()?;
    }
    let meta = file.metadata()?;
    let reserved_to = reserve::top_up(&file, meta.len(), 0);
    Ok(Current {
        file: Arc::new(file),
        name: name.to_owned(),
        day,
        len: meta.len(),
        reserved_to,
        ino: (meta.dev(), meta.ino()),
    })
}

fn create_private(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
}

/// Bytes in the log's files and torn tails.
fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let logs: u64 = files::list(dir)?.iter().map(|f| f.bytes).sum();
    let torn: u64 = files::list_torn(dir)?.iter().map(|t| t.2).sum();
    Ok(logs + torn)
}
