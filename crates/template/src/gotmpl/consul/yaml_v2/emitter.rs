//! libyaml's `emitterc.go` as yaml.v2 carries it: styles, escapes,
//! indentation and folding.

use super::*;

// ---------------------------------------------------------------------
// emitterc.go: the emitter.

/// What `yaml_emitter_analyze_scalar` finds out about a scalar.
pub(super) struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// The byte at `i`, or 0 past the end (Go never reads past it here).
pub(super) fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

/// The length of the UTF-8 sequence starting with `c`.
pub(super) fn width(c: u8) -> usize {
    match c {
        _ if c & 0x80 == 0 => 1,
        _ if c & 0xE0 == 0xC0 => 2,
        _ if c & 0xF0 == 0xE0 => 3,
        _ if c & 0xF8 == 0xF0 => 4,
        _ => 1,
    }
}

pub(super) fn is_space(b: &[u8], i: usize) -> bool {
    at(b, i) == b' '
}

pub(super) fn is_blank(b: &[u8], i: usize) -> bool {
    matches!(at(b, i), b' ' | b'\t')
}

/// CR, LF, NEL, LS, PS.
pub(super) fn is_break(b: &[u8], i: usize) -> bool {
    let (c0, c1, c2) = (at(b, i), at(b, i + 1), at(b, i + 2));
    c0 == b'\r' || c0 == b'\n' || (c0 == 0xC2 && c1 == 0x85) || (c0 == 0xE2 && c1 == 0x80 && (c2 == 0xA8 || c2 == 0xA9))
}

pub(super) fn is_blankz(b: &[u8], i: usize) -> bool {
    is_blank(b, i) || is_break(b, i) || at(b, i) == 0
}

/// Characters YAML may show as they are: LF, printable ASCII, and the
/// Basic Multilingual Plane from U+00A0 but for surrogates, BOM, U+FFFE
/// and U+FFFF. Tabs, controls and characters beyond U+FFFF are escaped.
pub(super) fn is_printable(b: &[u8], i: usize) -> bool {
    let (c0, c1, c2) = (at(b, i), at(b, i + 1), at(b, i + 2));
    c0 == 0x0A
        || (0x20..=0x7E).contains(&c0)
        || (c0 == 0xC2 && c1 >= 0xA0)
        || (c0 > 0xC2 && c0 < 0xED)
        || (c0 == 0xED && c1 < 0xA0)
        || c0 == 0xEE
        || (c0 == 0xEF && !(c1 == 0xBB && c2 == 0xBF) && !(c1 == 0xBF && (c2 == 0xBE || c2 == 0xBF)))
}

pub(super) fn analyze(value: &[u8]) -> Analysis {
    if value.is_empty() {
        return Analysis {
            multiline: false,
            block_plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let (mut block_indicators, mut line_breaks, mut special_characters) = (false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) = (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    if value.starts_with(b"---") || value.starts_with(b"...") {
        block_indicators = true;
    }
    let mut preceded_by_whitespace = true;
    let mut i = 0;
    while i < value.len() {
        let w = width(value[i]);
        let followed_by_whitespace = i + w >= value.len() || is_blank(value, i + w);
        if i == 0 {
            match value[i] {
                b'#' | b',' | b'[' | b']' | b'{' | b'}' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\'' | b'"' | b'%'
                | b'@' | b'`' => block_indicators = true,
                b'?' | b':' | b'-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else {
            match value[i] {
                b':' if followed_by_whitespace => block_indicators = true,
                b'#' if preceded_by_whitespace => block_indicators = true,
                _ => {}
            }
        }
        if !is_printable(value, i) {
            special_characters = true;
        }
        if is_space(value, i) {
            leading_space |= i == 0;
            trailing_space |= i + w == value.len();
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(value, i) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= i + w == value.len();
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blankz(value, i);
        i += w;
    }
    let mut a = Analysis {
        multiline: line_breaks,
        block_plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.block_plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special_characters {
        a.block_plain_allowed = false;
        a.single_quoted_allowed = false;
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.block_plain_allowed = false;
    }
    a
}

/// libyaml's emitter state for block styles (the only flow collections
/// written are empty ones).
pub(super) struct Emitter {
    pub(super) out: String,
    column: usize,
    indent: i64,
    indents: Vec<i64>,
    whitespace: bool,
    indention: bool,
    mapping_context: bool,
    simple_key_context: bool,
}

type Step = Result<(), String>;

impl Emitter {
    pub(super) fn new() -> Emitter {
        Emitter {
            out: String::new(),
            column: 0,
            indent: -1,
            indents: Vec::new(),
            whitespace: true,
            indention: true,
            mapping_context: false,
            simple_key_context: false,
        }
    }

    fn push(&mut self, s: &str) -> Step {
        if self.out.len().saturating_add(s.len()) > MAX_OUTPUT {
            return Err(TOO_LARGE.into());
        }
        self.out.push_str(s);
        Ok(())
    }

    /// `put`: one ASCII character.
    fn put(&mut self, c: u8) -> Step {
        self.push(std::str::from_utf8(&[c]).expect("ASCII"))?;
        self.column += 1;
        Ok(())
    }

    fn put_break(&mut self) -> Step {
        self.push("\n")?;
        self.column = 0;
        Ok(())
    }

    /// `write`: the character of `value` at `*i`, which moves on.
    fn write(&mut self, value: &str, i: &mut usize) -> Step {
        let w = width(value.as_bytes()[*i]);
        self.push(&value[*i..*i + w])?;
        self.column += 1;
        *i += w;
        Ok(())
    }

    fn write_all(&mut self, s: &str) -> Step {
        let mut i = 0;
        while i < s.len() {
            self.write(s, &mut i)?;
        }
        Ok(())
    }

    fn write_break(&mut self, value: &str, i: &mut usize) -> Step {
        if value.as_bytes()[*i] == b'\n' {
            self.put_break()?;
            *i += 1;
        } else {
            self.write(value, i)?;
            self.column = 0;
        }
        Ok(())
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { INDENT } else { 0 };
        } else if !indentless {
            self.indent += INDENT;
        }
    }

    fn decrease_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn write_indent(&mut self) -> Step {
        let indent = usize::try_from(self.indent.max(0)).unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break()?;
        }
        while self.column < indent {
            self.put(b' ')?;
        }
        self.whitespace = true;
        self.indention = true;
        Ok(())
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) -> Step {
        if need_whitespace && !self.whitespace {
            self.put(b' ')?;
        }
        self.write_all(indicator)?;
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
        Ok(())
    }

    /// `yaml_emitter_emit_node` and what follows for this value.
    pub(super) fn node(&mut self, value: &Value, mapping: bool, simple_key: bool) -> Step {
        self.mapping_context = mapping;
        self.simple_key_context = simple_key;
        match value {
            Value::List(items) if items.is_empty() => self.empty_flow("[", "]"),
            Value::Map(map) if map.is_empty() => self.empty_flow("{", "}"),
            Value::List(items) => {
                self.increase_indent(false, self.mapping_context && !self.indention);
                for item in items {
                    self.write_indent()?;
                    self.write_indicator("-", true, false, true)?;
                    self.node(item, false, false)?;
                }
                self.decrease_indent();
                Ok(())
            }
            Value::Map(map) => {
                self.increase_indent(false, false);
                for key in sorted_keys(map) {
                    self.write_indent()?;
                    let scalar = Scalar::string(key);
                    let analysis = analyze(key.as_bytes());
                    if !analysis.multiline && key.len() <= SIMPLE_KEY_MAX {
                        self.mapping_context = true;
                        self.simple_key_context = true;
                        self.scalar(&scalar, &analysis)?;
                        self.write_indicator(":", false, false, false)?;
                    } else {
                        self.write_indicator("?", true, false, true)?;
                        self.mapping_context = true;
                        self.simple_key_context = false;
                        self.scalar(&scalar, &analysis)?;
                        self.write_indent()?;
                        self.write_indicator(":", true, false, true)?;
                    }
                    self.node(&map[key], true, false)?;
                }
                self.decrease_indent();
                Ok(())
            }
            scalar => {
                let scalar = Scalar::of(scalar)?;
                let analysis = analyze(scalar.text.as_bytes());
                self.scalar(&scalar, &analysis)
            }
        }
    }

    /// An empty sequence or mapping, which libyaml writes in flow style.
    fn empty_flow(&mut self, open: &str, close: &str) -> Step {
        self.write_indicator(open, true, true, false)?;
        self.increase_indent(true, false);
        self.decrease_indent();
        self.write_indicator(close, false, false, false)
    }

    /// `yaml_emitter_emit_scalar`: the style, the tag, the text.
    fn scalar(&mut self, scalar: &Scalar<'_>, analysis: &Analysis) -> Step {
        let value: &str = &scalar.text;
        let mut style = scalar.style;
        if self.simple_key_context && analysis.multiline {
            style = Style::DoubleQuoted;
        }
        if style == Style::Plain && (!analysis.block_plain_allowed || (value.is_empty() && self.simple_key_context)) {
            style = Style::SingleQuoted;
        }
        if style == Style::SingleQuoted && !analysis.single_quoted_allowed {
            style = Style::DoubleQuoted;
        }
        if style == Style::Literal && (!analysis.block_allowed || self.simple_key_context) {
            style = Style::DoubleQuoted;
        }
        if scalar.binary {
            // `yaml_emitter_write_tag_handle` and `_tag_content`.
            if !self.whitespace {
                self.put(b' ')?;
            }
            self.write_all("!!binary")?;
            self.whitespace = false;
            self.indention = false;
        }
        self.increase_indent(true, false);
        let allow_breaks = !self.simple_key_context;
        match style {
            Style::Plain => self.plain(value, allow_breaks)?,
            Style::SingleQuoted => self.single_quoted(value, allow_breaks)?,
            Style::DoubleQuoted => self.double_quoted(value, allow_breaks)?,
            Style::Literal => self.literal(value)?,
        }
        self.decrease_indent();
        Ok(())
    }

    fn plain(&mut self, value: &str, allow_breaks: bool) -> Step {
        let b = value.as_bytes();
        if !self.whitespace {
            self.put(b' ')?;
        }
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < b.len() {
            if is_space(b, i) {
                if allow_breaks && !spaces && self.column > WIDTH && !is_space(b, i + 1) {
                    self.write_indent()?;
                    i += 1;
                } else {
                    self.write(value, &mut i)?;
                }
                spaces = true;
            } else if is_break(b, i) {
                if !breaks && b[i] == b'\n' {
                    self.put_break()?;
                }
                self.write_break(value, &mut i)?;
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent()?;
                }
                self.write(value, &mut i)?;
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.whitespace = false;
        self.indention = false;
        Ok(())
    }

    fn single_quoted(&mut self, value: &str, allow_breaks: bool) -> Step {
        let b = value.as_bytes();
        self.write_indicator("'", true, false, false)?;
        let (mut spaces, mut breaks) = (false, false);
        let mut i = 0;
        while i < b.len() {
            if is_space(b, i) {
                if allow_breaks && !spaces && self.column > WIDTH && i > 0 && i < b.len() - 1 && !is_space(b, i + 1) {
                    self.write_indent()?;
                    i += 1;
                } else {
                    self.write(value, &mut i)?;
                }
                spaces = true;
            } else if is_break(b, i) {
                if !breaks && b[i] == b'\n' {
                    self.put_break()?;
                }
                self.write_break(value, &mut i)?;
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent()?;
                }
                if b[i] == b'\'' {
                    self.put(b'\'')?;
                }
                self.write(value, &mut i)?;
                self.indention = false;
                spaces = false;
                breaks = false;
            }
        }
        self.write_indicator("'", false, false, false)?;
        self.whitespace = false;
        self.indention = false;
        Ok(())
    }

    fn double_quoted(&mut self, value: &str, allow_breaks: bool) -> Step {
        let b = value.as_bytes();
        // libyaml's `is_bom` looks at the start of the value, not at `i`:
        // a value that starts with a BOM has every character escaped.
        let bom = b.starts_with(&[0xEF, 0xBB, 0xBF]);
        self.write_indicator("\"", true, false, false)?;
        let mut spaces = false;
        let mut i = 0;
        while i < b.len() {
            if !is_printable(b, i) || bom || is_break(b, i) || b[i] == b'"' || b[i] == b'\\' {
                let c = value[i..].chars().next().expect("a character at a boundary");
                i += c.len_utf8();
                self.put(b'\\')?;
                match u32::from(c) {
                    0x00 => self.put(b'0')?,
                    0x07 => self.put(b'a')?,
                    0x08 => self.put(b'b')?,
                    0x09 => self.put(b't')?,
                    0x0A => self.put(b'n')?,
                    0x0B => self.put(b'v')?,
                    0x0C => self.put(b'f')?,
                    0x0D => self.put(b'r')?,
                    0x1B => self.put(b'e')?,
                    0x22 => self.put(b'"')?,
                    0x5C => self.put(b'\\')?,
                    0x85 => self.put(b'N')?,
                    0xA0 => self.put(b'_')?,
                    0x2028 => self.put(b'L')?,
                    0x2029 => self.put(b'P')?,
                    v => {
                        let (letter, digits) = match v {
                            0..=0xFF => (b'x', 2),
                            0x100..=0xFFFF => (b'u', 4),
                            _ => (b'U', 8),
                        };
                        self.put(letter)?;
                        for k in (0..digits).rev() {
                            let digit = ((v >> (4 * k)) & 0xF) as u8;
                            self.put(if digit < 10 { b'0' + digit } else { b'A' + digit - 10 })?;
                        }
                    }
                }
                spaces = false;
            } else if is_space(b, i) {
                if allow_breaks && !spaces && self.column > WIDTH && i > 0 && i < b.len() - 1 {
                    self.write_indent()?;
                    if is_space(b, i + 1) {
                        self.put(b'\\')?;
                    }
                    i += 1;
                } else {
                    self.write(value, &mut i)?;
                }
                spaces = true;
            } else {
                self.write(value, &mut i)?;
                spaces = false;
            }
        }
        self.write_indicator("\"", false, false, false)?;
        self.whitespace = false;
        self.indention = false;
        Ok(())
    }

    fn literal(&mut self, value: &str) -> Step {
        let b = value.as_bytes();
        self.write_indicator("|", true, false, false)?;
        // `yaml_emitter_write_block_scalar_hints`.
        if is_space(b, 0) || is_break(b, 0) {
            self.write_indicator("2", false, false, false)?;
        }
        let chomp = match value.char_indices().next_back() {
            None => Some("-"),
            Some((last, _)) if !is_break(b, last) => Some("-"),
            Some((0, _)) => Some("+"),
            Some((last, _)) => match value[..last].char_indices().next_back() {
                Some((before, _)) if is_break(b, before) => Some("+"),
                _ => None,
            },
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false)?;
        }
        self.put_break()?;
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        let mut i = 0;
        while i < b.len() {
            if is_break(b, i) {
                self.write_break(value, &mut i)?;
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent()?;
                }
                self.write(value, &mut i)?;
                self.indention = false;
                breaks = false;
            }
        }
        Ok(())
    }
}
