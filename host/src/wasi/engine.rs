//! The one wasmtime [`Engine`] of the process and the thread that drives its epoch.
//!
//! Fuel bounds CPU and epoch interruption bounds wall-clock time: every store yields to the async
//! executor at each epoch tick, so the runner's `select!` on the deadline or on cancellation can
//! drop the guest even while it spins, and a guest blocked in a host call (a sleep) stops too.
//!
//! Guest instances come from wasmtime's pooling allocator, sized from the policy
//! ([`PoolSize`]): one slot per call that may run at once, each as large as the memory and table
//! limits allow. A slot is reused by the next call (its dirty pages reset in place) instead of
//! mapping and unmapping memory, tables and a fiber stack on every call. The pool reserves its
//! address space up front; where the machine refuses that (a `ulimit -v`, a small address
//! space), the engine falls back to on-demand allocation and says so in the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{
    Config, Enabled, Engine, EngineWeak, InstanceAllocationStrategy, OptLevel,
    PoolingAllocationConfig,
};

/// How often the epoch advances. A store yields once per tick, so this bounds how late a
/// timeout or cancellation is noticed by a spinning guest.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Largest wasm stack of a guest (deep recursion traps with a stack overflow, not a crash).
const MAX_WASM_STACK: usize = 2 * 1024 * 1024;

/// The engine configuration runbox uses. It is part of the compiled-module cache key, through
/// `Engine::precompile_compatibility_hash`.
pub fn engine_config() -> Config {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        .max_wasm_stack(MAX_WASM_STACK)
        .wasm_threads(false)
        .parallel_compilation(true);
    config
}

/// Largest linear memory a wasm32 guest can have; a pool slot never needs more.
const WASM32_MAX_MEMORY: u64 = 4 << 30;
/// Linear-memory bytes a reused slot keeps resident (dirty pages found with `PAGEMAP_SCAN` are
/// reset with a copy instead of being unmapped and faulted in again by the next call).
const MEMORY_KEEP_RESIDENT: usize = 1 << 20;
/// The same for tables.
const TABLE_KEEP_RESIDENT: usize = 128 << 10;
/// Tables one module may define (Rust and C toolchains emit one).
const TABLES_PER_MODULE: u32 = 4;
/// Largest `VMContext` of one instance (grows with imports and functions referenced by tables).
const CORE_INSTANCE_BYTES: usize = 16 << 20;

/// What the pooling allocator is sized from: the policy's concurrency and per-guest limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSize {
    /// Guests that may run at once (`limits.max_concurrent`).
    pub instances: u32,
    /// Linear-memory ceiling of one guest (`limits.memory_bytes`).
    pub memory_bytes: u64,
    /// Table-element ceiling of one guest (`limits.table_elements`).
    pub table_elements: u64,
}

/// How guest instances get their memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocator {
    /// Reused slots from a pool reserved at start.
    Pooling,
    /// Mapped for each call and unmapped after it.
    OnDemand,
}

/// The pooling configuration for `size`. Each module may have one memory and up to
/// [`TABLES_PER_MODULE`] tables; a module needing more fails to load with a message saying so.
pub fn pooling_config(size: PoolSize) -> PoolingAllocationConfig {
    let instances = size.instances.max(1);
    let memory = usize::try_from(size.memory_bytes.min(WASM32_MAX_MEMORY)).unwrap_or(usize::MAX);
    let elements = usize::try_from(size.table_elements).unwrap_or(usize::MAX);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_core_instances(instances)
        .total_memories(instances)
        .total_tables(instances.saturating_mul(TABLES_PER_MODULE))
        .total_stacks(instances)
        .total_gc_heaps(instances)
        .total_component_instances(1)
        .max_memories_per_module(1)
        .max_tables_per_module(TABLES_PER_MODULE)
        .max_memory_size(memory)
        .table_elements(elements)
        .max_core_instance_size(CORE_INSTANCE_BYTES)
        .max_unused_warm_slots(instances)
        .linear_memory_keep_resident(MEMORY_KEEP_RESIDENT)
        .table_keep_resident(TABLE_KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);
    pool
}

/// Builds the engine: with the pooling allocator sized by `pool`, or on demand when `pool` is
/// `None` or the pool's address space cannot be reserved (logged as a warning).
pub fn new_engine(pool: Option<PoolSize>) -> wasmtime::Result<(Engine, Allocator)> {
    if let Some(size) = pool {
        let mut config = engine_config();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(size)));
        match Engine::new(&config) {
            Ok(engine) => {
                tracing::info!(
                    slots = size.instances,
                    memory_bytes = size.memory_bytes,
                    "wasm instances come from a pooling allocator"
                );
                return Ok((engine, Allocator::Pooling));
            }
            Err(e) => tracing::warn!(
                slots = size.instances,
                memory_bytes = size.memory_bytes,
                error = %format!("{e:#}"),
                "cannot reserve the instance pool; allocating guest memory per call instead"
            ),
        }
    }
    Ok((Engine::new(&engine_config())?, Allocator::OnDemand))
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped or the engine is gone.
#[derive(Debug)]
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    /// Starts the ticker thread.
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let weak: EngineWeak = engine.weak();
        let flag = Arc::clone(&stop);
        std::thread::Builder::new()
            .name("runbox-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })?;
        Ok(Self { stop })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(instances: u32) -> PoolSize {
        PoolSize {
            instances,
            memory_bytes: 64 << 20,
            table_elements: 10_000,
        }
    }

    #[test]
    fn pool_is_used_when_it_fits() {
        let (_, how) = new_engine(Some(size(2))).unwrap();
        assert_eq!(how, Allocator::Pooling);
        let (_, how) = new_engine(None).unwrap();
        assert_eq!(how, Allocator::OnDemand);
    }

    #[test]
    fn allocator_choice_does_not_change_the_compiled_code() {
        // The module cache is keyed on this hash: both engines must share artifacts.
        let (pooled, _) = new_engine(Some(size(2))).unwrap();
        let (plain, _) = new_engine(None).unwrap();
        use std::hash::{DefaultHasher, Hash, Hasher};
        let hash = |e: &Engine| {
            let mut h = DefaultHasher::new();
            e.precompile_compatibility_hash().hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&pooled), hash(&plain));
    }
}
