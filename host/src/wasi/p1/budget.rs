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
//!
//! The stages of a pipeline run at the same time and share their call's budget: each guest's
//! [`WriteBudget`] draws on one [`WritePool`], atomically, so together they never write more
//! than the call may.

pub use crate::limits::write_pool::WritePool;

/// What creating one directory entry costs against the budget (one filesystem block).
pub const ENTRY_COST: u64 = 4096;

/// Bytes one guest may still write, and what happened to its writes: its own limit, drawn
/// from its call's [`WritePool`].
#[derive(Debug, Clone)]
pub struct WriteBudget {
    limit: u64,
    pool: WritePool,
    used: u64,
    /// Taken from the pool by the last [`grant`](Self::grant) and not yet settled by
    /// [`spend`](Self::spend).
    pending: u64,
    written: u64,
    refused: bool,
    disk_full: bool,
}

impl WriteBudget {
    /// A budget of `limit` bytes with a pool of its own.
    pub fn new(limit: u64) -> Self {
        Self::drawing_on(limit, WritePool::new(limit))
    }

    /// A budget of at most `limit` bytes, drawn from the call's `pool`.
    pub fn drawing_on(limit: u64, pool: WritePool) -> Self {
        Self {
            limit,
            pool,
            used: 0,
            pending: 0,
            written: 0,
            refused: false,
            disk_full: false,
        }
    }

    /// Gives back what the last grant took and did not spend (a write that failed).
    fn settle(&mut self) {
        self.pool.give_back(std::mem::take(&mut self.pending));
    }

    /// How many of `wanted` bytes may be written now, taken from the pool until
    /// [`spend`](Self::spend) says how many were written; 0 (and the refusal remembered) when
    /// the budget is spent and `wanted` is not 0.
    pub fn grant(&mut self, wanted: usize) -> usize {
        self.settle();
        let asked = u64::try_from(wanted).unwrap_or(u64::MAX);
        let want = asked.min(self.limit.saturating_sub(self.used));
        let granted = if want == 0 {
            0
        } else {
            self.pool.take(want, false)
        };
        self.pending = granted;
        if granted == 0 && asked > 0 {
            self.refused = true;
        }
        usize::try_from(granted).unwrap_or(usize::MAX)
    }

    /// `n` bytes of the last grant were written (the rest goes back to the pool).
    pub fn spend(&mut self, n: usize) {
        let n = (n as u64).min(self.pending);
        self.pending -= n;
        self.settle();
        self.used = self.used.saturating_add(n);
        self.written = self.written.saturating_add(n);
    }

    /// Charges the creation of one directory entry; `false` (and the refusal remembered) when
    /// the budget cannot pay for it.
    pub fn create_entry(&mut self) -> bool {
        self.settle();
        if self.limit.saturating_sub(self.used) < ENTRY_COST
            || self.pool.take(ENTRY_COST, true) == 0
        {
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

    #[test]
    fn stages_drawing_on_one_pool_never_write_more_than_it_together() {
        let pool = WritePool::new(10);
        let mut a = WriteBudget::drawing_on(8, pool.clone());
        let mut b = WriteBudget::drawing_on(8, pool.clone());
        assert_eq!(a.grant(6), 6);
        assert_eq!(b.grant(6), 4, "a's grant is taken until settled");
        b.spend(4);
        a.spend(2);
        assert_eq!(pool.used(), 6, "what a did not write went back");
        assert_eq!(a.grant(6), 4);
        a.spend(4);
        assert_eq!(b.grant(1), 0);
        assert!(b.refused());
        assert_eq!((a.written(), b.written()), (6, 4));
        // A failed write gives its grant back at the next call.
        let pool = WritePool::new(10);
        let mut c = WriteBudget::drawing_on(10, pool.clone());
        assert_eq!(c.grant(10), 10);
        assert_eq!(c.grant(10), 10, "the unspent grant was given back first");
        c.spend(0);
        assert_eq!(pool.used(), 0);
        let mut d = WriteBudget::drawing_on(ENTRY_COST, WritePool::new(ENTRY_COST - 1));
        assert!(!d.create_entry(), "the pool cannot pay");
    }

    #[test]
    fn a_stage_keeps_its_own_lower_limit() {
        let pool = WritePool::new(100);
        let mut a = WriteBudget::drawing_on(3, pool.clone());
        assert_eq!(a.grant(50), 3);
        a.spend(3);
        assert_eq!(a.grant(1), 0);
        assert!(a.refused());
        assert_eq!(pool.used(), 3);
    }
}
