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

/// Largest wasm stack of a guest: deeper recursion traps with a stack overflow
/// (`COMMAND_FAILED`).
pub const MAX_WASM_STACK: usize = 2 << 20;

/// Stack kept free below the guest's deepest wasm frame for the host functions it calls.
///
/// Guests run on a fiber of [`ASYNC_STACK_SIZE`] bytes, and wasmtime only checks the wasm part
/// of it against [`MAX_WASM_STACK`]: a host call made from the deepest frame (the preview-1
/// implementation, cap-std path walks, the async machinery, the signal handler) runs on what is
/// left. With no margin (the fiber as large as the wasm limit, as before) a guest that recursed
/// deep and then called the host ran off the fiber's guard page and aborted the whole server.
/// Host functions here need tens of KiB; the margin is a hundred times that, and costs
/// address space only (stack pages are touched lazily).
pub const HOST_STACK_MARGIN: usize = 6 << 20;

/// Size of each guest fiber stack (and of each stack in the instance pool).
pub const ASYNC_STACK_SIZE: usize = MAX_WASM_STACK + HOST_STACK_MARGIN;

/// Why the engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// wasmtime refused the configuration.
    #[error("{0:#}")]
    Wasmtime(wasmtime::Error),
    /// The engine leaves host functions less stack than [`HOST_STACK_MARGIN`].
    #[error(
        "the wasm engine leaves host calls {left} bytes of stack (async_stack_size {async_stack} - max_wasm_stack {wasm_stack}); runbox needs at least {HOST_STACK_MARGIN} so a deeply recursing guest cannot overflow the server's stack"
    )]
    StackMargin {
        /// `async_stack_size` of the engine.
        async_stack: usize,
        /// `max_wasm_stack` of the engine.
        wasm_stack: usize,
        /// What is left for host calls.
        left: usize,
    },
}

/// Checks that `engine` leaves host calls at least [`HOST_STACK_MARGIN`] below the deepest
/// guest frame.
///
/// # Errors
/// [`EngineError::StackMargin`] when it does not.
pub fn check_stack_margin(engine: &Engine) -> Result<(), EngineError> {
    let async_stack = engine.get_async_stack_size();
    let wasm_stack = engine.get_max_wasm_stack();
    let left = async_stack.saturating_sub(wasm_stack);
    if left < HOST_STACK_MARGIN {
        return Err(EngineError::StackMargin {
            async_stack,
            wasm_stack,
            left,
        });
    }
    Ok(())
}

/// The engine configuration runbox uses. It is part of the compiled-module cache key, through
/// `Engine::precompile_compatibility_hash`.
pub fn engine_config() -> Config {
    let mut config = Config::new();
    config
        .consume_fuel(true)
        .epoch_interruption(true)
        .cranelift_opt_level(OptLevel::Speed)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK_SIZE)
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
/// `None` or the pool's address space cannot be reserved (logged as a warning). Either way each
/// guest stack is [`ASYNC_STACK_SIZE`] (wasmtime sizes the pool's stacks from the same setting),
/// and the engine is refused unless it leaves host calls [`HOST_STACK_MARGIN`].
///
/// # Errors
/// [`EngineError`] when wasmtime refuses the configuration or the stack margin is short.
pub fn new_engine(pool: Option<PoolSize>) -> Result<(Engine, Allocator), EngineError> {
    if let Some(size) = pool {
        let mut config = engine_config();
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pooling_config(size)));
        match Engine::new(&config) {
            Ok(engine) => {
                check_stack_margin(&engine)?;
                tracing::info!(
                    slots = size.instances,
                    memory_bytes = size.memory_bytes,
                    stack_bytes = engine.get_async_stack_size(),
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
    let engine = Engine::new(&engine_config()).map_err(EngineError::Wasmtime)?;
    check_stack_margin(&engine)?;
    Ok((engine, Allocator::OnDemand))
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
    fn host_calls_keep_their_stack_margin() {
        for pool in [Some(size(2)), None] {
            let (engine, _) = new_engine(pool).unwrap();
            assert_eq!(engine.get_async_stack_size(), ASYNC_STACK_SIZE);
            assert_eq!(engine.get_max_wasm_stack(), MAX_WASM_STACK);
        }
        // An engine without the margin (wasmtime's defaults leave 2 MiB - 2 MiB = 0) is refused.
        let mut cfg = engine_config();
        cfg.async_stack_size(MAX_WASM_STACK);
        let short = Engine::new(&cfg).unwrap();
        let e = check_stack_margin(&short).unwrap_err().to_string();
        assert!(e.contains("leaves host calls 0 bytes"), "{e}");
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
