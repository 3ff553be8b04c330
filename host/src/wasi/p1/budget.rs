//! The per-call write budget of a guest: how many bytes it may write to files.
//!
//! Output to stdout and stderr is bounded by the captures; what a guest writes into the
//! workspace or its scratch directory is bounded here. Every byte written to a file counts, and
//! every new directory entry (a created file, directory, link or symlink) counts as
//! [`ENTRY_COST`] bytes, so a guest can neither fill the disk with data nor exhaust inodes with
//! empty files. A write past the budget is cut short, the next one fails with `EDQUOT`, and the
//! budget remembers the refusal so the runner can report `WRITE_LIMIT` instead of a plain
//! failure. It also counts what the disk itself refused (`ENOSPC`), so a reply can say that the
//! command ran and the disk was full, and how much it had written.

/// What creating one directory entry costs against the budget (one filesystem block).
pub const ENTRY_COST: u64 = 4096;

/// Bytes a guest may still write, and what happened to its writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteBudget {
    limit: u64,
    used: u64,
    written: u64,
    refused: bool,
    disk_full: bool,
}

impl WriteBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: 0,
            written: 0,
            refused: false,
            disk_full: false,
        }
    }

    /// How many of `wanted` bytes may be written now; 0 (and the refusal remembered) when the
    /// budget is spent and `wanted` is not 0.
    pub fn grant(&mut self, wanted: usize) -> usize {
        let left = self.limit.saturating_sub(self.used);
        let granted = usize::try_from(left).unwrap_or(usize::MAX).min(wanted);
        if granted == 0 && wanted > 0 {
            self.refused = true;
        }
        granted
    }

    /// `n` bytes were written.
    pub fn spend(&mut self, n: usize) {
        let n = n as u64;
        self.used = self.used.saturating_add(n);
        self.written = self.written.saturating_add(n);
    }

    /// Charges the creation of one directory entry; `false` (and the refusal remembered) when
    /// the budget cannot pay for it.
    pub fn create_entry(&mut self) -> bool {
        if self.limit.saturating_sub(self.used) < ENTRY_COST {
            self.refused = true;
            return false;
        }
        self.used += ENTRY_COST;
        true
    }

    /// The disk refused a write (`ENOSPC`).
    pub fn disk_was_full(&mut self) {
        self.disk_full = true;
    }

    /// Bytes of data written to files.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Whether a write or creation was refused because the budget was spent.
    pub fn refused(&self) -> bool {
        self.refused
    }

    /// Whether the disk refused a write.
    pub fn disk_full(&self) -> bool {
        self.disk_full
    }

    /// The budget's size.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_are_cut_at_the_budget_then_refused() {
        let mut b = WriteBudget::new(10);
        assert_eq!(b.grant(4), 4);
        b.spend(4);
        assert_eq!(b.grant(100), 6);
        b.spend(6);
        assert!(!b.refused());
        assert_eq!(b.grant(0), 0);
        assert!(!b.refused(), "an empty write is not a refusal");
        assert_eq!(b.grant(1), 0);
        assert!(b.refused());
        assert_eq!(b.written(), 10);
    }

    #[test]
    fn entries_cost_a_block() {
        let mut b = WriteBudget::new(ENTRY_COST + 1);
        assert!(b.create_entry());
        assert!(!b.create_entry());
        assert!(b.refused());
        assert_eq!(b.written(), 0);
        assert_eq!(b.grant(5), 1);
    }
}
