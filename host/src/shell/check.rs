//! The check before a script runs: every command word written literally in the script —
//! including inside functions, loops and command substitutions — must be one of the
//! interpreter's built-ins, a function the script defines, or a command on the allowlist; and
//! the constructs runbox does not run (background jobs, coprocesses, process substitution,
//! descriptors above 2, `time`) are refused. The first problem refuses the whole script, with
//! the command's byte offset.
//!
//! This is the first of two checks: a command word made at run time (`$cmd`) is judged when it
//! would start ([`super::exec`]). Pure: nothing here runs or opens anything.

use super::builtins::is_builtin;
use super::parse::{MAX_NESTING, byte_offset, parse};
use super::{Host, ShellError};
use brush_parser::ast::{
    Command, CommandPrefixOrSuffixItem as Item, CompoundCommand as CC, CompoundList,
    ExtendedTestExpr as X, IoFileRedirectTarget as T, IoRedirect, Program, SeparatorOperator, Word,
};
use brush_parser::word::{self, ParameterExpr as PE, WordPiece as WP, WordPieceWithSource};
use std::collections::HashSet;

/// Why a name that a shell would know is still refused, for the error message.
pub fn why_refused(name: &str) -> Option<&'static str> {
    Some(match name {
        "eval" => "runbox never turns text into commands",
        "exec" => "runbox never replaces the interpreter with a program",
        "source" | "." => "runbox does not run script files; pass the script's text instead",
        "bash" | "sh" | "zsh" | "dash" | "ksh" | "fish" => {
            "no real shell ever runs; runbox interprets the script itself"
        }
        "trap" | "kill" | "jobs" | "fg" | "bg" | "disown" | "coproc" | "ulimit" | "umask"
        | "alias" | "enable" | "builtin" | "declare" | "typeset" | "readonly" | "let" | "shopt"
        | "hash" | "type" | "getopts" | "mapfile" | "readarray" | "pushd" | "popd" | "dirs"
        | "times" | "suspend" | "logout" | "history" | "fc" | "caller" | "complete" => {
            "this shell built-in is not supported by runbox's interpreter"
        }
        n if n.contains('/') => "runbox runs commands by name from its allowlist, never by path",
        _ => return None,
    })
}

struct Checker<'a, H: Host> {
    host: &'a H,
    text: &'a str,
    functions: HashSet<String>,
}

/// Checks `program` (parsed from `text`) before it runs.
///
/// # Errors
/// The first command outside the allowlist ([`ShellError::NotAllowed`]) or refused construct.
pub fn check<H: Host>(host: &H, text: &str, program: &Program) -> Result<(), ShellError> {
    let mut functions = HashSet::new();
    collect_functions(program, &mut functions);
    let c = Checker {
        host,
        text,
        functions,
    };
    for l in &program.complete_commands {
        c.list(l, 0)?;
    }
    Ok(())
}

fn collect_functions(p: &Program, out: &mut HashSet<String>) {
    // Function definitions can sit anywhere; a textual scan of the tree's debug form would be
    // fragile, so walk the lists.
    fn list(l: &CompoundList, out: &mut HashSet<String>) {
        for item in &l.0 {
            for p in
                std::iter::once(&item.0.first).chain(item.0.additional.iter().map(|ao| match ao {
                    brush_parser::ast::AndOr::And(p) | brush_parser::ast::AndOr::Or(p) => p,
                }))
            {
                for c in &p.seq {
                    command(c, out);
                }
            }
        }
    }
    fn command(c: &Command, out: &mut HashSet<String>) {
        match c {
            Command::Function(f) => {
                out.insert(f.fname.value.clone());
                compound(&f.body.0, out);
            }
            Command::Compound(cc, _) => compound(cc, out),
            _ => {}
        }
    }
    fn compound(cc: &CC, out: &mut HashSet<String>) {
        match cc {
            CC::BraceGroup(b) => list(&b.list, out),
            CC::Subshell(s) => list(&s.list, out),
            CC::ForClause(f) => list(&f.body.list, out),
            CC::ArithmeticForClause(f) => list(&f.body.list, out),
            CC::CaseClause(c) => c
                .cases
                .iter()
                .filter_map(|i| i.cmd.as_ref())
                .for_each(|l| list(l, out)),
            CC::IfClause(i) => {
                list(&i.condition, out);
                list(&i.then, out);
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        list(c, out);
                    }
                    list(&e.body, out);
                }
            }
            CC::WhileClause(w) | CC::UntilClause(w) => {
                list(&w.0, out);
                list(&w.1.list, out);
            }
            CC::Arithmetic(_) | CC::Coprocess(_) => {}
        }
    }
    for l in &p.complete_commands {
        list(l, out);
    }
}

fn construct(what: &str, offset: Option<usize>, why: &'static str) -> ShellError {
    ShellError::Construct {
        construct: what.to_owned(),
        offset,
        why,
    }
}

impl<H: Host> Checker<'_, H> {
    fn offset(&self, w: &Word) -> Option<usize> {
        w.loc.as_ref().map(|l| byte_offset(self.text, &l.start))
    }

    fn list(&self, l: &CompoundList, depth: usize) -> Result<(), ShellError> {
        for item in &l.0 {
            let pipes =
                std::iter::once(&item.0.first).chain(item.0.additional.iter().map(|ao| match ao {
                    brush_parser::ast::AndOr::And(p) | brush_parser::ast::AndOr::Or(p) => p,
                }));
            for p in pipes {
                if p.timed.is_some() {
                    return Err(construct("time", None, "timing pipelines is not supported"));
                }
                for c in &p.seq {
                    self.command(c, depth)?;
                }
            }
            if matches!(item.1, SeparatorOperator::Async) {
                return Err(construct(
                    "&",
                    None,
                    "background jobs are not run; every command runs to its end within the call",
                ));
            }
        }
        Ok(())
    }

    fn command(&self, c: &Command, depth: usize) -> Result<(), ShellError> {
        match c {
            Command::Simple(s) => {
                for item in s
                    .prefix
                    .iter()
                    .flat_map(|p| p.0.iter())
                    .chain(s.suffix.iter().flat_map(|p| p.0.iter()))
                {
                    match item {
                        Item::IoRedirect(r) => self.redirect(r, depth)?,
                        Item::Word(w) => self.word(w, depth)?,
                        Item::AssignmentWord(_, w) => self.word(w, depth)?,
                        Item::ProcessSubstitution(_, sub) => {
                            return Err(construct(
                                "<(…)",
                                Some(byte_offset(self.text, &sub.loc.start)),
                                "process substitution is not supported",
                            ));
                        }
                    }
                }
                if let Some(w) = &s.word_or_name {
                    self.word(w, depth)?;
                    if let Some(name) = super::literal::literal(&w.value) {
                        self.name(&name, self.offset(w))?;
                    }
                }
                Ok(())
            }
            Command::Compound(cc, redirects) => {
                for r in redirects.iter().flat_map(|r| r.0.iter()) {
                    self.redirect(r, depth)?;
                }
                self.compound(cc, depth)
            }
            Command::Function(f) => {
                for r in f.body.1.iter().flat_map(|r| r.0.iter()) {
                    self.redirect(r, depth)?;
                }
                self.compound(&f.body.0, depth)
            }
            Command::ExtendedTest(t, redirects) => {
                for r in redirects.iter().flat_map(|r| r.0.iter()) {
                    self.redirect(r, depth)?;
                }
                self.test(&t.expr, depth, 0)
            }
        }
    }

    /// Checks a `[[ ]]` expression's words, and its depth: its evaluation recurses once per
    /// level (found by review: 3,000 `!` overflowed a runtime worker's stack).
    fn test(&self, e: &X, depth: usize, level: usize) -> Result<(), ShellError> {
        if level > MAX_NESTING {
            return Err(ShellError::Bounds(format!(
                "a [[ ]] expression nests more than {MAX_NESTING} operators deep"
            )));
        }
        let level = level + 1;
        match e {
            X::And(a, b) | X::Or(a, b) => {
                self.test(a, depth, level)?;
                self.test(b, depth, level)
            }
            X::Not(a) | X::Parenthesized(a) => self.test(a, depth, level),
            X::UnaryTest(_, w) => self.word(w, depth),
            X::BinaryTest(_, a, b) => {
                self.word(a, depth)?;
                self.word(b, depth)
            }
        }
    }

    fn compound(&self, cc: &CC, depth: usize) -> Result<(), ShellError> {
        match cc {
            CC::BraceGroup(b) => self.list(&b.list, depth),
            CC::Subshell(s) => self.list(&s.list, depth),
            CC::ForClause(f) => {
                for w in f.values.iter().flatten() {
                    self.word(w, depth)?;
                }
                self.list(&f.body.list, depth)
            }
            CC::ArithmeticForClause(f) => {
                for e in [&f.initializer, &f.condition, &f.updater]
                    .into_iter()
                    .flatten()
                {
                    self.text_word(&e.value, None, depth)?;
                }
                self.list(&f.body.list, depth)
            }
            CC::CaseClause(c) => {
                self.word(&c.value, depth)?;
                for item in &c.cases {
                    for p in &item.patterns {
                        self.word(p, depth)?;
                    }
                    if let Some(l) = &item.cmd {
                        self.list(l, depth)?;
                    }
                }
                Ok(())
            }
            CC::IfClause(i) => {
                self.list(&i.condition, depth)?;
                self.list(&i.then, depth)?;
                for e in i.elses.iter().flatten() {
                    if let Some(c) = &e.condition {
                        self.list(c, depth)?;
                    }
                    self.list(&e.body, depth)?;
                }
                Ok(())
            }
            CC::WhileClause(w) | CC::UntilClause(w) => {
                self.list(&w.0, depth)?;
                self.list(&w.1.list, depth)
            }
            CC::Arithmetic(a) => self.text_word(&a.expr.value, None, depth),
            CC::Coprocess(c) => Err(construct(
                "coproc",
                Some(byte_offset(self.text, &c.loc.start)),
                "background jobs are not run",
            )),
        }
    }

    fn redirect(&self, r: &IoRedirect, depth: usize) -> Result<(), ShellError> {
        let fd_ok = |fd: &Option<i32>| fd.is_none_or(|f| (0..=2).contains(&f));
        match r {
            IoRedirect::File(fd, _, target) => {
                if !fd_ok(fd) {
                    return Err(construct(
                        &format!("descriptor {}", fd.unwrap_or(0)),
                        None,
                        "only descriptors 0, 1 and 2 can be redirected",
                    ));
                }
                match target {
                    T::Filename(w) | T::Duplicate(w) => self.word(w, depth),
                    T::Fd(n) if !(0..=2).contains(n) => Err(construct(
                        &format!("descriptor {n}"),
                        None,
                        "only descriptors 0, 1 and 2 can be redirected",
                    )),
                    T::Fd(_) => Ok(()),
                    T::ProcessSubstitution(_, sub) => Err(construct(
                        "<(…)",
                        Some(byte_offset(self.text, &sub.loc.start)),
                        "process substitution is not supported",
                    )),
                }
            }
            IoRedirect::HereDocument(fd, doc) => {
                if !fd_ok(fd) {
                    return Err(construct(
                        "descriptor above 2",
                        None,
                        "only descriptors 0, 1 and 2 can be redirected",
                    ));
                }
                if doc.requires_expansion {
                    let pieces = super::parse::contained("here-document", || {
                        word::parse_heredoc(&doc.doc.value, &super::parse::options())
                    })?
                    .map_err(|e| ShellError::Syntax(e.to_string()))?;
                    self.pieces(&pieces, self.offset(&doc.doc), depth)?;
                }
                Ok(())
            }
            IoRedirect::HereString(fd, w) => {
                if !fd_ok(fd) {
                    return Err(construct(
                        "descriptor above 2",
                        None,
                        "only descriptors 0, 1 and 2 can be redirected",
                    ));
                }
                self.word(w, depth)
            }
            IoRedirect::OutputAndError(w, _) => self.word(w, depth),
        }
    }

    fn name(&self, name: &str, offset: Option<usize>) -> Result<(), ShellError> {
        if is_builtin(name) || self.functions.contains(name) {
            return Ok(());
        }
        let why = why_refused(name);
        if why.is_none() && self.host.allows(name) {
            return Ok(());
        }
        Err(ShellError::NotAllowed {
            name: name.to_owned(),
            offset,
            why,
        })
    }

    fn word(&self, w: &Word, depth: usize) -> Result<(), ShellError> {
        self.text_word(&w.value, self.offset(w), depth)
    }

    /// Scans a word's text for command substitutions (anywhere, operands included).
    fn text_word(&self, text: &str, offset: Option<usize>, depth: usize) -> Result<(), ShellError> {
        if !text.contains('$') && !text.contains('`') {
            return Ok(());
        }
        let pieces =
            super::parse::contained("word", || word::parse(text, &super::parse::options()))?
                .map_err(|e| ShellError::Syntax(e.to_string()))?;
        self.pieces(&pieces, offset, depth)
    }

    fn pieces(
        &self,
        pieces: &[WordPieceWithSource],
        offset: Option<usize>,
        depth: usize,
    ) -> Result<(), ShellError> {
        if depth > MAX_NESTING {
            return Err(ShellError::Bounds(format!(
                "command substitutions nest more than {MAX_NESTING} deep"
            )));
        }
        for p in pieces {
            match &p.piece {
                WP::DoubleQuotedSequence(inner) | WP::GettextDoubleQuotedSequence(inner) => {
                    self.pieces(inner, offset, depth)?;
                }
                WP::CommandSubstitution(s) | WP::BackquotedCommandSubstitution(s) => {
                    let inner = parse(s)?;
                    let c = Checker {
                        host: self.host,
                        text: self.text,
                        functions: self.functions.clone(),
                    };
                    for l in &inner.complete_commands {
                        c.list_at(l, offset, depth + 1)?;
                    }
                }
                WP::ArithmeticExpression(e) => self.text_word(&e.value, offset, depth + 1)?,
                WP::ParameterExpansion(pe) => {
                    for operand in operands(pe) {
                        self.text_word(operand, offset, depth + 1)?;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// [`list`](Self::list) for a command substitution, whose own offsets are not the
    /// script's: a refusal inside it is reported at the word that holds it.
    fn list_at(
        &self,
        l: &CompoundList,
        offset: Option<usize>,
        depth: usize,
    ) -> Result<(), ShellError> {
        self.list(l, depth).map_err(|e| match e {
            ShellError::NotAllowed { name, why, .. } => {
                ShellError::NotAllowed { name, offset, why }
            }
            ShellError::Construct { construct, why, .. } => ShellError::Construct {
                construct,
                offset,
                why,
            },
            other => other,
        })
    }
}

/// The words inside a parameter expansion that are expanded in turn.
fn operands(pe: &PE) -> Vec<&str> {
    match pe {
        PE::UseDefaultValues {
            default_value: v, ..
        }
        | PE::AssignDefaultValues {
            default_value: v, ..
        } => v.iter().map(String::as_str).collect(),
        PE::IndicateErrorIfNullOrUnset {
            error_message: v, ..
        } => v.iter().map(String::as_str).collect(),
        PE::UseAlternativeValue {
            alternative_value: v,
            ..
        } => v.iter().map(String::as_str).collect(),
        PE::RemoveSmallestSuffixPattern { pattern: v, .. }
        | PE::RemoveLargestSuffixPattern { pattern: v, .. }
        | PE::RemoveSmallestPrefixPattern { pattern: v, .. }
        | PE::RemoveLargestPrefixPattern { pattern: v, .. }
        | PE::UppercaseFirstChar { pattern: v, .. }
        | PE::UppercasePattern { pattern: v, .. }
        | PE::LowercaseFirstChar { pattern: v, .. }
        | PE::LowercasePattern { pattern: v, .. } => v.iter().map(String::as_str).collect(),
        PE::Substring { offset, length, .. } => {
            let mut v = vec![offset.value.as_str()];
            if let Some(l) = length {
                v.push(l.value.as_str());
            }
            v
        }
        PE::ReplaceSubstring {
            pattern,
            replacement,
            ..
        } => {
            let mut v = vec![pattern.as_str()];
            if let Some(r) = replacement {
                v.push(r.as_str());
            }
            v
        }
        _ => Vec::new(),
    }
}
