//! Compiling and running a jq filter with jaq, and printing its outputs like jq.

use super::args::{Args, Named};
use crate::cli::{self, Out};
use jaq_core::compile::{Compiler, Lut};
use jaq_core::data::{DataT, HasLut};
use jaq_core::load::{self, Arena, File, Loader};
use jaq_core::{Ctx, Native, Vars};
use jaq_json::Val;
use jaq_std::input::{HasInputs, Inputs, RcIter};
use std::io::{self, BufReader, Read, Write};

/// The data kind of our filters: JSON values, plus the inputs for `input`/`inputs`.
struct Kind;

impl DataT for Kind {
    type V<'a> = Val;
    type Data<'a> = Data<'a>;
}

/// Global data seen by native filters.
#[derive(Clone)]
struct Data<'a> {
    lut: &'a Lut<Native<Kind>>,
    inputs: Inputs<'a, Val>,
}

impl<'a> HasLut<'a, Kind> for Data<'a> {
    fn lut(&self) -> &'a Lut<Native<Kind>> {
        self.lut
    }
}

impl<'a> HasInputs<'a, Val> for Data<'a> {
    fn inputs(&self) -> Inputs<'a, Val> {
        self.inputs
    }
}

type Filter = jaq_core::compile::Filter<Native<Kind>>;

/// jq definitions missing from jaq (`@csv`, `@tsv`).
const EXTRA_DEFS: &str = include_str!("extra.jq");

/// Compiles `code` with globals `vars` (names with `$`); `Err` is the message to print.
fn compile(code: &str, name: &str, vars: &[String]) -> Result<Filter, String> {
    let arena = Arena::default();
    let extra = load::parse(EXTRA_DEFS, |p| p.defs()).unwrap_or_default();
    let defs = jaq_core::defs()
        .chain(jaq_std::defs())
        .chain(jaq_json::defs())
        .chain(extra);
    let loader = Loader::new(defs);
    let line_of = |part: &str| code[..load::span(code, part).start].matches('\n').count() + 1;
    let modules = loader
        .load(&arena, File { path: (), code })
        .map_err(|errs| {
            let mut msgs = Vec::new();
            for (_, e) in errs {
                match e {
                    load::Error::Io(v) => {
                        msgs.extend(v.into_iter().map(|(p, e)| format!("cannot load {p}: {e}")))
                    }
                    load::Error::Lex(v) => msgs.extend(v.into_iter().map(|(exp, found)| {
                        format!(
                            "syntax error: expected {}, found {} at {name}, line {}",
                            exp.as_str(),
                            shown(found),
                            line_of(found)
                        )
                    })),
                    load::Error::Parse(v) => msgs.extend(v.into_iter().map(|(exp, found)| {
                        format!(
                            "syntax error: expected {}, found {} at {name}, line {}",
                            exp.as_str(),
                            shown(found),
                            line_of(found)
                        )
                    })),
                }
            }
            msgs.join("\njq: error: ")
        })?;
    let funs = jaq_core::funs::<Kind>()
        .chain(jaq_std::funs())
        .chain(
            jaq_std::input::funs()
                .into_vec()
                .into_iter()
                .map(jaq_core::native::run),
        )
        .chain(jaq_json::funs());
    Compiler::default()
        .with_funs(funs)
        .with_global_vars(vars.iter().map(String::as_str))
        .compile(modules)
        .map_err(|errs| {
            errs.into_iter()
                .flat_map(|(_, v)| v)
                .map(|(found, undefined)| {
                    format!(
                        "{found}/{} is not defined at {name}, line {}",
                        undefined.as_str(),
                        line_of(found)
                    )
                })
                .collect::<Vec<_>>()
                .join("\njq: error: ")
        })
}

fn shown(found: &str) -> String {
    match found.chars().next() {
        None => "end of input".into(),
        Some(c) => format!("`{c}`"),
    }
}

fn parse_json(text: &[u8], what: &str) -> Result<Val, String> {
    jaq_json::read::parse_single(text).map_err(|e| format!("{what}: invalid JSON text: {e}"))
}

fn read_path(path: &std::ffi::OsStr) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| {
        format!(
            "Could not open {}: {}",
            path.to_string_lossy(),
            cli::io_message(&e)
        )
    })
}

fn named_value(source: &Named) -> Result<Val, String> {
    Ok(match source {
        Named::Text(s) => Val::from(s.clone()),
        Named::Json(s) => parse_json(s.as_bytes(), s)?,
        Named::SlurpFile(p) => {
            let bytes = read_path(p)?;
            let vals: Result<Vec<Val>, _> = jaq_json::read::parse_many(&bytes).collect();
            Val::from_iter(vals.map_err(|e| format!("{}: {e}", p.to_string_lossy()))?)
        }
        Named::RawFile(p) => Val::from(String::from_utf8_lossy(&read_path(p)?).into_owned()),
    })
}

fn object(pairs: Vec<(String, Val)>) -> Val {
    let map: jaq_json::Map = pairs.into_iter().map(|(k, v)| (Val::from(k), v)).collect();
    Val::Obj(jaq_json::Rc::new(map))
}

/// The readers for the inputs: the files in order, or stdin.
fn readers(a: &Args) -> Vec<(String, Box<dyn Read>)> {
    if a.files.is_empty() {
        return vec![("<stdin>".into(), Box::new(io::stdin()))];
    }
    a.files
        .iter()
        .map(|f| -> (String, Box<dyn Read>) {
            let name = f.to_string_lossy().into_owned();
            match std::fs::File::open(f) {
                Ok(file) => (name, Box::new(file)),
                Err(e) => {
                    let msg = format!("Could not open {name}: {}", cli::io_message(&e));
                    (
                        name,
                        Box::new(FailingReader(Some(io::Error::new(e.kind(), msg)))),
                    )
                }
            }
        })
        .collect()
}

/// A reader that fails once with a prepared error (an input file that could not be opened).
struct FailingReader(Option<io::Error>);

impl Read for FailingReader {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        match self.0.take() {
            Some(e) => Err(e),
            None => Ok(0),
        }
    }
}

/// The input values as a stream of results (errors as messages).
fn inputs(a: &Args) -> Box<dyn Iterator<Item = Result<Val, String>>> {
    let sources = readers(a);
    if a.raw_input {
        let mut all = Vec::new();
        let mut error = None;
        for (name, mut r) in sources {
            if let Err(e) = r.read_to_end(&mut all) {
                error = Some(format!("{name}: {e}"));
            }
        }
        let text = String::from_utf8_lossy(&all).into_owned();
        let vals: Vec<Result<Val, String>> = if a.slurp {
            vec![Ok(Val::from(text))]
        } else {
            text.lines().map(|l| Ok(Val::from(l.to_owned()))).collect()
        };
        return Box::new(vals.into_iter().chain(error.map(Err)));
    }
    let iter = sources.into_iter().flat_map(|(name, r)| {
        jaq_json::read::read_many(BufReader::new(r))
            .map(move |v| v.map_err(|e| format!("{name}: {e}")))
    });
    if a.slurp {
        let vals: Result<Vec<Val>, String> = iter.collect();
        return Box::new(std::iter::once(vals.map(Val::from_iter)));
    }
    Box::new(iter)
}

/// Runs jq; returns the exit code.
pub fn run(a: &Args) -> i32 {
    let mut names = vec!["$ENV".to_owned(), "$ARGS".to_owned()];
    let mut values = vec![object(
        std::env::vars().map(|(k, v)| (k, Val::from(v))).collect(),
    )];
    let mut named = Vec::new();
    for (name, source) in &a.named {
        match named_value(source) {
            Ok(v) => {
                names.push(format!("${name}"));
                values.push(v.clone());
                named.push((name.clone(), v));
            }
            Err(e) => {
                cli::error("jq", format!("error: {e}"));
                return 2;
            }
        }
    }
    let positional: Result<Vec<Val>, String> = a.positional.iter().map(named_value).collect();
    let positional = match positional {
        Ok(p) => p,
        Err(e) => {
            cli::error("jq", format!("error: {e}"));
            return 2;
        }
    };
    values.insert(
        1,
        object(vec![
            ("positional".into(), Val::from_iter(positional)),
            ("named".into(), object(named)),
        ]),
    );
    let filter = match compile(&a.filter, &a.filter_name, &names) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("jq: error: {e}\njq: 1 compile error");
            return 3;
        }
    };
    let mut out = Out::new();
    let code = execute(a, &filter, values, &mut out);
    if !out.finish("jq") {
        return 2;
    }
    code
}

fn execute(a: &Args, filter: &Filter, globals: Vec<Val>, out: &mut Out) -> i32 {
    let input_iter = RcIter::new(inputs(a));
    let null_iter: RcIter<Box<dyn Iterator<Item = Result<Val, String>>>> =
        RcIter::new(Box::new(std::iter::once(Ok(Val::Null))));
    let data = Data {
        lut: &filter.lut,
        inputs: &input_iter,
    };
    let ctx = Ctx::<Kind>::new(data, Vars::new(globals));
    let mut last: Option<bool> = None;
    let mut status = 0;
    let main_inputs: &RcIter<dyn Iterator<Item = Result<Val, String>>> = if a.null_input {
        &null_iter
    } else {
        &input_iter
    };
    for item in main_inputs {
        let input = match item {
            Ok(v) => v,
            Err(e) => {
                cli::error("jq", format!("error (at {e})"));
                status = 2;
                break;
            }
        };
        for output in filter.id.run((ctx.clone(), input)) {
            match output {
                Ok(v) => {
                    last = Some(!matches!(v, Val::Null | Val::Bool(false)));
                    if print(a, &v, out).is_err() {
                        return 2;
                    }
                }
                Err(exn) => match exn.get_err() {
                    Ok(e) => {
                        let _ = out.flush();
                        cli::error("jq", format!("error (at <unknown>): {e}"));
                        status = 5;
                        // As jq: an error ends this input's outputs; the next input runs.
                        break;
                    }
                    Err(exn) => {
                        let code = exn.get_halt().unwrap_or(5);
                        let _ = out.flush();
                        return code;
                    }
                },
            }
        }
    }
    if status != 0 {
        return status;
    }
    match (a.exit_status, last) {
        (false, _) => 0,
        (true, None) => 4,
        (true, Some(true)) => 0,
        (true, Some(false)) => 1,
    }
}

fn print(a: &Args, v: &Val, out: &mut Out) -> io::Result<()> {
    let mut buf = Vec::new();
    match v {
        Val::TStr(s) if a.raw_output => buf.extend_from_slice(s),
        _ => {
            let indent = if a.compact {
                None
            } else if a.tab {
                Some("\t".to_owned())
            } else {
                Some(" ".repeat(a.indent))
            };
            let indent = indent.filter(|i| !i.is_empty());
            let pp = jaq_json::write::Pp {
                sep_space: indent.is_some(),
                indent,
                sort_keys: a.sort_keys,
                styles: Default::default(),
            };
            jaq_json::write::write(&mut buf, &pp, 0, v)?;
        }
    }
    if a.ascii {
        buf = escape_non_ascii(&buf);
    }
    out.write_all(&buf)?;
    if !a.join_output {
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `-a`: every non-ASCII character as `\uXXXX` (surrogate pairs above U+FFFF). In JSON output
/// such characters only occur inside strings, so this is safe on the whole text.
fn escape_non_ascii(bytes: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::escape_non_ascii;

    #[test]
    fn extra_defs_parse() {
        let defs: Option<Vec<_>> = jaq_core::load::parse(super::EXTRA_DEFS, |p| p.defs());
        assert_eq!(defs.map(|d| d.len()), Some(2));
    }

    #[test]
    fn ascii_escapes() {
        assert_eq!(
            escape_non_ascii("\"é😀\"".as_bytes()),
            b"\"\\u00e9\\ud83d\\ude00\""
        );
    }
}
