//! The WASI runner: allowlisted commands as `wasm32-wasip1` modules inside wasmtime.
//!
//! One [`WasiRuntime`] per process holds the engine (with its instance pool, see [`engine`]), one
//! linker and one `InstancePre` per module (compiled once, through the [`cache::ModuleCache`]).
//! Each call gets a fresh store with its own fuel, memory/table limiter and epoch deadline; a
//! WASI context with two preopens, the workspace (as the guest's `/`, read-only unless the
//! command may write) and an empty private scratch directory ([`scratch`]); an empty environment
//! apart from what the policy names plus `PWD` and `TMPDIR`; the request's stdin or the pipe
//! from the stage before; bounded stdout (or the pipe to the next stage) and stderr. A guest
//! that writes to a pipe nobody reads any more is stopped and exits 141, as after SIGPIPE.
//!
//! It implements the [`crate::runner`] contract for [`WasiProgram`]s (the built-in module or an
//! operator-supplied one), so a native command cannot reach it; output capture, the deadline
//! and cancellation are the contract's. While the guest runs, the epoch deadline makes it yield
//! to the async executor every tick, so the contract's race can end it at any time; what it
//! wrote to files (the write budget) is read from its store afterwards, however it ended.

pub mod cache;
pub mod engine;
pub mod inspect;
pub mod limiter;
pub mod p1;
pub mod precompiled;
pub mod scratch;

use crate::audit::record::SandboxInfo;
use crate::error::{ErrorCode, RunError};
use crate::limits::Limits;
use crate::outcome::{FileWrites, RunnerKind, Termination};
use crate::policy::ModuleCommand;
use crate::runner::{Aftermath, CallInput, Runner, Running, Streams};
use cache::ModuleCache;
use limiter::GuestLimiter;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;
use tokio::sync::OnceCell;
use wasmtime::{Engine, InstancePre, Linker, Store, Trap, UpdateDeadline};
use wasmtime_wasi::I32Exit;

/// Largest operator-supplied module file read.
const MAX_MODULE_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Per-store data: the guest's preview-1 state and the limiter.
pub struct GuestState {
    wasi: p1::GuestWasi,
    limiter: GuestLimiter,
}

type Prepared = Arc<OnceCell<Result<InstancePre<GuestState>, RunError>>>;

/// The engine, linker and prepared modules, shared by all calls.
pub struct WasiRuntime {
    engine: Engine,
    linker: Arc<Linker<GuestState>>,
    cache: ModuleCache,
    builtin: BuiltinModule,
    prepared: Mutex<HashMap<ProgramKey, Prepared>>,
    provided: std::collections::HashSet<(String, String)>,
    allocator: engine::Allocator,
    scratch: scratch::ScratchPool,
    _ticker: engine::EpochTicker,
}

/// The built-in multicall module: its bytes and their sha256, which keys its compiled form in
/// the cache. Knowing the digest up front (it is computed at build time) means a cache hit never
/// reads the module's bytes.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinModule {
    /// The module.
    pub wasm: &'static [u8],
    /// sha256 of `wasm`.
    pub sha256: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ProgramKey {
    Builtin,
    Module(PathBuf),
}

/// What a WASI command runs: a module and the environment it gets.
#[derive(Debug, Clone)]
pub enum WasiProgram {
    /// The built-in multicall module, entered under the command's name as `argv[0]`, with the
    /// policy's `[wasi.env]`.
    Builtin {
        /// Environment beyond `PWD` and `TMPDIR`.
        env: Arc<[(String, String)]>,
    },
    /// An operator-supplied module, with what its manifest chose.
    Module(Arc<ModuleCommand>),
}

impl WasiProgram {
    /// Environment beyond `PWD` and `TMPDIR`.
    pub fn env(&self) -> &[(String, String)] {
        match self {
            Self::Builtin { env } => env,
            Self::Module(m) => &m.env,
        }
    }

    fn key(&self) -> ProgramKey {
        match self {
            Self::Builtin { .. } => ProgramKey::Builtin,
            Self::Module(m) => ProgramKey::Module(m.path.clone()),
        }
    }
}

impl WasiRuntime {
    /// Builds the engine (its instance pool sized by `pool`, see [`engine::new_engine`]) and
    /// linker and starts the epoch ticker.
    pub fn new(
        cache: ModuleCache,
        builtin: BuiltinModule,
        pool: Option<engine::PoolSize>,
    ) -> Result<Self, RunError> {
        let (engine, allocator) = engine::new_engine(pool)
            .map_err(|e| RunError::internal(format!("cannot create the wasm engine: {e}")))?;
        let mut linker = Linker::new(&engine);
        p1::add_to_linker(&mut linker, |s: &mut GuestState| &mut s.wasi)
            .map_err(|e| RunError::internal(format!("cannot link WASI: {e}")))?;
        let provided = provided_imports(&engine, &linker);
        let ticker = engine::EpochTicker::start(&engine)
            .map_err(|e| RunError::internal(format!("cannot start the epoch thread: {e}")))?;
        Ok(Self {
            engine,
            linker: Arc::new(linker),
            cache,
            builtin,
            prepared: Mutex::new(HashMap::new()),
            provided,
            allocator,
            scratch: scratch::ScratchPool::new(pool.map_or(1, |p| p.instances as usize)),
            _ticker: ticker,
        })
    }

    /// Whether the linker defines the import `module::name`, for checking operator-supplied
    /// modules at start ([`inspect::check_module`]).
    pub fn provides(&self, module: &str, name: &str) -> bool {
        self.provided
            .contains(&(module.to_owned(), name.to_owned()))
    }

    /// How guest instances get their memory (pooling unless the pool could not be reserved).
    pub fn allocator(&self) -> engine::Allocator {
        self.allocator
    }

    /// Compiles (or loads from the cache) and links a program once; later calls reuse it.
    /// Runs on a blocking thread so compiling never stalls the MCP channel.
    pub async fn prepare(
        &self,
        program: &WasiProgram,
    ) -> Result<InstancePre<GuestState>, RunError> {
        let key = program.key();
        let cell = {
            let mut map = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(key.clone()).or_default())
        };
        let result = cell
            .get_or_init(|| {
                let engine = self.engine.clone();
                let linker = Arc::clone(&self.linker);
                let cache = self.cache.clone();
                let builtin = self.builtin;
                async move {
                    let joined = tokio::task::spawn_blocking(move || {
                        let started = Instant::now();
                        let (wasm, sha256) = match &key {
                            ProgramKey::Builtin => (std::borrow::Cow::Borrowed(builtin.wasm), builtin.sha256),
                            ProgramKey::Module(path) => {
                                let bytes = read_module_file(path)?;
                                let digest = cache::sha256(&bytes);
                                (std::borrow::Cow::Owned(bytes), digest)
                            }
                        };
                        let (module, how) = cache
                            .load_with_digest(&engine, &wasm, &sha256)
                            .map_err(|e| RunError::new(ErrorCode::CommandFailed, format!("cannot compile the module: {e}")))?;
                        let pre = linker.instantiate_pre(&module).map_err(|e| {
                            RunError::new(ErrorCode::CommandFailed, format!("the module needs imports runbox does not provide: {e}"))
                        })?;
                        tracing::info!(program = ?key, cache = ?how, ms = started.elapsed().as_millis() as u64, "module ready");
                        Ok(pre)
                    })
                    .await;
                    joined.unwrap_or_else(|e| Err(RunError::internal(format!("module preparation failed: {e}"))))
                }
            })
            .await;
        result.clone()
    }
}

impl Runner for WasiRuntime {
    type Program = WasiProgram;
    type Running<'r> = Guest<'r>;
    const KIND: RunnerKind = RunnerKind::Wasi;
    const WHILE_STARTING: &'static str = "its module was being compiled";
    const ON_TIMEOUT: &'static str = "was stopped";

    fn sandbox(&self, program: &WasiProgram, limits: Limits, writable: bool) -> SandboxInfo {
        let env_names = program.env().iter().map(|(k, _)| k.as_str());
        crate::audit::call::wasi_sandbox(limits, writable, env_names)
    }

    /// Prepares the module (compiling it on first use), then a fresh store with its fuel,
    /// limiter and epoch deadline, and the guest's context with a private scratch directory.
    async fn start<'r>(
        &'r self,
        input: &CallInput<'_, WasiProgram>,
        streams: Streams,
    ) -> Result<Guest<'r>, RunError> {
        let pre = self.prepare(input.program).await?;
        // A private, empty scratch directory (the guest's TMPDIR); what the call leaves in it
        // is deleted when the call ends.
        let scratch = self
            .scratch
            .take()
            .map_err(|e| RunError::internal(format!("cannot create the scratch directory: {e}")))?;
        let wasi = build_context(input, scratch.path(), streams)?;
        let state = GuestState {
            wasi,
            limiter: GuestLimiter::new(input.limits.memory_bytes, input.limits.table_elements),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        store
            .set_fuel(input.limits.fuel)
            .map_err(|e| RunError::internal(format!("cannot set fuel: {e}")))?;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
        Ok(Guest {
            store,
            pre,
            _scratch: scratch,
        })
    }
}

/// One started guest: its store (dropped before its scratch directory is returned).
pub struct Guest<'r> {
    store: Store<GuestState>,
    pre: InstancePre<GuestState>,
    _scratch: scratch::Scratch<'r>,
}

impl Guest<'_> {
    /// What the guest wrote to files, from its store's write budget.
    fn aftermath(&self) -> Aftermath {
        let budget = self.store.data().wasi.budget();
        Aftermath {
            processes_killed: None,
            file_writes: Some(FileWrites {
                bytes: budget.written(),
                disk_full: budget.disk_full(),
            }),
        }
    }
}

impl Running for Guest<'_> {
    type Exit = wasmtime::Result<()>;

    /// Instantiates the module and runs `_start`. Dropping this future mid-run leaves the store
    /// readable, so what was written so far is still reported.
    async fn wait(&mut self) -> wasmtime::Result<()> {
        let mut attempt = 1;
        let instance = loop {
            match self.pre.instantiate_async(&mut self.store).await {
                Err(e) if attempt < IMAGE_ATTEMPTS && is_transient_image_error(&e) => {
                    tracing::warn!(
                        attempt,
                        "building the module's memory image failed, retrying: {e}"
                    );
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                }
                other => break other?,
            }
        };
        let start = instance.get_typed_func::<(), ()>(&mut self.store, "_start")?;
        start.call_async(&mut self.store, ()).await
    }

    async fn exited(
        self,
        exit: wasmtime::Result<()>,
        limits: &Limits,
        _deadline: tokio::time::Instant,
    ) -> (Termination, Aftermath) {
        let state = self.store.data();
        let termination = classify(exit, &state.limiter, state.wasi.budget(), limits);
        (termination, self.aftermath())
    }

    /// A guest stops when its future is dropped; nothing of it outlives the store.
    async fn stop(self, _deadline: tokio::time::Instant) -> Aftermath {
        self.aftermath()
    }
}

/// How many times an instantiation is tried when the module's memory image cannot be built.
const IMAGE_ATTEMPTS: u32 = 3;

/// Whether `e` is the kernel refusing, for now, to seal the memfd that holds a module's initial
/// memory (wasmtime builds it at the module's first instantiation): `F_SEAL_WRITE` fails with
/// `EBUSY` while a page just written to it is still pinned, which happens under load (seen on
/// CI-like 2-core machines: "cannot add seals to the memfd" after the kernel's ~300 ms wait).
/// Nothing of the guest has run then, so trying again is safe; wasmtime keeps no failed image.
fn is_transient_image_error(e: &wasmtime::Error) -> bool {
    e.chain().any(|cause| {
        cause.downcast_ref::<memfd::Error>().is_some_and(
            |m| matches!(m, memfd::Error::AddSeals(io) if io.raw_os_error() == Some(libc::EBUSY)),
        )
    })
}

/// Every `(module, name)` the linker defines, read once through a throwaway store.
fn provided_imports(
    engine: &Engine,
    linker: &Linker<GuestState>,
) -> std::collections::HashSet<(String, String)> {
    let state = GuestState {
        wasi: p1::GuestWasi::empty(),
        limiter: GuestLimiter::new(0, 0),
    };
    let mut store = Store::new(engine, state);
    linker
        .iter(&mut store)
        .map(|(module, name, _)| (module.to_owned(), name.to_owned()))
        .collect()
}

/// Tells how a guest that ended by itself ended, by type, never by message text.
fn classify(
    ended: wasmtime::Result<()>,
    limiter: &GuestLimiter,
    budget: &p1::WriteBudget,
    limits: &Limits,
) -> Termination {
    let write_stop = || {
        Termination::Stopped(
            RunError::new(
                ErrorCode::WriteLimit,
                format!(
                    "the command wrote more to files than the call's write budget left it ({} bytes; writes past it failed with \"Disk quota exceeded\")",
                    limits.write_bytes
                ),
            )
            .with_hint("write less (e.g. narrow the input), or ask the operator to raise limits.write_bytes"),
        )
    };
    let memory_stop = || {
        Termination::Stopped(
            RunError::new(
                ErrorCode::MemoryLimit,
                format!(
                    "the command needed more than its {} bytes of memory",
                    limits.memory_bytes
                ),
            )
            .with_hint("work on smaller inputs, or ask the operator to raise limits.memory_bytes"),
        )
    };
    match ended {
        Ok(()) => Termination::Exited(0),
        Err(e) => {
            // A write the budget refused left a file cut short: that is what the call must say,
            // even when the command went on and then wrote to a pipe nobody reads (found by
            // review: `tee f | head -c N` ended 141 and the call exit 0, the file cut short).
            if budget.refused() {
                return write_stop();
            }
            // Written to a pipe nobody reads: ended as SIGPIPE ends a GNU tool, whatever else
            // it had run into.
            if e.downcast_ref::<p1::KilledBySigpipe>().is_some() {
                return Termination::Exited(crate::runner::SIGPIPE_EXIT);
            }
            if let Some(exit) = e.downcast_ref::<I32Exit>() {
                if exit.0 != 0 && limiter.memory_refused {
                    return memory_stop();
                }
                if exit.0 != 0 && budget.refused() {
                    return write_stop();
                }
                return Termination::Exited(exit.0);
            }
            if limiter.memory_refused {
                return memory_stop();
            }
            if budget.refused() {
                return write_stop();
            }
            match e.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => Termination::Stopped(
                    RunError::new(
                        ErrorCode::CpuLimit,
                        format!(
                            "the command used up its CPU budget of {} fuel units",
                            limits.fuel
                        ),
                    )
                    .with_hint("narrow the work, or ask the operator to raise limits.fuel"),
                ),
                Some(Trap::StackOverflow) => Termination::Stopped(RunError::new(
                    ErrorCode::CommandFailed,
                    "the command overflowed its stack (too deep recursion)",
                )),
                Some(trap) => Termination::Stopped(RunError::new(
                    ErrorCode::CommandFailed,
                    format!("the command crashed: {trap}; see its stderr"),
                )),
                None => {
                    tracing::debug!(error = ?e, "guest stopped by a host error");
                    Termination::Stopped(RunError::new(
                        ErrorCode::CommandFailed,
                        format!("the command could not run: {}", first_line(&e.to_string())),
                    ))
                }
            }
        }
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// The guest's path of its per-call scratch directory (also its `TMPDIR`). Not `/tmp`, so a
/// workspace's own `tmp/` directory stays visible.
pub const GUEST_TMP: &str = "/.runbox-tmp";

/// The guest's preview-1 state: argv, env (+`PWD`, `TMPDIR`), stdio, and two preopens: the
/// workspace as `/` and a private scratch directory as [`GUEST_TMP`].
fn build_context(
    run: &CallInput<'_, WasiProgram>,
    scratch: &std::path::Path,
    streams: Streams,
) -> Result<p1::GuestWasi, RunError> {
    let mut env: Vec<(String, String)> = run.program.env().to_vec();
    env.push(("PWD".into(), run.cwd.guest_path()));
    env.push(("TMPDIR".into(), GUEST_TMP.into()));
    let workspace = run
        .workspace
        .root()
        .try_clone()
        .map_err(|e| RunError::internal(format!("cannot preopen the workspace: {e}")))?;
    let scratch = cap_std::fs::Dir::open_ambient_dir(scratch, cap_std::ambient_authority())
        .map_err(|e| RunError::internal(format!("cannot preopen the scratch directory: {e}")))?;
    let preopens = vec![
        p1::Preopen {
            dir: workspace,
            guest_path: "/".into(),
            writable: run.writable,
        },
        p1::Preopen {
            dir: scratch,
            guest_path: GUEST_TMP.into(),
            writable: true,
        },
    ];
    p1::GuestWasi::new(
        run.argv.to_vec(),
        env,
        streams.stdin,
        streams.stdout,
        streams.stderr,
        preopens,
        p1::WriteBudget::drawing_on(run.limits.write_bytes, run.write_pool.clone()),
    )
    .map_err(|e| RunError::internal(format!("cannot set up the guest's descriptors: {e}")))
}

/// Reads an operator-supplied module, bounded in size.
fn read_module_file(path: &std::path::Path) -> Result<Vec<u8>, RunError> {
    let fail = |e: std::io::Error| {
        RunError::new(
            ErrorCode::CommandFailed,
            format!("cannot read module {}: {e}", path.display()),
        )
    };
    let meta = std::fs::metadata(path).map_err(fail)?;
    if meta.len() > MAX_MODULE_FILE_BYTES {
        return Err(RunError::new(
            ErrorCode::CommandFailed,
            format!(
                "module {} is larger than {MAX_MODULE_FILE_BYTES} bytes",
                path.display()
            ),
        ));
    }
    std::fs::read(path).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seal_error(errno: i32) -> wasmtime::Error {
        wasmtime::Error::from(memfd::Error::AddSeals(std::io::Error::from_raw_os_error(
            errno,
        )))
    }

    #[test]
    fn only_a_busy_seal_of_the_memory_image_is_retried() {
        assert!(is_transient_image_error(&seal_error(libc::EBUSY)));
        assert!(is_transient_image_error(
            &seal_error(libc::EBUSY).context("instantiating the module")
        ));
        assert!(!is_transient_image_error(&seal_error(libc::EPERM)));
        assert!(!is_transient_image_error(&wasmtime::Error::msg(
            "cannot add seals to the memfd"
        )));
        assert!(!is_transient_image_error(&wasmtime::Error::from(
            memfd::Error::Create(std::io::Error::from_raw_os_error(libc::EBUSY))
        )));
    }
}
