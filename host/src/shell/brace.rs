//! Brace expansion (`a{b,c}`, `{1..10..2}`, `{a..e}`) of a word's text, with brush-parser's
//! brace grammar. The number of words is bounded before they are made; a word whose braces the
//! grammar would backtrack on for long (more than [`MAX_BRACE_OPENINGS`] unclosed `{`) or cannot
//! read is left as written, as bash leaves what it cannot expand. Pure: no state, no I/O.

use super::{Ctx, Host, ShellError, parse};
use brush_parser::word::{self, BraceExpressionMember as BM, BraceExpressionOrText as BT};

/// Most unclosed `{` (not of `${`) a word may have and still be brace-expanded.
pub const MAX_BRACE_OPENINGS: usize = 6;

/// Brace expansion of a word's text: the texts it becomes (itself when it has none).
pub fn brace<H: Host>(ctx: &Ctx<'_, H>, text: &str) -> Result<Vec<String>, ShellError> {
    brace_words_within(text, ctx.bounds.max_fields)
}

#[cfg(test)]
fn brace_words(text: &str) -> Vec<String> {
    brace_words_within(text, 1000).unwrap_or_default()
}

fn brace_words_within(text: &str, max: usize) -> Result<Vec<String>, ShellError> {
    if !text.contains('{') {
        return Ok(vec![text.to_owned()]);
    }
    // brush-parser panics on a sequence bound past i64 (`{1..99999999999999999999}`, found by
    // review and by fuzzing); such a word is left as written, as bash leaves an invalid brace
    // expression. A number that long is never given to it; the unwind guard is the backstop.
    let longest_number = text
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    if longest_number > 18 {
        return Ok(vec![text.to_owned()]);
    }
    // brush-parser's brace grammar backtracks about three times over per unclosed `{` (found by
    // fuzzing: 21 of them took minutes, on a runtime worker); a word with more than
    // MAX_BRACE_OPENINGS left unclosed is not brace-expanded (measured worst case at the
    // bound: ~0.5 ms). Closed groups parse in linear time and are bounded by `max_fields`.
    let mut open = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' if !text[..i].ends_with('$') => open += 1,
            '}' => open = open.saturating_sub(1),
            _ => {}
        }
    }
    if open > MAX_BRACE_OPENINGS {
        return Ok(vec![text.to_owned()]);
    }
    let parsed = parse::contained("word", || {
        word::parse_brace_expansions(text, &parse::options())
    });
    let Ok(Ok(Some(parts))) = parsed else {
        return Ok(vec![text.to_owned()]);
    };
    brace_list(&parts, max)
}

fn too_many(max: usize) -> ShellError {
    ShellError::Bounds(format!("a brace expansion makes more than {max} words"))
}

fn brace_list(parts: &[BT], max: usize) -> Result<Vec<String>, ShellError> {
    let mut acc = vec![String::new()];
    for part in parts {
        let alts: Vec<String> = match part {
            BT::Text(t) => vec![t.clone()],
            BT::Expr(members) => {
                let mut alts = Vec::new();
                for m in members {
                    match m {
                        BM::NumberSequence {
                            start,
                            end,
                            increment,
                        } => {
                            let step = increment.unsigned_abs().max(1);
                            let span = (start.abs_diff(*end) / step).saturating_add(1);
                            if span > max as u64 {
                                return Err(too_many(max));
                            }
                            let mut v = *start;
                            for _ in 0..span {
                                alts.push(v.to_string());
                                let step = i64::try_from(step).unwrap_or(i64::MAX);
                                v = if start <= end {
                                    v.saturating_add(step)
                                } else {
                                    v.saturating_sub(step)
                                };
                            }
                        }
                        BM::CharSequence {
                            start,
                            end,
                            increment,
                        } => {
                            let step = increment.unsigned_abs().max(1) as usize;
                            let (a, b) = (*start as u32, *end as u32);
                            let range: Vec<u32> = if a <= b {
                                (a..=b).step_by(step).collect()
                            } else {
                                (b..=a).rev().step_by(step).collect()
                            };
                            alts.extend(
                                range
                                    .into_iter()
                                    .filter_map(char::from_u32)
                                    .map(String::from),
                            );
                        }
                        BM::Child(inner) => alts.extend(brace_list(inner, max)?),
                    }
                    if alts.len() > max {
                        return Err(too_many(max));
                    }
                }
                alts
            }
        };
        if acc.len().saturating_mul(alts.len()) > max {
            return Err(too_many(max));
        }
        acc = acc
            .iter()
            .flat_map(|a| alts.iter().map(move |b| format!("{a}{b}")))
            .collect();
    }
    Ok(acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_the_brace_grammar_would_backtrack_on_are_left_as_written() {
        let ctx_free = |t: &str| {
            let started = std::time::Instant::now();
            let r = brace_words(t);
            assert!(started.elapsed() < std::time::Duration::from_secs(1), "{t}");
            r
        };
        assert_eq!(ctx_free(&"{,".repeat(40)), ["{,".repeat(40)]);
        assert_eq!(
            ctx_free("{1..99999999999999999999}"),
            ["{1..99999999999999999999}"]
        );
        assert_eq!(ctx_free("${a}{x,y}"), ["${a}x", "${a}y"]);
    }

    #[test]
    fn brace_lists_are_bounded_before_they_are_made() {
        let parts = word::parse_brace_expansions("a{1..3}b", &parse::options())
            .unwrap()
            .unwrap();
        assert_eq!(brace_list(&parts, 10).unwrap(), ["a1b", "a2b", "a3b"]);
        let huge = word::parse_brace_expansions("{1..100000000}", &parse::options())
            .unwrap()
            .unwrap();
        assert!(brace_list(&huge, 1000).is_err());
        let prod = word::parse_brace_expansions("{a,b}{c,d}", &parse::options())
            .unwrap()
            .unwrap();
        assert_eq!(brace_list(&prod, 10).unwrap(), ["ac", "ad", "bc", "bd"]);
    }
}
