//! The long listing format for `ls -l`, written for WASI: the file type, size, time and name
//! are real; the mode bits, link count, owner and group are printed as `?` because WASI does
//! not provide them, and `total` (allocated blocks) is `total ?`. Symlinks show `-> target`.
//!
//! Layout as GNU ls: `TYPE?????????  ? OWNER GROUP SIZE DATE NAME`, sizes right-aligned per
//! directory, dates in the `--time-style` (default `%b %e %H:%M`, or `%b %e  %Y` when older
//! than six months or in the future).

use std::ffi::{OsStr, OsString};
use std::fs::Metadata;
use std::io::Write;
use std::time::{Duration, SystemTime};
use uu_ls::{Config, EntryInfo, LsOutput, PathData};
use uucore::error::{UResult, USimpleError};
use uucore::format::human::{SizeFormat, human_readable};
use uucore::fsext::{MetadataTimeField, metadata_get_time};
use uucore::quoting_style::{locale_aware_escape_dir_name, locale_aware_escape_name};
use uucore::time::{FormatSystemTimeFallback, format_system_time};

const FULL_ISO: &str = "%Y-%m-%d %H:%M:%S.%N %z";
const LONG_ISO: &str = "%Y-%m-%d %H:%M";
const LOCALE: (&str, Option<&str>) = ("%b %e %H:%M", Some("%b %e  %Y"));

/// How `-F`/`-p`/`--file-type` decorate names.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Indicator {
    None,
    Slash,
    FileType,
    Classify,
}

/// How sizes are shown.
enum Size {
    Bytes,
    Human(SizeFormat),
    Blocks(u64),
}

/// An `LsOutput` sink that prints the honest long format.
pub struct LongOutput<'a> {
    config: &'a Config,
    out: std::io::BufWriter<std::io::Stdout>,
    owner: bool,
    group: bool,
    author: bool,
    size: Size,
    time: MetadataTimeField,
    recent: String,
    older: Option<String>,
    indicator: Indicator,
    terminator: u8,
    now: SystemTime,
}

fn flag(m: &clap::ArgMatches, id: &str) -> bool {
    m.try_get_one::<bool>(id)
        .ok()
        .flatten()
        .copied()
        .unwrap_or(false)
}

fn string(m: &clap::ArgMatches, id: &str) -> Option<String> {
    m.try_get_one::<String>(id).ok().flatten().cloned()
}

/// `--time-style`, `TIME_STYLE` and `--full-time`, as GNU ls reads them.
fn time_style(m: &clap::ArgMatches) -> Result<(String, Option<String>), String> {
    let full = flag(m, options::FULL_TIME);
    let style = string(m, options::TIME_STYLE).or_else(|| std::env::var("TIME_STYLE").ok());
    let own = |(a, b): (&str, Option<&str>)| (a.to_owned(), b.map(str::to_owned));
    let Some(style) = style else {
        return Ok(if full {
            own((FULL_ISO, None))
        } else {
            own(LOCALE)
        });
    };
    let style = style.strip_prefix("posix-").unwrap_or(&style).to_owned();
    Ok(match style.as_str() {
        _ if full && string(m, options::TIME_STYLE).is_none() => own((FULL_ISO, None)),
        "full-iso" => own((FULL_ISO, None)),
        "long-iso" => own((LONG_ISO, None)),
        "iso" => ("%m-%d %H:%M".into(), Some("%Y-%m-%d ".into())),
        "locale" => own(LOCALE),
        s if s.starts_with('+') => {
            let mut it = s[1..].splitn(2, '\n');
            (
                it.next().unwrap_or_default().to_owned(),
                it.next().map(str::to_owned),
            )
        }
        other => return Err(format!("invalid --time-style argument '{other}'")),
    })
}

use uu_ls::options;

impl<'a> LongOutput<'a> {
    /// Reads the long-format options from the parsed command line.
    pub fn new(m: &clap::ArgMatches, config: &'a Config) -> UResult<Self> {
        let (recent, older) = time_style(m).map_err(|e| USimpleError::new(2, e))?;
        let size = if flag(m, options::size::HUMAN_READABLE) {
            Size::Human(SizeFormat::Binary)
        } else if flag(m, options::size::SI) {
            Size::Human(SizeFormat::Decimal)
        } else if let Some(b) = string(m, options::size::BLOCK_SIZE) {
            match b.as_str() {
                "human-readable" => Size::Human(SizeFormat::Binary),
                "si" => Size::Human(SizeFormat::Decimal),
                _ => Size::Blocks(
                    uucore::parser::parse_size::parse_size_u64(&b)
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| {
                            USimpleError::new(2, format!("invalid --block-size argument '{b}'"))
                        })?,
                ),
            }
        } else {
            Size::Bytes
        };
        let time = if let Some(t) = string(m, options::TIME) {
            MetadataTimeField::from(t.as_str())
        } else if flag(m, options::time::ACCESS) {
            MetadataTimeField::Access
        } else if flag(m, options::time::CHANGE) {
            MetadataTimeField::Change
        } else {
            MetadataTimeField::Modification
        };
        let indicator = match (
            string(m, options::INDICATOR_STYLE),
            string(m, options::indicator_style::CLASSIFY),
        ) {
            (Some(s), _) => match s.as_str() {
                "slash" => Indicator::Slash,
                "file-type" => Indicator::FileType,
                "classify" => Indicator::Classify,
                _ => Indicator::None,
            },
            (None, Some(c)) if matches!(c.as_str(), "always" | "yes" | "force") => {
                Indicator::Classify
            }
            (None, Some(_)) => Indicator::None,
            _ if flag(m, options::indicator_style::SLASH) => Indicator::Slash,
            _ if flag(m, options::indicator_style::FILE_TYPE) => Indicator::FileType,
            _ => Indicator::None,
        };
        Ok(LongOutput {
            config,
            out: std::io::BufWriter::new(std::io::stdout()),
            owner: !flag(m, options::format::LONG_NO_OWNER),
            group: !flag(m, options::format::LONG_NO_GROUP) && !flag(m, options::NO_GROUP),
            author: flag(m, options::AUTHOR),
            size,
            time,
            recent,
            older,
            indicator,
            terminator: if flag(m, options::ZERO) { b'\0' } else { b'\n' },
            now: SystemTime::now(),
        })
    }

    fn size_text(&self, md: &Metadata) -> String {
        match self.size {
            Size::Bytes => md.len().to_string(),
            Size::Human(f) => human_readable(md.len(), f),
            Size::Blocks(b) => md.len().div_ceil(b).to_string(),
        }
    }

    fn date_text(&self, md: &Metadata) -> String {
        // Birth comes from WASI's `ctim`, which is 0 when the host does not know it.
        let birth = matches!(self.time, MetadataTimeField::Birth);
        let known = |t: &SystemTime| !birth || *t != std::time::UNIX_EPOCH;
        let Some(t) = metadata_get_time(md, self.time).filter(known) else {
            return "?".into();
        };
        let six_months = Duration::from_secs(31_556_952 / 2);
        let recent = t <= self.now && self.now.duration_since(t).is_ok_and(|d| d <= six_months);
        let fmt = match &self.older {
            Some(older) if !recent => older,
            _ => &self.recent,
        };
        let mut buf = Vec::new();
        match format_system_time(&mut buf, t, fmt, FormatSystemTimeFallback::Integer) {
            Ok(()) => String::from_utf8_lossy(&buf).into_owned(),
            Err(_) => "?".into(),
        }
    }

    fn name_text(&self, e: &EntryInfo) -> OsString {
        let mut name = locale_aware_escape_name(&e.display_name, self.config.quoting_style);
        let ft = e.file_type.as_ref();
        let is_link = ft.is_some_and(|f| f.is_symlink());
        if is_link && let Ok(target) = std::fs::read_link(&e.path) {
            name.push(" -> ");
            name.push(locale_aware_escape_name(
                target.as_os_str(),
                self.config.quoting_style,
            ));
            return name;
        }
        let suffix = match (self.indicator, ft) {
            (Indicator::None, _) | (_, None) => None,
            (_, Some(f)) if f.is_dir() => Some("/"),
            (Indicator::Slash, _) => None,
            (_, Some(f)) if f.is_symlink() => Some("@"),
            _ => None,
        };
        if let Some(s) = suffix {
            name.push(s);
        }
        name
    }

    fn row(&self, e: &EntryInfo) -> [String; 4] {
        let type_char = match e.file_type.as_ref() {
            Some(f) if f.is_dir() => 'd',
            Some(f) if f.is_symlink() => 'l',
            Some(f) if f.is_file() => '-',
            _ => '?',
        };
        match &e.metadata {
            Some(md) => [
                format!("{type_char}?????????"),
                self.size_text(md),
                self.date_text(md),
                String::new(),
            ],
            None => [
                format!("{type_char}?????????"),
                "?".into(),
                "?".into(),
                String::new(),
            ],
        }
    }
}

fn write_os(out: &mut impl Write, s: &OsStr) -> std::io::Result<()> {
    out.write_all(s.to_string_lossy().as_bytes())
}

impl LsOutput for LongOutput<'_> {
    fn write_entries(&mut self, entries: &[PathData], config: &Config) -> UResult<()> {
        let infos: Vec<EntryInfo> = entries.iter().map(|p| p.to_entry_info(config)).collect();
        let rows: Vec<[String; 4]> = infos.iter().map(|e| self.row(e)).collect();
        let size_w = rows.iter().map(|r| r[1].len()).max().unwrap_or(0);
        let date_w = rows.iter().map(|r| r[2].chars().count()).max().unwrap_or(0);
        for (e, r) in infos.iter().zip(&rows) {
            let mut line = format!("{} ?", r[0]);
            for shown in [self.owner, self.group, self.author] {
                if shown {
                    line.push_str(" ?");
                }
            }
            line.push_str(&format!(" {:>size_w$} {:<date_w$} ", r[1], r[2]));
            let name = self.name_text(e);
            self.out.write_all(line.as_bytes())?;
            write_os(&mut self.out, &name)?;
            self.out.write_all(&[self.terminator])?;
        }
        Ok(())
    }

    fn write_dir_header(
        &mut self,
        path: &PathData,
        config: &Config,
        is_first: bool,
    ) -> UResult<()> {
        if !is_first {
            self.out.write_all(b"\n")?;
        }
        let p = path.to_entry_info(config).path;
        write_os(
            &mut self.out,
            &locale_aware_escape_dir_name(p.as_os_str(), config.quoting_style),
        )?;
        self.out.write_all(b":\n")?;
        Ok(())
    }

    fn write_total(&mut self, _total: u64, _config: &Config) -> UResult<()> {
        self.out.write_all(b"total ?")?;
        self.out.write_all(&[self.terminator])?;
        Ok(())
    }

    fn flush(&mut self) -> UResult<()> {
        self.out.flush()?;
        Ok(())
    }
}
