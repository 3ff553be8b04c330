//! How host failures become preview-1 errnos.
//!
//! Linux reports every failure as an errno, and preview 1 has a matching errno for each one a
//! filesystem call can produce, so the guest sees exactly what the kernel said (a guest's
//! `strerror` then prints the familiar text). cap-std's own refusals — a path that would leave
//! the preopen — carry no OS code; they become `EPERM`, as wasmtime-wasi reports them.
//! Nothing here decides policy: callers check permissions before they touch the filesystem.

use wasmtime_wasi::p1::types::Errno;

/// The preview-1 errno for a Linux errno; `EIO` for the few that have no counterpart.
pub fn from_raw(raw: i32) -> Errno {
    match raw {
        libc::E2BIG => Errno::TooBig,
        libc::EACCES => Errno::Acces,
        libc::EADDRINUSE => Errno::Addrinuse,
        libc::EADDRNOTAVAIL => Errno::Addrnotavail,
        libc::EAFNOSUPPORT => Errno::Afnosupport,
        libc::EAGAIN => Errno::Again,
        libc::EALREADY => Errno::Already,
        libc::EBADF => Errno::Badf,
        libc::EBADMSG => Errno::Badmsg,
        libc::EBUSY => Errno::Busy,
        libc::ECANCELED => Errno::Canceled,
        libc::ECHILD => Errno::Child,
        libc::ECONNABORTED => Errno::Connaborted,
        libc::ECONNREFUSED => Errno::Connrefused,
        libc::ECONNRESET => Errno::Connreset,
        libc::EDEADLK => Errno::Deadlk,
        libc::EDESTADDRREQ => Errno::Destaddrreq,
        libc::EDOM => Errno::Dom,
        libc::EDQUOT => Errno::Dquot,
        libc::EEXIST => Errno::Exist,
        libc::EFAULT => Errno::Fault,
        libc::EFBIG => Errno::Fbig,
        libc::EHOSTUNREACH => Errno::Hostunreach,
        libc::EIDRM => Errno::Idrm,
        libc::EILSEQ => Errno::Ilseq,
        libc::EINPROGRESS => Errno::Inprogress,
        libc::EINTR => Errno::Intr,
        libc::EINVAL => Errno::Inval,
        libc::EISCONN => Errno::Isconn,
        libc::EISDIR => Errno::Isdir,
        libc::ELOOP => Errno::Loop,
        libc::EMFILE => Errno::Mfile,
        libc::EMLINK => Errno::Mlink,
        libc::EMSGSIZE => Errno::Msgsize,
        libc::EMULTIHOP => Errno::Multihop,
        libc::ENAMETOOLONG => Errno::Nametoolong,
        libc::ENETDOWN => Errno::Netdown,
        libc::ENETRESET => Errno::Netreset,
        libc::ENETUNREACH => Errno::Netunreach,
        libc::ENFILE => Errno::Nfile,
        libc::ENOBUFS => Errno::Nobufs,
        libc::ENODEV => Errno::Nodev,
        libc::ENOENT => Errno::Noent,
        libc::ENOEXEC => Errno::Noexec,
        libc::ENOLCK => Errno::Nolck,
        libc::ENOLINK => Errno::Nolink,
        libc::ENOMEM => Errno::Nomem,
        libc::ENOMSG => Errno::Nomsg,
        libc::ENOPROTOOPT => Errno::Noprotoopt,
        libc::ENOSPC => Errno::Nospc,
        libc::ENOSYS => Errno::Nosys,
        libc::ENOTCONN => Errno::Notconn,
        libc::ENOTDIR => Errno::Notdir,
        libc::ENOTEMPTY => Errno::Notempty,
        libc::ENOTRECOVERABLE => Errno::Notrecoverable,
        libc::ENOTSOCK => Errno::Notsock,
        libc::ENOTSUP => Errno::Notsup,
        libc::ENOTTY => Errno::Notty,
        libc::ENXIO => Errno::Nxio,
        libc::EOVERFLOW => Errno::Overflow,
        libc::EOWNERDEAD => Errno::Ownerdead,
        libc::EPERM => Errno::Perm,
        libc::EPIPE => Errno::Pipe,
        libc::EPROTO => Errno::Proto,
        libc::EPROTONOSUPPORT => Errno::Protonosupport,
        libc::EPROTOTYPE => Errno::Prototype,
        libc::ERANGE => Errno::Range,
        libc::EROFS => Errno::Rofs,
        libc::ESPIPE => Errno::Spipe,
        libc::ESRCH => Errno::Srch,
        libc::ESTALE => Errno::Stale,
        libc::ETIMEDOUT => Errno::Timedout,
        libc::ETXTBSY => Errno::Txtbsy,
        libc::EXDEV => Errno::Xdev,
        _ => Errno::Io,
    }
}

/// The preview-1 errno for an I/O error: its OS code when it has one, else by kind (cap-std's
/// "a path led outside of the filesystem" is a `PermissionDenied` without a code: `EPERM`).
pub fn from_io(e: &std::io::Error) -> Errno {
    if let Some(raw) = e.raw_os_error() {
        return from_raw(raw);
    }
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => Errno::Noent,
        ErrorKind::PermissionDenied => Errno::Perm,
        ErrorKind::AlreadyExists => Errno::Exist,
        ErrorKind::InvalidInput => Errno::Inval,
        ErrorKind::NotADirectory => Errno::Notdir,
        ErrorKind::IsADirectory => Errno::Isdir,
        ErrorKind::DirectoryNotEmpty => Errno::Notempty,
        ErrorKind::OutOfMemory => Errno::Nomem,
        ErrorKind::Unsupported => Errno::Notsup,
        _ => Errno::Io,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_codes_map_one_to_one() {
        assert_eq!(from_raw(libc::ENOENT), Errno::Noent);
        assert_eq!(from_raw(libc::ELOOP), Errno::Loop);
        assert_eq!(from_raw(libc::EDQUOT), Errno::Dquot);
        assert_eq!(from_raw(9999), Errno::Io);
        let e = std::io::Error::from_raw_os_error(libc::ENOTEMPTY);
        assert_eq!(from_io(&e), Errno::Notempty);
    }

    #[test]
    fn an_escape_without_a_code_is_eperm() {
        let e = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "outside");
        assert_eq!(from_io(&e), Errno::Perm);
    }
}
