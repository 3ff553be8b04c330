//! The process calls: arguments, environment, clocks, randomness, polling and exit.
//!
//! Sleeping (`poll_oneoff` on a clock) is a tokio timer, so a sleeping guest holds no thread
//! and the call's deadline or cancellation drops it like any other pending host call. Polling a
//! descriptor reports it ready at once when it is memory or a regular file, and a pipe between
//! stages when a read or write would not wait ([`super::stdio`]). CPU-time clocks are not offered (`EBADF`, as wasmtime-wasi does), so a guest
//! learns nothing about the host's scheduling beyond wall and monotonic time.

use super::{GuestWasi, Result, stdio, write_bytes};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use wasmtime_wasi::p1::types::{self, Errno};
use wiggle::{GuestMemory, GuestPtr};

/// Longest single sleep a guest may ask for; the call's own deadline ends it much sooner.
const MAX_SLEEP: Duration = Duration::from_secs(24 * 60 * 60);
/// Most subscriptions one `poll_oneoff` may carry.
const MAX_SUBSCRIPTIONS: u32 = 4096;

/// Writes NUL-terminated strings, each given as its parts, and the pointer array to them.
pub fn write_strings<'a>(
    memory: &mut GuestMemory<'_>,
    strings: impl Iterator<Item = Vec<&'a [u8]>>,
    mut pointers: GuestPtr<GuestPtr<u8>>,
    mut buf: GuestPtr<u8>,
) -> Result<()> {
    for parts in strings {
        memory.write(pointers, buf)?;
        pointers = pointers.add(1)?;
        for part in parts {
            buf = write_bytes(memory, buf, part)?;
        }
        buf = write_bytes(memory, buf, &[0])?;
    }
    Ok(())
}

/// `(count, bytes including a NUL each)` of strings of the given lengths.
pub fn sizes(lengths: impl Iterator<Item = usize>) -> Result<(types::Size, types::Size)> {
    let (mut count, mut bytes) = (0usize, 0usize);
    for len in lengths {
        count += 1;
        bytes = bytes.checked_add(len + 1).ok_or(Errno::Overflow)?;
    }
    Ok((u32::try_from(count)?, u32::try_from(bytes)?))
}

/// `clock_res_get`.
pub fn clock_res(id: types::Clockid) -> Result<types::Timestamp> {
    match id {
        types::Clockid::Realtime | types::Clockid::Monotonic => Ok(1),
        _ => Err(Errno::Badf.into()),
    }
}

/// `clock_time_get`.
pub fn clock_now(id: types::Clockid) -> Result<types::Timestamp> {
    match id {
        types::Clockid::Realtime => {
            let since = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_err(|_| Errno::Overflow)?;
            Ok(u64::try_from(since.as_nanos()).map_err(|_| Errno::Overflow)?)
        }
        types::Clockid::Monotonic => Ok(monotonic_nanos()),
        _ => Err(Errno::Badf.into()),
    }
}

/// Nanoseconds on a monotonic clock that starts near 0 for each process.
fn monotonic_nanos() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// `random_get`: bytes from the operating system's generator, straight into guest memory
/// (bounds-checked before anything is allocated or drawn).
pub fn random(memory: &mut GuestMemory<'_>, buf: GuestPtr<u8>, len: types::Size) -> Result<()> {
    let dest = buf.as_array(len);
    if let Some(slice) = memory.as_slice_mut(dest)? {
        return fill_random(slice);
    }
    let mut chunk = vec![0u8; (len as usize).min(64 * 1024)];
    let mut at = 0u32;
    while at < len {
        let n = (len - at).min(chunk.len() as u32);
        fill_random(&mut chunk[..n as usize])?;
        let part = dest.get_range(at..at + n).ok_or(Errno::Fault)?;
        memory.copy_from_slice(&chunk[..n as usize], part)?;
        at += n;
    }
    Ok(())
}

fn fill_random(bytes: &mut [u8]) -> Result<()> {
    let mut filled = 0;
    while filled < bytes.len() {
        match rustix::rand::getrandom(&mut bytes[filled..], rustix::rand::GetRandomFlags::empty()) {
            Ok(n) => filled += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return Err(Errno::Io.into()),
        }
    }
    Ok(())
}

/// `proc_exit`: the status travels up as wasmtime-wasi's `I32Exit`, which the runner reads.
pub fn exit(status: types::Exitcode) -> wasmtime::Error {
    if status >= 126 {
        return wasmtime::Error::msg("exit with invalid exit status outside of [0..126)");
    }
    wasmtime_wasi::I32Exit(status as i32).into()
}

/// `poll_oneoff`: reports the descriptors that are ready (files and stdio at once, pipes when
/// a read or write would not wait, see [`stdio::poll_ready`]); when none is, waits for the
/// earliest clock or for a waited-on pipe to change, and looks again.
pub async fn poll_oneoff(
    guest: &GuestWasi,
    memory: &mut GuestMemory<'_>,
    subs: GuestPtr<types::Subscription>,
    events: GuestPtr<types::Event>,
    n: types::Size,
) -> Result<types::Size> {
    if n == 0 || n > MAX_SUBSCRIPTIONS {
        return Err(Errno::Inval.into());
    }
    let events = events.as_array(n);
    let mut subscriptions = Vec::new();
    let mut earliest: Option<(tokio::time::Instant, u64)> = None;
    for sub in subs.as_array(n).iter() {
        let sub = memory.read(sub?)?;
        if let types::SubscriptionU::Clock(clock) = &sub.u {
            let at = tokio::time::Instant::now() + clock_wait(clock)?.min(MAX_SLEEP);
            if earliest.is_none_or(|(w, _)| at < w) {
                earliest = Some((at, sub.userdata));
            }
        }
        subscriptions.push(sub);
    }
    let ready = loop {
        let mut ready = Vec::new();
        let mut waiting = Vec::new();
        for sub in &subscriptions {
            let (s, read, type_) = match &sub.u {
                types::SubscriptionU::Clock(_) => continue,
                types::SubscriptionU::FdRead(s) => (s, true, types::Eventtype::FdRead),
                types::SubscriptionU::FdWrite(s) => (s, false, types::Eventtype::FdWrite),
            };
            let fd = s.file_descriptor.into();
            match stdio::poll_ready(&guest.fds, &guest.stdin, guest.stdin_pos, fd, read) {
                Some((error, nbytes)) => ready.push(event(sub.userdata, error, type_, nbytes)),
                None => waiting.push((fd, read)),
            }
        }
        if !ready.is_empty() {
            break ready;
        }
        if waiting.is_empty() && earliest.is_none() {
            return Err(Errno::Inval.into());
        }
        let clock = async {
            match earliest {
                Some((at, _)) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = clock => {
                let userdata = earliest.map_or(0, |(_, u)| u);
                break vec![event(userdata, Errno::Success, types::Eventtype::Clock, 0)];
            }
            () = stdio::changed(&guest.fds, &guest.stdin, &waiting) => {}
        }
    };
    let count = u32::try_from(ready.len())?;
    for (slot, ev) in events.iter().zip(ready) {
        memory.write(slot?, ev)?;
    }
    Ok(count)
}

/// How long a clock subscription waits from now.
fn clock_wait(clock: &types::SubscriptionClock) -> Result<Duration> {
    let absolute = clock
        .flags
        .contains(types::Subclockflags::SUBSCRIPTION_CLOCK_ABSTIME);
    let now = match clock.id {
        types::Clockid::Monotonic => monotonic_nanos(),
        types::Clockid::Realtime => clock_now(types::Clockid::Realtime)?,
        _ => return Err(Errno::Inval.into()),
    };
    let nanos = if absolute {
        clock.timeout.saturating_sub(now)
    } else {
        clock.timeout
    };
    Ok(Duration::from_nanos(nanos))
}

fn event(userdata: u64, error: Errno, type_: types::Eventtype, nbytes: u64) -> types::Event {
    types::Event {
        userdata,
        error,
        type_,
        fd_readwrite: types::EventFdReadwrite {
            nbytes,
            flags: types::Eventrwflags::empty(),
        },
    }
}
