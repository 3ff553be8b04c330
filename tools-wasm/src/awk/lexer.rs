//! The awk lexer: program text to tokens, with awk's own rules: newlines are tokens, a
//! backslash-newline continues the line, `#` starts a comment, `/` starts a regex literal where
//! an operand is expected and divides elsewhere, a name directly followed by `(` is a call.
//!
//! Must not: decide grammar beyond the regex-or-division question.

use super::error::AwkError;

/// One token.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    Newline,
    Number(f64),
    Str(String),
    Regex(String),
    Name(String),
    /// A user function name directly followed by `(`.
    FuncName(String),
    /// A built-in function name (`length` may appear without parentheses).
    Builtin(String),
    Keyword(&'static str),
    /// Punctuation and operators, as written (`**` and `**=` are read as `^` and `^=`).
    Op(&'static str),
    Eof,
}

/// A token and the line it starts on.
#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    pub line: usize,
}

const KEYWORDS: &[&str] = &[
    "BEGIN", "END", "function", "func", "if", "else", "while", "for", "do", "break", "continue",
    "next", "nextfile", "exit", "return", "delete", "in", "getline", "print", "printf",
];

/// Built-in functions (`system` is parsed so that it can be refused clearly).
pub const BUILTINS: &[&str] = &[
    "length", "substr", "index", "split", "sub", "gsub", "match", "sprintf", "tolower", "toupper",
    "int", "sqrt", "exp", "log", "sin", "cos", "atan2", "rand", "srand", "close", "system",
    "fflush",
];

/// Longest first, so that `**=` wins over `**` and `*`.
const OPS: &[&str] = &[
    "**=", "&&", "||", "++", "--", "+=", "-=", "*=", "/=", "%=", "^=", "**", "==", "<=", ">=",
    "!=", "!~", ">>", "{", "}", "(", ")", "[", "]", ";", ",", "+", "-", "*", "/", "%", "^", "!",
    ">", "<", "|", "?", ":", "~", "$", "=",
];

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub fn tokenize(src: &str) -> Result<Vec<Token>, AwkError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out: Vec<Token> = Vec::new();
    let mut i = 0;
    let mut line = 1;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\r' => i += 1,
            '\\' if chars.get(i + 1) == Some(&'\n') => {
                i += 2;
                line += 1;
            }
            '\\' if chars.get(i + 1) == Some(&'\r') && chars.get(i + 2) == Some(&'\n') => {
                i += 3;
                line += 1;
            }
            '\n' => {
                out.push(Token {
                    tok: Tok::Newline,
                    line,
                });
                line += 1;
                i += 1;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' => {
                let (s, end) = string(&chars, i + 1, line)?;
                out.push(Token {
                    tok: Tok::Str(s),
                    line,
                });
                i = end;
            }
            '/' if regex_allowed(out.last().map(|t| &t.tok)) => {
                let (s, end) = regex(&chars, i + 1, line)?;
                out.push(Token {
                    tok: Tok::Regex(s),
                    line,
                });
                i = end;
            }
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let (n, end) = number(&chars, i);
                out.push(Token {
                    tok: Tok::Number(n),
                    line,
                });
                i = end;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let tok = if let Some(k) = KEYWORDS.iter().find(|k| **k == word) {
                    Tok::Keyword(if *k == "func" { "function" } else { k })
                } else if BUILTINS.contains(&word.as_str()) {
                    Tok::Builtin(word)
                } else if chars.get(i) == Some(&'(') {
                    Tok::FuncName(word)
                } else {
                    Tok::Name(word)
                };
                out.push(Token { tok, line });
            }
            _ => {
                let op = OPS
                    .iter()
                    .find(|op| {
                        op.chars()
                            .enumerate()
                            .all(|(k, oc)| chars.get(i + k) == Some(&oc))
                    })
                    .ok_or_else(|| AwkError::Syntax {
                        line,
                        message: format!("invalid char '{c}' in expression"),
                    })?;
                i += op.len();
                let op: &'static str = match *op {
                    "**" => "^",
                    "**=" => "^=",
                    other => other,
                };
                out.push(Token {
                    tok: Tok::Op(op),
                    line,
                });
            }
        }
    }
    out.push(Token {
        tok: Tok::Eof,
        line,
    });
    Ok(out)
}

/// After these a `/` divides; elsewhere it starts a regex.
fn regex_allowed(prev: Option<&Tok>) -> bool {
    !matches!(
        prev,
        Some(
            Tok::Name(_)
                | Tok::Number(_)
                | Tok::Str(_)
                | Tok::Regex(_)
                | Tok::Builtin(_)
                | Tok::Op(")" | "]" | "$" | "++" | "--")
        )
    )
}

fn number(chars: &[char], mut i: usize) -> (f64, usize) {
    let start = i;
    if chars[i] == '0'
        && matches!(chars.get(i + 1), Some('x' | 'X'))
        && chars.get(i + 2).is_some_and(char::is_ascii_hexdigit)
    {
        i += 2;
        let mut n = 0.0;
        while let Some(d) = chars.get(i).and_then(|c| c.to_digit(16)) {
            n = n * 16.0 + f64::from(d);
            i += 1;
        }
        return (n, i);
    }
    while chars.get(i).is_some_and(char::is_ascii_digit) {
        i += 1;
    }
    if chars.get(i) == Some(&'.') {
        i += 1;
        while chars.get(i).is_some_and(char::is_ascii_digit) {
            i += 1;
        }
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        let mut j = i + 1;
        if matches!(chars.get(j), Some('+' | '-')) {
            j += 1;
        }
        if chars.get(j).is_some_and(char::is_ascii_digit) {
            while chars.get(j).is_some_and(char::is_ascii_digit) {
                j += 1;
            }
            i = j;
        }
    }
    let text: String = chars[start..i].iter().collect();
    (text.parse().unwrap_or(0.0), i)
}

/// A string literal's body from `i` (after the quote), escapes processed.
fn string(chars: &[char], mut i: usize, line: usize) -> Result<(String, usize), AwkError> {
    let mut s = String::new();
    loop {
        match chars.get(i) {
            None | Some('\n') => {
                return Err(AwkError::Syntax {
                    line,
                    message: "unterminated string".into(),
                });
            }
            Some('"') => return Ok((s, i + 1)),
            Some('\\') => {
                i += 1;
                i = escape(chars, i, &mut s);
            }
            Some(&c) => {
                s.push(c);
                i += 1;
            }
        }
    }
}

/// Reads the escape after a backslash at `chars[i]` into `s`; returns the next index. Shared
/// with `-v` assignments.
pub fn escape(chars: &[char], mut i: usize, s: &mut String) -> usize {
    let Some(&c) = chars.get(i) else {
        s.push('\\');
        return i;
    };
    i += 1;
    match c {
        'n' => s.push('\n'),
        't' => s.push('\t'),
        'r' => s.push('\r'),
        '\\' => s.push('\\'),
        '"' => s.push('"'),
        '/' => s.push('/'),
        'a' => s.push('\x07'),
        'b' => s.push('\x08'),
        'f' => s.push('\x0c'),
        'v' => s.push('\x0b'),
        '\n' => {}
        '0'..='7' => {
            let mut n = c.to_digit(8).unwrap_or(0);
            let mut k = 0;
            while k < 2 {
                match chars.get(i).and_then(|d| d.to_digit(8)) {
                    Some(d) => {
                        n = n * 8 + d;
                        i += 1;
                        k += 1;
                    }
                    None => break,
                }
            }
            s.push(char::from_u32(n & 0xff).unwrap_or('\0'));
        }
        other => {
            // Unknown escapes keep the backslash out, as gawk does (with a warning).
            s.push(other);
        }
    }
    i
}

/// A regex literal's body from `i` (after the slash): `\/` becomes `/`, other escapes are
/// left for the regex translator.
fn regex(chars: &[char], mut i: usize, line: usize) -> Result<(String, usize), AwkError> {
    let mut s = String::new();
    let mut in_bracket = false;
    loop {
        match chars.get(i) {
            None | Some('\n') => {
                return Err(AwkError::Syntax {
                    line,
                    message: "unterminated regexp".into(),
                });
            }
            Some('/') if !in_bracket => return Ok((s, i + 1)),
            Some('\\') if chars.get(i + 1) == Some(&'/') => {
                s.push('/');
                i += 2;
            }
            Some('\\') => {
                s.push('\\');
                if let Some(&n) = chars.get(i + 1) {
                    s.push(n);
                }
                i += 2;
            }
            Some('[') if !in_bracket => {
                in_bracket = true;
                s.push('[');
                i += 1;
                // A `]` (after an optional `^`) first in a bracket is a member, not its end.
                if chars.get(i) == Some(&'^') {
                    s.push('^');
                    i += 1;
                }
                if chars.get(i) == Some(&']') {
                    s.push(']');
                    i += 1;
                }
            }
            Some('[') if chars.get(i + 1) == Some(&':') => {
                // A character class inside a bracket: copy through its closing `:]`.
                s.push_str("[:");
                i += 2;
                while let Some(&c) = chars.get(i) {
                    if c == '\n' || (c == ':' && chars.get(i + 1) == Some(&']')) {
                        break;
                    }
                    s.push(c);
                    i += 1;
                }
                if chars.get(i) == Some(&':') {
                    s.push_str(":]");
                    i += 2;
                }
            }
            Some(']') if in_bracket => {
                in_bracket = false;
                s.push(']');
                i += 1;
            }
            Some(&c) => {
                s.push(c);
                i += 1;
            }
        }
    }
}
