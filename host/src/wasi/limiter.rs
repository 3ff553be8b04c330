//! A [`ResourceLimiter`] that refuses growth past the command's limits and remembers that it did.
//!
//! A plain `StoreLimits` makes `memory.grow` fail silently: the guest then aborts and the host
//! cannot tell a memory limit from any other crash. Recording the refusal lets the runner report
//! MEMORY_LIMIT precisely, while the guest still gets the normal "grow failed" answer (a C program
//! that handles a NULL from malloc keeps running).

use wasmtime::{ResourceLimiter, Result};

/// Memory and table ceilings for one guest, with a record of refused growth.
#[derive(Debug, Clone, Copy)]
pub struct GuestLimiter {
    memory_bytes: usize,
    table_elements: usize,
    /// Set when a memory growth was refused.
    pub memory_refused: bool,
    /// Set when a table growth was refused.
    pub table_refused: bool,
}

impl GuestLimiter {
    /// A limiter for the given ceilings.
    pub fn new(memory_bytes: u64, table_elements: u64) -> Self {
        Self {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            table_elements: usize::try_from(table_elements).unwrap_or(usize::MAX),
            memory_refused: false,
            table_refused: false,
        }
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        if desired > self.memory_bytes {
            self.memory_refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool> {
        if desired > self.table_elements {
            self.table_refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_and_records_growth_past_limits() {
        let mut l = GuestLimiter::new(1 << 20, 10);
        assert!(l.memory_growing(0, 1 << 20, None).unwrap());
        assert!(!l.memory_refused);
        assert!(!l.memory_growing(0, (1 << 20) + 1, None).unwrap());
        assert!(l.memory_refused);
        assert!(l.table_growing(0, 10, None).unwrap());
        assert!(!l.table_growing(0, 11, None).unwrap());
        assert!(l.table_refused);
    }
}
