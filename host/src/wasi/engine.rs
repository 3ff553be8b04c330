//! The one wasmtime [`Engine`] of the process and the thread that drives its epoch.
//!
//! Fuel bounds CPU and epoch interruption bounds wall-clock time: every store yields to the async
//! executor at each epoch tick, so the runner's `select!` on the deadline or on cancellation can
//! drop the guest even while it spins, and a guest blocked in a host call (a sleep) stops too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{Config, Engine, EngineWeak, OptLevel};

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

/// Builds the engine.
pub fn new_engine() -> wasmtime::Result<Engine> {
    Engine::new(&engine_config())
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
