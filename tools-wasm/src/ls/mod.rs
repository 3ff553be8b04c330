//! `ls`: uutils' `uu_ls` for listing, sorting, filtering and every short format, with its own
//! long format ([`long`]) so that `-l` never shows invented metadata.
//!
//! Under WASI, `uu_ls -l` prints `r-xr-xr-x`, `somebody somegroup`, a link count of 1 and a
//! `total` computed from nothing: WASI has no modes, owners, groups or allocated blocks (and
//! std does not expose link counts there). This wrapper parses the command line with uu_ls's
//! own clap definition and `Config`, then:
//! - long formats (`-l -g -o -n`, `--format=long`, `--full-time`) go through
//!   `uu_ls::list_with_output` with [`long::LongOutput`], which prints `?` for what is unknown;
//! - `-s`/`--size`, `-i`/`--inode` and `--dired` are refused (their numbers would be invented);
//! - one name per line (`ls`, `-1`, `-a`, `-A`, `-r`, `-R` of directories) is listed by
//!   [`short`] from the directory entries alone, printing what uu_ls prints without its
//!   `stat` of every entry;
//! - everything else is `uu_ls::list`, unchanged.

mod long;
mod short;

use crate::exit::CANNOT_RUN;
use std::ffi::OsString;
use std::path::Path;
use uu_ls::{Config, Format, options};
use uucore::error::UResult;

/// Entry point.
pub fn main(args: Vec<OsString>) -> i32 {
    if let Err(e) = uucore::locale::setup_localization("ls") {
        eprintln!("ls: cannot load messages: {e}");
        return CANNOT_RUN;
    }
    match run(args) {
        Ok(()) => uucore::error::get_exit_code(),
        Err(e) => {
            let s = e.to_string();
            if !s.is_empty() {
                uucore::show_error!("{s}");
            }
            if e.usage() {
                eprintln!(
                    "Try '{} --help' for more information.",
                    uucore::execution_phrase()
                );
            }
            e.code()
        }
    }
}

/// Options whose output WASI cannot back with real data.
const REFUSED: &[(&str, &str)] = &[
    (
        "size",
        "-s/--size: allocated sizes are not available under WASI (use -l for sizes)",
    ),
    (
        "inode",
        "-i/--inode: inode numbers are not available under WASI",
    ),
    ("dired", "--dired is not supported"),
];

fn run(args: Vec<OsString>) -> UResult<()> {
    let (matches, diag) =
        uucore::clap_localization::handle_clap_result_with_diagnostics(uu_ls::uu_app(), args, 2)?;
    for (id, why) in REFUSED {
        if matches
            .try_get_one::<bool>(id)
            .ok()
            .flatten()
            .copied()
            .unwrap_or(false)
        {
            return Err(uucore::error::USimpleError::new(2, *why));
        }
    }
    uucore::i18n::collator::init_locale_collation();
    let config = Config::from(&matches, diag.as_deref())?;
    let locs: Vec<&Path> = matches
        .get_many::<OsString>(options::PATHS)
        .map_or_else(|| vec![Path::new(".")], |v| v.map(Path::new).collect());
    if config.format == Format::Long {
        let mut out = long::LongOutput::new(&matches, &config)?;
        uu_ls::list_with_output(locs, &config, &mut out)
    } else if let Some(listed) = short::list(&matches, &config, &locs) {
        listed
    } else {
        uu_ls::list(locs, &config)
    }
}
