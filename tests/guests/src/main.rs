//! Test-only WASI guests, one multicall module: the behaviour is chosen by `argv[0]`.
//! Each one misbehaves in a single, specific way so the host's limits can be checked.

use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.first().map(String::as_str).unwrap_or("");
    let name = name.rsplit('/').next().unwrap_or(name);
    let rest = &args[1.min(args.len())..];
    let code = match name {
        "spin" => spin(),
        "memhog" => memhog(),
        "flood" => flood(rest),
        "escape" => escape(rest),
        "sleeper" => sleeper(rest),
        "exiter" => exiter(rest),
        "panicker" => panic!("this guest panics on purpose"),
        "recurse" => recurse(0) as i32,
        "whereami" => whereami(),
        "writer" => writer(rest),
        "residue" => residue(),
        other => {
            eprintln!("test-guests: unknown guest {other:?}");
            2
        }
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// Loops forever without a host call.
fn spin() -> i32 {
    let mut x: u64 = 0;
    loop {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        if x == 42 {
            return 0;
        }
    }
}

/// Allocates 1 MiB chunks, touching each, until the allocator fails (abort).
fn memhog() -> i32 {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        chunks.push(vec![7u8; 1 << 20]);
        if chunks.len() == usize::MAX {
            return 0;
        }
    }
}

/// Writes `MB` mebibytes of 'y' lines to stdout (forever without an argument).
fn flood(rest: &[String]) -> i32 {
    let mb: Option<u64> = rest.first().and_then(|s| s.parse().ok());
    let line = [b'y'; 1023];
    let mut out = std::io::stdout().lock();
    let mut written = 0u64;
    loop {
        if let Some(mb) = mb
            && written >= mb << 20
        {
            return 0;
        }
        if out
            .write_all(&line)
            .and_then(|_| out.write_all(b"\n"))
            .is_err()
        {
            return 3;
        }
        written += 1024;
    }
}

/// Tries to read each path; prints `PATH: ok <first line>` or `PATH: err <kind>`.
fn escape(rest: &[String]) -> i32 {
    for p in rest {
        match std::fs::read_to_string(p) {
            Ok(s) => println!("{p}: ok {}", s.lines().next().unwrap_or("")),
            Err(e) => println!("{p}: err {:?}", e.kind()),
        }
    }
    0
}

/// Sleeps in the host (`poll_oneoff`) for the given milliseconds.
fn sleeper(rest: &[String]) -> i32 {
    let ms: u64 = rest.first().and_then(|s| s.parse().ok()).unwrap_or(60_000);
    std::thread::sleep(std::time::Duration::from_millis(ms));
    println!("woke");
    0
}

/// Exits with the given code.
fn exiter(rest: &[String]) -> i32 {
    rest.first().and_then(|s| s.parse().ok()).unwrap_or(0)
}

/// Recurses without end (black_box keeps the optimiser from turning it into a loop).
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let pad = std::hint::black_box([depth; 64]);
    std::hint::black_box(recurse(depth + 1)) + pad[(depth % 64) as usize]
}

/// Prints the working directory and the environment.
fn whereami() -> i32 {
    match std::env::current_dir() {
        Ok(d) => println!("cwd={}", d.display()),
        Err(e) => println!("cwd-error={e}"),
    }
    for (k, v) in std::env::vars() {
        println!("env {k}={v}");
    }
    0
}

/// Creates the file named by the first argument with the second as content.
fn writer(rest: &[String]) -> i32 {
    let (Some(path), content) = (rest.first(), rest.get(1).cloned().unwrap_or_default()) else {
        return 2;
    };
    match std::fs::write(path, content) {
        Ok(()) => {
            println!("wrote {path}");
            0
        }
        Err(e) => {
            println!("{path}: err {:?}", e.kind());
            1
        }
    }
}

/// Reports what an earlier call may have left behind, then leaves something for the next one:
/// a counter in static data (1 when the instance is fresh) and the non-zero bytes in 16 MiB of
/// newly grown memory (0, as wasm guarantees), which it then fills.
fn residue() -> i32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static RUNS: AtomicU32 = AtomicU32::new(0);
    let runs = RUNS.fetch_add(1, Ordering::Relaxed) + 1;
    const PAGES: usize = 256;
    let old = core::arch::wasm32::memory_grow(0, PAGES);
    if old == usize::MAX {
        println!("runs={runs} grow-failed");
        return 1;
    }
    // SAFETY: the pages were just added to linear memory by this call and belong to no
    // allocation; wasm defines their contents (zero).
    let fresh = unsafe { std::slice::from_raw_parts_mut((old * 65536) as *mut u8, PAGES * 65536) };
    let dirty = fresh.iter().filter(|b| **b != 0).count();
    fresh.fill(0xa5);
    std::hint::black_box(&fresh);
    println!("runs={runs} dirty={dirty}");
    0
}
