//! The bounds on one request line, and a byte scanner that enforces the structural ones while
//! the line is still being read.
//!
//! What a JSON value costs once parsed is not its length: `[0,0,0,…]` is two bytes per element
//! on the wire and tens of bytes per element as a `serde_json::Value` (a 16 MiB line of it took
//! the server to 1.6 GiB). So before anything builds a value, [`Scanner`] counts, byte by byte
//! and outside strings, the nesting depth and the commas and opening brackets (together an upper
//! bound on the number of array elements and object members), and refuses a line as soon as
//! either is over its [`Bounds`]. It allocates nothing and never looks back, so a refused line
//! costs only the bytes read before the bound was crossed.
//!
//! The scanner does not validate JSON: a line it lets through is parsed for real afterwards,
//! and whatever is wrong with it then is a parse error. It must never under-count.

/// The bounds on one client line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// Longest line in bytes, newline excluded.
    pub max_line_bytes: usize,
    /// Deepest nesting of arrays and objects.
    pub max_depth: u32,
    /// Most array elements plus object members in the whole line (counted as commas plus
    /// opening brackets, an upper bound on both together).
    pub max_elements: u64,
}

/// Deepest nesting accepted. A `run` call nests 6 levels (`params.arguments.pipeline[].args[]`);
/// serde_json itself stops at 128, and a line that reached that limit inside rmcp would be
/// answered without its id.
pub const MAX_DEPTH: u32 = 64;

/// Elements allowed on top of a call's arguments: `_meta`, progress tokens, client extensions.
pub const ELEMENT_SLACK: u64 = 16 * 1024;

/// Bytes allowed on top of a call's stdin and arguments: JSON structure, names, `cwd`, `_meta`.
pub const LINE_SLACK: usize = 1024 * 1024;

impl Bounds {
    /// The bounds that keep every request the policy accepts working:
    ///
    /// - line: `2 × (max_stdin_bytes + stages × max_arg_bytes) + 1 MiB` — the largest stdin
    ///   and arguments a call may carry (a pipeline's stages each get `max_arg_bytes`), even when
    ///   every byte is written as a two-byte JSON escape (`\n`, `\"`, `\\`, `\t`). Text sent
    ///   as raw UTF-8 fits too; text whose every character is escaped as `\uXXXX` (control
    ///   characters, or all non-ASCII with an `ensure_ascii` encoder) takes three to six bytes
    ///   per byte and fits only up to a third to a sixth of the limits. (33 MiB with the
    ///   default limits: 8 MiB of stdin, 8 stages of 1 MiB of arguments.)
    /// - elements: `stages × max_args` arguments plus [`ELEMENT_SLACK`]. (49,152 with the
    ///   defaults.)
    /// - depth: [`MAX_DEPTH`].
    ///
    /// A line is held whole only while it is read and parsed (and, when it waits for a window
    /// slot, as raw bytes), so the line bound is a bound on memory per line, not per element:
    /// the element bound is what keeps a parsed line near its size in bytes.
    pub fn for_requests(
        max_stdin_bytes: usize,
        max_arg_bytes: usize,
        max_args: usize,
        stages: usize,
    ) -> Self {
        let payload = max_stdin_bytes.saturating_add(stages.saturating_mul(max_arg_bytes));
        Self {
            max_line_bytes: payload.saturating_mul(2).saturating_add(LINE_SLACK),
            max_depth: MAX_DEPTH,
            max_elements: u64::try_from(stages.saturating_mul(max_args))
                .unwrap_or(u64::MAX)
                .saturating_add(ELEMENT_SLACK),
        }
    }
}

/// Which structural bound a line crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overrun {
    /// Longer than `max_line_bytes`.
    Length,
    /// Nested deeper than `max_depth`.
    Depth,
    /// More than `max_elements` elements and members.
    Elements,
}

/// The structural scan of one line, fed in pieces as they arrive.
#[derive(Debug, Clone)]
pub struct Scanner {
    max_depth: u32,
    max_elements: u64,
    depth: u32,
    elements: u64,
    in_string: bool,
    escaped: bool,
    overrun: Option<Overrun>,
}

impl Scanner {
    /// A scanner for one line under `bounds` (the length is the reader's business).
    pub fn new(bounds: &Bounds) -> Self {
        Self {
            max_depth: bounds.max_depth,
            max_elements: bounds.max_elements,
            depth: 0,
            elements: 0,
            in_string: false,
            escaped: false,
            overrun: None,
        }
    }

    /// The bound crossed so far, if any. Once crossed, later bytes change nothing.
    pub fn overrun(&self) -> Option<Overrun> {
        self.overrun
    }

    /// Scans the next bytes of the line.
    pub fn feed(&mut self, mut bytes: &[u8]) -> Option<Overrun> {
        while self.overrun.is_none() && !bytes.is_empty() {
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                    bytes = &bytes[1..];
                    continue;
                }
                // Strings are most of a large line (stdin, arguments): skip to the next quote
                // or backslash at memchr speed.
                match memchr::memchr2(b'"', b'\\', bytes) {
                    None => return None,
                    Some(i) => {
                        if bytes[i] == b'\\' {
                            self.escaped = true;
                        } else {
                            self.in_string = false;
                        }
                        bytes = &bytes[i + 1..];
                    }
                }
                continue;
            }
            match bytes[0] {
                b'"' => self.in_string = true,
                b'[' | b'{' => {
                    self.depth = self.depth.saturating_add(1);
                    self.count_element();
                    if self.depth > self.max_depth {
                        self.overrun = Some(Overrun::Depth);
                    }
                }
                b']' | b'}' => self.depth = self.depth.saturating_sub(1),
                b',' => self.count_element(),
                _ => {}
            }
            bytes = &bytes[1..];
        }
        self.overrun
    }

    fn count_element(&mut self) {
        self.elements = self.elements.saturating_add(1);
        if self.elements > self.max_elements && self.overrun.is_none() {
            self.overrun = Some(Overrun::Elements);
        }
    }
}

/// Judges a whole line against `bounds` the way the streaming reader does: the length bound
/// first, then the scanner's.
pub fn check_line(line: &[u8], bounds: &Bounds) -> Option<Overrun> {
    if line.len() > bounds.max_line_bytes {
        return Some(Overrun::Length);
    }
    Scanner::new(bounds).feed(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(depth: u32, elements: u64) -> Bounds {
        Bounds {
            max_line_bytes: 1 << 20,
            max_depth: depth,
            max_elements: elements,
        }
    }

    #[test]
    fn defaults_keep_the_largest_call_and_refuse_the_flat_array() {
        let b = Bounds::for_requests(8 << 20, 1 << 20, 4096, 8);
        assert_eq!(b.max_line_bytes, 33 << 20);
        assert_eq!(b.max_elements, 49_152);
        // 8 stages of 4096 arguments each fit.
        let args = vec!["\"a\""; 4096].join(",");
        let stage = format!(r#"{{"command":"x","args":[{args}]}}"#);
        let line = format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"run","arguments":{{"pipeline":[{}]}}}}}}"#,
            vec![stage; 8].join(",")
        );
        assert_eq!(check_line(line.as_bytes(), &b), None);
        let flat = format!("[{}0]", "0,".repeat(60_000));
        assert_eq!(check_line(flat.as_bytes(), &b), Some(Overrun::Elements));
    }

    #[test]
    fn structure_inside_strings_is_not_counted() {
        let b = bounds(2, 3);
        assert_eq!(
            check_line(br#"{"a":"[[[[,,,,{{{{\"]]]]\\"}"#, &b),
            None,
            "brackets, commas and escaped quotes inside a string are text"
        );
        assert_eq!(check_line(br#"[[["x"]]]"#, &b), Some(Overrun::Depth));
        // `[` and two commas: three, within the bound; a fourth element is over it.
        assert_eq!(check_line(b"[1,2,3]", &b), None);
        assert_eq!(check_line(b"[1,2,3,4]", &b), Some(Overrun::Elements));
        assert_eq!(check_line(b"[[1],2]", &b), None);
        assert_eq!(check_line(b"[[1],[2]]", &b), Some(Overrun::Elements));
    }

    #[test]
    fn pieces_give_the_same_answer_as_the_whole() {
        let b = bounds(3, 6);
        let lines: [&[u8]; 4] = [
            br#"{"s":"\\\"[[[[","t":[1,[2,[3]]]}"#,
            br#"[[[[1]]]]"#,
            br#"{"a":1,"b":2,"c":3,"d":4,"e":5,"f":6}"#,
            br#""\"#,
        ];
        for line in lines {
            let whole = check_line(line, &b);
            for cut in 0..=line.len() {
                let mut s = Scanner::new(&b);
                s.feed(&line[..cut]);
                s.feed(&line[cut..]);
                assert_eq!(s.overrun(), whole, "{line:?} cut at {cut}");
            }
            let mut s = Scanner::new(&b);
            for byte in line {
                s.feed(std::slice::from_ref(byte));
            }
            assert_eq!(s.overrun(), whole, "{line:?} byte by byte");
        }
    }

    #[test]
    fn the_length_bound_comes_first() {
        let b = Bounds {
            max_line_bytes: 4,
            max_depth: 1,
            max_elements: 1,
        };
        assert_eq!(check_line(b"[[[[[", &b), Some(Overrun::Length));
        assert_eq!(check_line(b"[[", &b), Some(Overrun::Depth));
    }
}
