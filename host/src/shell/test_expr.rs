//! `test`, `[` and `[[ ]]`: string, numeric and file tests with bash's results (0 true,
//! 1 false, 2 for a malformed test). File tests look through the workspace capability only:
//! a path outside the workspace, or one a symlink leads out of, does not exist.
//!
//! `[[ ]]` operands are expanded without splitting or globbing; the right side of `==`/`!=` is
//! a pattern and of `=~` a regular expression. This module must not run commands.

use super::exec::Res;
use super::expand;
use super::pattern::Pattern;
use super::state::{Complaint, State};
use super::{Ctx, Host, io};
use brush_parser::ast::{
    BinaryPredicate as BP, ExtendedTestExpr as X, TestExpr, UnaryPredicate as UP,
};
use cap_std::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use futures_util::future::BoxFuture;

/// Most arguments `test` and `[` take.
pub const MAX_TEST_ARGS: usize = 128;

/// `test ARGS` / `[ ARGS ]`.
pub async fn test_command<H: Host>(ctx: &Ctx<'_, H>, st: &State, args: &[String]) -> i32 {
    // The parser recurses once per `!` or `(`: bounded by the number of arguments (found by
    // review: 16,384 words of `!` overflowed a runtime worker's stack).
    if args.len() > MAX_TEST_ARGS {
        st.complain(&format!("test: more than {MAX_TEST_ARGS} arguments"))
            .await;
        return 2;
    }
    let parsed = super::parse::contained("test", || brush_parser::test_command::parse(args))
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
    let expr = match parsed {
        Ok(e) => e,
        Err(_) if args.is_empty() => return 1,
        Err(e) => {
            st.complain(&format!("test: {e}")).await;
            return 2;
        }
    };
    match eval(ctx, st, &expr) {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(msg) => {
            st.complain(&format!("test: {msg}")).await;
            2
        }
    }
}

fn eval<H: Host>(ctx: &Ctx<'_, H>, st: &State, e: &TestExpr) -> Result<bool, Complaint> {
    Ok(match e {
        TestExpr::False => false,
        TestExpr::Literal(s) => !s.is_empty(),
        TestExpr::And(a, b) => eval(ctx, st, a)? && eval(ctx, st, b)?,
        TestExpr::Or(a, b) => eval(ctx, st, a)? || eval(ctx, st, b)?,
        TestExpr::Not(a) => !eval(ctx, st, a)?,
        TestExpr::Parenthesized(a) => eval(ctx, st, a)?,
        TestExpr::UnaryTest(p, s) => unary(ctx, st, p, s),
        TestExpr::BinaryTest(p, a, b) => binary(ctx, st, p, a, b, false)?,
    })
}

/// `[[ EXPR ]]`: its status.
///
/// # Errors
/// A stop while expanding an operand.
pub fn extended<'a, H: Host>(
    ctx: &'a Ctx<'a, H>,
    st: &'a mut State,
    e: &'a X,
) -> BoxFuture<'a, Res<i32>> {
    Box::pin(async move {
        Ok(match e {
            X::And(a, b) => {
                if extended(ctx, st, a).await? != 0 {
                    1
                } else {
                    extended(ctx, st, b).await?
                }
            }
            X::Or(a, b) => {
                if extended(ctx, st, a).await? == 0 {
                    0
                } else {
                    extended(ctx, st, b).await?
                }
            }
            X::Not(a) => match extended(ctx, st, a).await? {
                0 => 1,
                1 => 0,
                n => n,
            },
            X::Parenthesized(a) => extended(ctx, st, a).await?,
            X::UnaryTest(p, w) => {
                let v = expand::single(ctx, st, &w.value).await?;
                i32::from(!unary(ctx, st, p, &v))
            }
            X::BinaryTest(p, a, b) => {
                let left = expand::single(ctx, st, &a.value).await?;
                let right = match p {
                    BP::StringExactlyMatchesPattern | BP::StringDoesNotExactlyMatchPattern => {
                        expand::pattern_of(ctx, st, &b.value).await?
                    }
                    _ => expand::single(ctx, st, &b.value).await?,
                };
                if matches!(p, BP::StringMatchesRegex) {
                    return Ok(regex_match(st, &left, &right).await);
                }
                match binary(ctx, st, p, &left, &right, true) {
                    Ok(v) => i32::from(!v),
                    Err(msg) => {
                        st.complain(&msg).await;
                        2
                    }
                }
            }
        })
    })
}

/// `[[ s =~ re ]]`: 0 and `BASH_REMATCH` set on a match, 1 without, 2 for a bad regex.
async fn regex_match(st: &mut State, s: &str, re: &str) -> i32 {
    let compiled = regex::RegexBuilder::new(re).size_limit(1 << 20).build();
    let Ok(re) = compiled else {
        st.complain(&format!("{re}: invalid regular expression"))
            .await;
        return 2;
    };
    match re.captures(s) {
        Some(c) => {
            st.rematch = c
                .iter()
                .map(|m| m.map_or(String::new(), |m| m.as_str().to_owned()))
                .collect();
            0
        }
        None => {
            st.rematch.clear();
            1
        }
    }
}

fn meta<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &State,
    path: &str,
    follow: bool,
) -> Option<cap_std::fs::Metadata> {
    if path.is_empty() {
        return None;
    }
    let rel = io::resolve(&st.cwd, path).ok()?;
    let rel = if rel.is_empty() { ".".to_owned() } else { rel };
    let root = ctx.host.workspace().root();
    if follow {
        root.metadata(&rel).ok()
    } else {
        root.symlink_metadata(&rel).ok()
    }
}

fn unary<H: Host>(ctx: &Ctx<'_, H>, st: &State, p: &UP, s: &str) -> bool {
    let m = || meta(ctx, st, s, true);
    match p {
        UP::StringHasZeroLength => s.is_empty(),
        UP::StringHasNonZeroLength => !s.is_empty(),
        UP::FileExists => m().is_some(),
        UP::FileExistsAndIsDir => m().is_some_and(|m| m.is_dir()),
        UP::FileExistsAndIsRegularFile => m().is_some_and(|m| m.is_file()),
        UP::FileExistsAndIsSymlink => {
            meta(ctx, st, s, false).is_some_and(|m| m.file_type().is_symlink())
        }
        UP::FileExistsAndIsNotZeroLength => m().is_some_and(|m| m.len() > 0),
        UP::FileExistsAndIsReadable => m().is_some(),
        UP::FileExistsAndIsWritable => m().is_some() && ctx.host.may_write(),
        UP::FileExistsAndIsExecutable => {
            m().is_some_and(|m| m.is_dir() || m.permissions().mode() & 0o111 != 0)
        }
        UP::FileExistsAndIsFifo => m().is_some_and(|m| m.file_type().is_fifo()),
        UP::FileExistsAndIsSocket => m().is_some_and(|m| m.file_type().is_socket()),
        UP::FileExistsAndIsBlockSpecialFile => m().is_some_and(|m| m.file_type().is_block_device()),
        UP::FileExistsAndIsCharSpecialFile => m().is_some_and(|m| m.file_type().is_char_device()),
        UP::FileExistsAndIsSetuid => m().is_some_and(|m| m.mode() & 0o4000 != 0),
        UP::FileExistsAndIsSetgid => m().is_some_and(|m| m.mode() & 0o2000 != 0),
        UP::FileExistsAndHasStickyBit => m().is_some_and(|m| m.mode() & 0o1000 != 0),
        UP::FileExistsAndOwnedByEffectiveUserId
        | UP::FileExistsAndOwnedByEffectiveGroupId
        | UP::FileExistsAndModifiedSinceLastRead => m().is_some(),
        UP::FdIsOpenTerminal => false,
        UP::ShellOptionEnabled => match s {
            "errexit" => st.options.errexit,
            "pipefail" => st.options.pipefail,
            "nounset" => st.options.nounset,
            "noglob" => st.options.noglob,
            _ => false,
        },
        UP::ShellVariableIsSetAndAssigned => st.get(s).is_some(),
        UP::ShellVariableIsSetAndNameRef => false,
    }
}

fn int(s: &str, extended: bool, st: &State) -> Result<i64, Complaint> {
    let t = s.trim();
    if let Ok(n) = t.parse::<i64>() {
        return Ok(n);
    }
    if extended {
        if t.is_empty() {
            return Ok(0);
        }
        if super::state::is_name(t) {
            return Ok(st.get(t).and_then(|v| v.trim().parse().ok()).unwrap_or(0));
        }
    }
    Err(format!("{s}: integer expression expected").into())
}

fn binary<H: Host>(
    ctx: &Ctx<'_, H>,
    st: &State,
    p: &BP,
    a: &str,
    b: &str,
    extended: bool,
) -> Result<bool, Complaint> {
    Ok(match p {
        BP::StringExactlyMatchesPattern | BP::StringExactlyMatchesString if extended => {
            Pattern::new(b).map_err(|e| e.to_string())?.matches(a)
        }
        BP::StringDoesNotExactlyMatchPattern | BP::StringDoesNotExactlyMatchString if extended => {
            !Pattern::new(b).map_err(|e| e.to_string())?.matches(a)
        }
        BP::StringExactlyMatchesPattern | BP::StringExactlyMatchesString => a == b,
        BP::StringDoesNotExactlyMatchPattern | BP::StringDoesNotExactlyMatchString => a != b,
        BP::StringMatchesRegex => regex::RegexBuilder::new(b)
            .size_limit(1 << 20)
            .build()
            .map_err(|e| format!("{b}: invalid regular expression: {e}"))?
            .is_match(a),
        BP::StringContainsSubstring => a.contains(b),
        BP::LeftSortsBeforeRight => a < b,
        BP::LeftSortsAfterRight => a > b,
        BP::ArithmeticEqualTo => int(a, extended, st)? == int(b, extended, st)?,
        BP::ArithmeticNotEqualTo => int(a, extended, st)? != int(b, extended, st)?,
        BP::ArithmeticLessThan => int(a, extended, st)? < int(b, extended, st)?,
        BP::ArithmeticLessThanOrEqualTo => int(a, extended, st)? <= int(b, extended, st)?,
        BP::ArithmeticGreaterThan => int(a, extended, st)? > int(b, extended, st)?,
        BP::ArithmeticGreaterThanOrEqualTo => int(a, extended, st)? >= int(b, extended, st)?,
        BP::FilesReferToSameDeviceAndInodeNumbers => {
            match (meta(ctx, st, a, true), meta(ctx, st, b, true)) {
                (Some(x), Some(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
                _ => false,
            }
        }
        BP::LeftFileIsNewerOrExistsWhenRightDoesNot => {
            match (meta(ctx, st, a, true), meta(ctx, st, b, true)) {
                (Some(x), Some(y)) => {
                    x.mtime() > y.mtime()
                        || (x.mtime() == y.mtime() && x.mtime_nsec() > y.mtime_nsec())
                }
                (Some(_), None) => true,
                _ => false,
            }
        }
        BP::LeftFileIsOlderOrDoesNotExistWhenRightDoes => {
            match (meta(ctx, st, a, true), meta(ctx, st, b, true)) {
                (Some(x), Some(y)) => {
                    x.mtime() < y.mtime()
                        || (x.mtime() == y.mtime() && x.mtime_nsec() < y.mtime_nsec())
                }
                (None, Some(_)) => true,
                _ => false,
            }
        }
    })
}
