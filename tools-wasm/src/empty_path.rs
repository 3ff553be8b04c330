//! An empty path names no file, as on Linux (`ENOENT`), never the current directory.
//!
//! wasi-libc resolves every relative path through `__wasilibc_find_relpath` or (for its POSIX
//! functions, which Rust's `std::fs` uses) `__wasilibc_find_relpath_alloc`; both make an empty
//! path absolute as the current directory itself, so `rm -rf ''` removed the whole working
//! directory and `stat ''`/`test -e ''` found it. The build links with `--wrap` of both (see
//! `build.rs`), so every such lookup comes here first. An empty path is answered with the workspace's preopen and
//! an empty relative name, which the host refuses with `ENOENT` for every kind of call, exactly
//! as the kernel refuses `""` without `AT_EMPTY_PATH`. Any other path goes to wasi-libc
//! unchanged. This module must not change how a non-empty path resolves.

use std::ffi::{c_char, c_int};

unsafe extern "C" {
    fn __real___wasilibc_find_relpath_alloc(
        path: *const c_char,
        abs_prefix: *mut *const c_char,
        relative_buf: *mut *mut c_char,
        relative_buf_len: *mut usize,
        can_realloc: c_int,
    ) -> c_int;
    fn __real___wasilibc_find_relpath(
        path: *const c_char,
        abs_prefix: *mut *const c_char,
        relative_path: *mut *mut c_char,
        relative_path_len: usize,
    ) -> c_int;
}

/// wasi-libc's lookup, with `""` resolved to an empty name below the preopen of `.`.
///
/// # Safety
/// The contract of wasi-libc's `__wasilibc_find_relpath`: `path` is a NUL-terminated string,
/// `*relative_path` points to a buffer of `relative_path_len` bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap___wasilibc_find_relpath(
    path: *const c_char,
    abs_prefix: *mut *const c_char,
    relative_path: *mut *mut c_char,
    relative_path_len: usize,
) -> c_int {
    // SAFETY: the caller's contract; only the first byte of `path` is read here.
    let empty = !path.is_null() && unsafe { *path } == 0;
    if !empty {
        // SAFETY: forwarded unchanged under the same contract.
        return unsafe {
            __real___wasilibc_find_relpath(path, abs_prefix, relative_path, relative_path_len)
        };
    }
    // SAFETY: as above; "." is NUL-terminated. wasi-libc may point `*relative_path` into its
    // own strings (the current directory), so the answer is pointed at a static empty name
    // instead of written through; callers only read it.
    unsafe {
        let fd = __real___wasilibc_find_relpath(
            c".".as_ptr(),
            abs_prefix,
            relative_path,
            relative_path_len,
        );
        if fd >= 0 && !relative_path.is_null() {
            *relative_path = c"".as_ptr().cast_mut();
        }
        fd
    }
}

/// wasi-libc's allocating lookup (what its POSIX functions use), with `""` resolved to an
/// empty name below the preopen of `.`.
///
/// # Safety
/// The contract of wasi-libc's `__wasilibc_find_relpath_alloc`: `path` is NUL-terminated and
/// `*relative_buf` is a buffer of `*relative_buf_len` bytes that the call may reallocate.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap___wasilibc_find_relpath_alloc(
    path: *const c_char,
    abs_prefix: *mut *const c_char,
    relative_buf: *mut *mut c_char,
    relative_buf_len: *mut usize,
    can_realloc: c_int,
) -> c_int {
    // SAFETY: the caller's contract; only the first byte of `path` is read here.
    let empty = !path.is_null() && unsafe { *path } == 0;
    let looked_up = if empty { c".".as_ptr() } else { path };
    // SAFETY: forwarded under the same contract ("." is NUL-terminated). On success the
    // relative name was copied into the caller's own buffer `*relative_buf`, at least 2 bytes
    // long since "." fitted, whose first byte becomes its end.
    unsafe {
        let fd = __real___wasilibc_find_relpath_alloc(
            looked_up,
            abs_prefix,
            relative_buf,
            relative_buf_len,
            can_realloc,
        );
        if empty && fd >= 0 && !relative_buf.is_null() && !(*relative_buf).is_null() {
            **relative_buf = 0;
        }
        fd
    }
}
