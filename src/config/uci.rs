//! A parser for OpenWrt UCI files (`/etc/config/*`), following libuci's `file.c`.
//!
//! Syntax, as libuci reads it:
//! - statements `config <type> [<name>]`, `option <name> <value>`, `list <name> <value>`
//!   and `package <name>`; libuci also accepts the one-letter keywords `c`, `o`, `l`, `p`;
//! - a statement ends at an unquoted newline or `;`;
//! - arguments are bare words, `'single-quoted'` (no escapes at all) or `"double-quoted"`;
//!   adjacent pieces concatenate (`'a'"b"c` is `abc`), as in a shell;
//! - outside single quotes a backslash takes the next character literally (libuci does not
//!   decode `\n` and friends), and a backslash at the end of a line joins the next line;
//! - quoted strings may span lines, the newline becoming part of the value;
//! - an unquoted `#` starts a comment up to the end of the line, even in the middle of a word
//!   (`foo#bar` is `foo`).
//!
//! Differences from libuci, all on inputs libuci mishandles or silently accepts:
//! - extra arguments are always an error (libuci only complains with `UCI_FLAG_STRICT`);
//! - `option <name>` without a value is an error (libuci stores nothing, which hides typos);
//!   an explicit empty value `''` is kept and, as in libuci, means "not set";
//! - a backslash-newline between two words acts like whitespace instead of producing an
//!   empty argument;
//! - the parser recovers at the next statement, so every syntax error is reported.
//!
//! Names of options and sections are `[A-Za-z0-9_]+` (libuci `uci_validate_name`); section
//! types may be any printable ASCII without spaces (`uci_validate_type`); package names also
//! allow `-`.
//!
//! The parser is a total function: any `&str` yields sections and/or errors, never a panic.

use std::fmt;

/// One parsed UCI file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// Name from a `package` statement, if any. libuci ignores it when reading a single
    /// file from `/etc/config`, and so do the users of this parser.
    pub package: Option<String>,
    /// Sections in file order.
    pub sections: Vec<Section>,
}

/// A `config <type> [<name>]` block and the options that follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub section_type: String,
    /// `None` for an anonymous section (no name, or an empty `''` name, as in libuci).
    pub name: Option<String>,
    /// Line of the `config` statement (1-based).
    pub line: usize,
    /// `option` and `list` statements in file order.
    pub options: Vec<OptionEntry>,
}

/// One `option` or `list` statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OptionEntry {
    pub name: String,
    pub value: Value,
    /// Line where the statement starts (1-based).
    pub line: usize,
}

/// The value of one statement. Each `list` statement contributes one item; callers that
/// want the whole list gather the entries with the same name, keeping each item's line
/// for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `option name value`
    Single(String),
    /// `list name item`
    List(String),
}

impl Value {
    pub fn as_str(&self) -> &str {
        match self {
            Value::Single(s) | Value::List(s) => s,
        }
    }
}

/// A syntax error, located at a line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub reason: Reason,
}

/// What kind of name failed validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameKind {
    Section,
    Option,
    Package,
}

/// Why a statement could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// A quote opened on this line is never closed; the rest of the file was swallowed.
    UnterminatedQuote {
        quote: char,
    },
    /// The first word of a statement is not a UCI keyword.
    UnknownCommand(String),
    MissingSectionType,
    MissingOptionName,
    MissingPackageName,
    MissingValue,
    /// `option`/`list` before the first `config`.
    OptionOutsideSection,
    InvalidName {
        kind: NameKind,
        name: String,
    },
    InvalidSectionType(String),
    /// The first unexpected argument.
    TooManyArguments(String),
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Section => "section name",
            NameKind::Option => "option name",
            NameKind::Package => "package name",
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::UnterminatedQuote { quote } => {
                write!(
                    f,
                    "unterminated {quote} quote (opened here, still open at end of file)"
                )
            }
            Reason::UnknownCommand(word) => write!(
                f,
                "unknown command '{}' (expected config, option, list or package)",
                word.escape_debug()
            ),
            Reason::MissingSectionType => f.write_str("'config' needs a section type"),
            Reason::MissingOptionName => f.write_str("'option'/'list' needs a name"),
            Reason::MissingPackageName => f.write_str("'package' needs a name"),
            Reason::MissingValue => {
                f.write_str("missing value (write '' for an explicitly empty value)")
            }
            Reason::OptionOutsideSection => {
                f.write_str("option/list before the first 'config' section")
            }
            Reason::InvalidName { kind, name } => {
                let allowed = match kind {
                    NameKind::Package => "[A-Za-z0-9_-]",
                    NameKind::Section | NameKind::Option => "[A-Za-z0-9_]",
                };
                write!(
                    f,
                    "invalid {kind} '{}': UCI names may only contain {allowed}",
                    name.escape_debug()
                )
            }
            Reason::InvalidSectionType(t) => write!(
                f,
                "invalid section type '{}': must be printable ASCII without spaces",
                t.escape_debug()
            ),
            Reason::TooManyArguments(extra) => {
                write!(
                    f,
                    "too many arguments, starting at '{}'",
                    extra.escape_debug()
                )
            }
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.reason)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole file; any syntax error fails the parse (all of them are returned).
pub fn parse(text: &str) -> Result<Document, Vec<ParseError>> {
    let (doc, errors) = parse_recovering(text);
    if errors.is_empty() {
        Ok(doc)
    } else {
        Err(errors)
    }
}

/// Parses a whole file, skipping statements with syntax errors so that later errors are
/// found too. Options that follow a broken `config` line are dropped without further
/// complaint, to avoid a cascade of "option outside section" errors.
pub fn parse_recovering(text: &str) -> (Document, Vec<ParseError>) {
    let mut doc = Document::default();
    let mut errors = Vec::new();
    let mut current = Current::None;
    let mut lexer = Lexer::new(text);
    while let Some(stmt) = lexer.next_statement() {
        match stmt {
            Ok(words) => {
                if let Err(e) = apply(&mut doc, &mut current, words) {
                    errors.push(e);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    (doc, errors)
}

/// Renders `s` as a single-quoted UCI value that the parser reads back as exactly `s`.
/// Embedded single quotes become `'\''`, as libuci's `uci_escape` does.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Whether `s` is a valid option or section name.
pub fn is_valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn is_valid_package(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_valid_type(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (33..=126).contains(&b))
}

enum Current {
    None,
    Section(usize),
    /// The last `config` line was broken; its options are dropped.
    Poisoned,
}

struct Word {
    text: String,
    line: usize,
}

fn apply(doc: &mut Document, current: &mut Current, words: Vec<Word>) -> Result<(), ParseError> {
    let line = words.first().map_or(1, |w| w.line);
    let err = |reason| ParseError { line, reason };
    let mut args = words.into_iter();
    let keyword = args.next().map(|w| w.text).unwrap_or_default();
    match keyword.as_str() {
        "config" | "c" => {
            // Until proven good, options that follow belong to nothing.
            *current = Current::Poisoned;
            let section_type = match args.next() {
                Some(w) if !w.text.is_empty() => w.text,
                _ => return Err(err(Reason::MissingSectionType)),
            };
            if !is_valid_type(&section_type) {
                return Err(err(Reason::InvalidSectionType(section_type)));
            }
            let name = match args.next() {
                Some(w) if !w.text.is_empty() => {
                    if !is_valid_name(&w.text) {
                        return Err(err(Reason::InvalidName {
                            kind: NameKind::Section,
                            name: w.text,
                        }));
                    }
                    Some(w.text)
                }
                _ => None,
            };
            if let Some(extra) = args.next() {
                return Err(err(Reason::TooManyArguments(extra.text)));
            }
            doc.sections.push(Section {
                section_type,
                name,
                line,
                options: Vec::new(),
            });
            *current = Current::Section(doc.sections.len() - 1);
            Ok(())
        }
        "option" | "o" | "list" | "l" => {
            let index = match current {
                Current::Section(i) => *i,
                Current::Poisoned => return Ok(()),
                Current::None => return Err(err(Reason::OptionOutsideSection)),
            };
            let name = match args.next() {
                Some(w) if !w.text.is_empty() => w.text,
                _ => return Err(err(Reason::MissingOptionName)),
            };
            if !is_valid_name(&name) {
                return Err(err(Reason::InvalidName {
                    kind: NameKind::Option,
                    name,
                }));
            }
            let text = match args.next() {
                Some(w) => w.text,
                None => return Err(err(Reason::MissingValue)),
            };
            if let Some(extra) = args.next() {
                return Err(err(Reason::TooManyArguments(extra.text)));
            }
            let value = if keyword.starts_with('o') {
                Value::Single(text)
            } else {
                Value::List(text)
            };
            if let Some(section) = doc.sections.get_mut(index) {
                section.options.push(OptionEntry { name, value, line });
            }
            Ok(())
        }
        "package" | "p" => {
            let name = match args.next() {
                Some(w) if !w.text.is_empty() => w.text,
                _ => return Err(err(Reason::MissingPackageName)),
            };
            if !is_valid_package(&name) {
                return Err(err(Reason::InvalidName {
                    kind: NameKind::Package,
                    name,
                }));
            }
            if let Some(extra) = args.next() {
                return Err(err(Reason::TooManyArguments(extra.text)));
            }
            doc.package = Some(name);
            Ok(())
        }
        _ => Err(err(Reason::UnknownCommand(keyword))),
    }
}

/// C `isspace` minus the newline, which ends a statement.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\x0b' | '\x0c')
}

/// Splits the text into statements (lists of words). Works on a `Vec<char>` so that
/// look-ahead for `\` + CR LF is plain indexing.
struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Lexer {
    fn new(text: &str) -> Self {
        Lexer {
            chars: text.chars().collect(),
            pos: 0,
            line: 1,
        }
    }

    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    /// Length of a line break starting `ahead` characters from here (`\n` or `\r\n`).
    fn newline_len(&self, ahead: usize) -> usize {
        match (self.peek(ahead), self.peek(ahead + 1)) {
            (Some('\n'), _) => 1,
            (Some('\r'), Some('\n')) => 2,
            _ => 0,
        }
    }

    /// If a backslash-newline starts here, consumes it and returns true.
    fn skip_continuation(&mut self) -> bool {
        if self.peek(0) != Some('\\') {
            return false;
        }
        let n = self.newline_len(1);
        if n == 0 {
            return false;
        }
        self.pos += 1 + n;
        self.line += 1;
        true
    }

    /// Returns the next non-empty statement, or a syntax error found while lexing it,
    /// or `None` at end of input.
    fn next_statement(&mut self) -> Option<Result<Vec<Word>, ParseError>> {
        let mut words = Vec::new();
        loop {
            loop {
                if self.peek(0).is_some_and(is_blank) {
                    self.pos += 1;
                } else if !self.skip_continuation() {
                    break;
                }
            }
            match self.peek(0) {
                None => break,
                Some('\n') => {
                    self.pos += 1;
                    self.line += 1;
                    if words.is_empty() {
                        continue;
                    }
                    break;
                }
                Some(';') => {
                    self.pos += 1;
                    if words.is_empty() {
                        continue;
                    }
                    break;
                }
                Some('#') => {
                    // Comment: skip to (not past) the newline, which then ends the statement.
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.pos += 1;
                    }
                }
                Some(_) => match self.word() {
                    Ok(w) => words.push(w),
                    Err(e) => return Some(Err(e)),
                },
            }
        }
        if words.is_empty() {
            None
        } else {
            Some(Ok(words))
        }
    }

    /// Reads one argument, concatenating bare, single- and double-quoted pieces.
    fn word(&mut self) -> Result<Word, ParseError> {
        let line = self.line;
        let mut text = String::new();
        while let Some(c) = self.peek(0) {
            match c {
                c if is_blank(c) || c == '\n' || c == ';' || c == '#' => break,
                '\'' => self.single_quoted(&mut text)?,
                '"' => self.double_quoted(&mut text)?,
                '\\' => self.backslash(&mut text),
                c => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        Ok(Word { text, line })
    }

    /// At a backslash outside single quotes: line continuation, or the next character
    /// taken literally. A backslash at end of input vanishes, as in libuci.
    fn backslash(&mut self, text: &mut String) {
        if self.skip_continuation() {
            return;
        }
        self.pos += 1;
        if let Some(c) = self.peek(0) {
            text.push(c);
            self.pos += 1;
        }
    }

    /// The quote swallowed the rest of the input, so lexing ends here.
    fn unterminated(&mut self, line: usize, quote: char) -> ParseError {
        self.pos = self.chars.len();
        ParseError {
            line,
            reason: Reason::UnterminatedQuote { quote },
        }
    }

    fn single_quoted(&mut self, text: &mut String) -> Result<(), ParseError> {
        let open_line = self.line;
        self.pos += 1;
        loop {
            match self.peek(0) {
                None => return Err(self.unterminated(open_line, '\'')),
                Some('\'') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(c) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn double_quoted(&mut self, text: &mut String) -> Result<(), ParseError> {
        let open_line = self.line;
        self.pos += 1;
        loop {
            match self.peek(0) {
                None => return Err(self.unterminated(open_line, '"')),
                Some('"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some('\\') => {
                    if self.peek(1).is_none() {
                        return Err(self.unterminated(open_line, '"'));
                    }
                    self.backslash(text);
                }
                Some(c) => {
                    if c == '\n' {
                        self.line += 1;
                    }
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(text: &str) -> Document {
        match parse(text) {
            Ok(d) => d,
            Err(e) => panic!("unexpected errors {e:?} for {text:?}"),
        }
    }

    /// Value of the only option of the only section.
    fn value(text: &str) -> String {
        let doc = ok(&format!("config t\n\toption o {text}\n"));
        doc.sections[0].options[0].value.as_str().to_string()
    }

    fn errors(text: &str) -> Vec<(usize, Reason)> {
        parse(text)
            .expect_err("expected a syntax error")
            .into_iter()
            .map(|e| (e.line, e.reason))
            .collect()
    }

    #[test]
    fn typical_openwrt_file() {
        let doc = ok("# comment\n\nconfig wan 'wan'\n\toption device 'eth1'\n\tlist request_option '24'\n\tlist request_option 25\n\nconfig host\n\toption mac \"00:11:22:33:44:55\"  # trailing\n");
        assert_eq!(doc.sections.len(), 2);
        let wan = &doc.sections[0];
        assert_eq!(wan.section_type, "wan");
        assert_eq!(wan.name.as_deref(), Some("wan"));
        assert_eq!(wan.line, 3);
        assert_eq!(
            wan.options,
            vec![
                OptionEntry {
                    name: "device".into(),
                    value: Value::Single("eth1".into()),
                    line: 4
                },
                OptionEntry {
                    name: "request_option".into(),
                    value: Value::List("24".into()),
                    line: 5
                },
                OptionEntry {
                    name: "request_option".into(),
                    value: Value::List("25".into()),
                    line: 6
                },
            ]
        );
        let host = &doc.sections[1];
        assert_eq!(host.name, None);
        assert_eq!(host.line, 8);
        assert_eq!(
            host.options[0].value,
            Value::Single("00:11:22:33:44:55".into())
        );
    }

    #[test]
    fn quoting_styles() {
        assert_eq!(value("bare"), "bare");
        assert_eq!(value("'with space'"), "with space");
        assert_eq!(value("\"with space\""), "with space");
        assert_eq!(value("''"), "");
        assert_eq!(value("'a # b'"), "a # b");
        assert_eq!(value("\"a ; b\""), "a ; b");
        assert_eq!(value("'it'\\''s'"), "it's");
    }

    #[test]
    fn adjacent_pieces_concatenate() {
        assert_eq!(value("'a'\"b\""), "ab");
        assert_eq!(value("x'y z'w"), "xy zw");
        assert_eq!(value("\"a\"b'c'"), "abc");
    }

    #[test]
    fn backslash_escapes() {
        // libuci takes the next character literally, it does not decode \n.
        assert_eq!(value("\"a\\\"b\""), "a\"b");
        assert_eq!(value("\"a\\\\b\""), "a\\b");
        assert_eq!(value("\"a\\nb\""), "anb");
        assert_eq!(value("a\\ b"), "a b");
        assert_eq!(value("a\\'b"), "a'b");
        // No escapes at all in single quotes.
        assert_eq!(value("'a\\b'"), "a\\b");
    }

    #[test]
    fn line_continuation() {
        let doc = ok("config t\n\toption o foo\\\nbar\n\toption p x\n");
        let opts = &doc.sections[0].options;
        assert_eq!(opts[0].value.as_str(), "foobar");
        assert_eq!(opts[1].line, 4);
        let doc = ok("config t\n\toption o \\\n   value\n");
        assert_eq!(doc.sections[0].options[0].value.as_str(), "value");
        let doc = ok("config t\r\n\toption o \"a\\\r\nb\"\r\n");
        assert_eq!(doc.sections[0].options[0].value.as_str(), "ab");
    }

    #[test]
    fn multi_line_quotes_keep_newline_and_count_lines() {
        let doc = ok("config t\n\toption o 'one\ntwo'\n\toption p x\n");
        let opts = &doc.sections[0].options;
        assert_eq!(opts[0].value.as_str(), "one\ntwo");
        assert_eq!(opts[0].line, 2);
        assert_eq!(opts[1].line, 4);
    }

    #[test]
    fn comments_everywhere() {
        let doc = ok("#x\n  # indented\nconfig t # after header\n\toption o v#no space needed\n\t#option p q\n");
        assert_eq!(doc.sections[0].options.len(), 1);
        assert_eq!(doc.sections[0].options[0].value.as_str(), "v");
    }

    #[test]
    fn whitespace_tabs_and_crlf() {
        let doc = ok("config\tt\t'n'\r\n  \t option   o\t\t'v'  \r\n\r\n");
        assert_eq!(doc.sections[0].name.as_deref(), Some("n"));
        assert_eq!(doc.sections[0].options[0].value.as_str(), "v");
    }

    #[test]
    fn short_keywords_semicolons_and_package() {
        let doc = ok("package b4d\nc t; o a 1; l b 2\n");
        assert_eq!(doc.package.as_deref(), Some("b4d"));
        let opts = &doc.sections[0].options;
        assert_eq!(opts[0].value, Value::Single("1".into()));
        assert_eq!(opts[1].value, Value::List("2".into()));
        assert_eq!(opts[1].line, 2);
    }

    #[test]
    fn empty_section_name_is_anonymous() {
        assert_eq!(ok("config t ''\n").sections[0].name, None);
    }

    #[test]
    fn unterminated_quotes_report_opening_line() {
        assert_eq!(
            errors("config t\n\toption a 'x\n\n"),
            vec![(2, Reason::UnterminatedQuote { quote: '\'' })]
        );
        assert_eq!(
            errors("config t\n\n\toption a \"x\\\"\n"),
            vec![(3, Reason::UnterminatedQuote { quote: '"' })]
        );
        assert_eq!(
            errors("config t\n\toption a \"x\\"),
            vec![(2, Reason::UnterminatedQuote { quote: '"' })]
        );
    }

    #[test]
    fn statement_errors_with_lines() {
        assert_eq!(
            errors("option a b\n"),
            vec![(1, Reason::OptionOutsideSection)]
        );
        assert_eq!(
            errors("config t\n\toption a\n"),
            vec![(2, Reason::MissingValue)]
        );
        assert_eq!(
            errors("config t\n\toption 'a-b' c\n"),
            vec![(
                2,
                Reason::InvalidName {
                    kind: NameKind::Option,
                    name: "a-b".into()
                }
            )]
        );
        assert_eq!(
            errors("config t 'my-name'\n"),
            vec![(
                1,
                Reason::InvalidName {
                    kind: NameKind::Section,
                    name: "my-name".into()
                }
            )]
        );
        assert_eq!(errors("config\n"), vec![(1, Reason::MissingSectionType)]);
        assert_eq!(
            errors("config 'a b'\n"),
            vec![(1, Reason::InvalidSectionType("a b".into()))]
        );
        assert_eq!(
            errors("config t\n\toption\n"),
            vec![(2, Reason::MissingOptionName)]
        );
        assert_eq!(
            errors("config t\n\toption a b c\n"),
            vec![(2, Reason::TooManyArguments("c".into()))]
        );
        assert_eq!(
            errors("config t n x\n"),
            vec![(1, Reason::TooManyArguments("x".into()))]
        );
        assert_eq!(
            errors("\n\nsection t\n"),
            vec![(3, Reason::UnknownCommand("section".into()))]
        );
        assert_eq!(errors("package\n"), vec![(1, Reason::MissingPackageName)]);
    }

    #[test]
    fn all_errors_reported_and_good_statements_kept() {
        let (doc, errs) = parse_recovering(
            "option early 1\nconfig t\n\toption ok 1\n\toption bad\n\toption 'x y' 2\n\toption ok2 2\nconfig 'bad type'\n\toption dropped 1\nconfig u\n\toption fine 1\n",
        );
        let lines: Vec<usize> = errs.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![1, 4, 5, 7]);
        assert_eq!(doc.sections.len(), 2);
        let names: Vec<&str> = doc.sections[0]
            .options
            .iter()
            .map(|o| o.name.as_str())
            .collect();
        assert_eq!(names, vec!["ok", "ok2"]);
        assert_eq!(doc.sections[1].options[0].name, "fine");
    }

    #[test]
    fn error_display_names_the_problem() {
        let e = errors("config t\n\toption 'a.b' c\n");
        assert_eq!(
            e[0].1.to_string(),
            "invalid option name 'a.b': UCI names may only contain [A-Za-z0-9_]"
        );
    }

    #[test]
    fn quote_round_trips() {
        for s in ["", "plain", "it's", "''", "a\\b", "a\"b", "x\ny", "# ; \t"] {
            assert_eq!(value(&quote(s)), s, "quoting {s:?}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_arbitrary_text(s in any::<String>()) {
            let _ = parse_recovering(&s);
        }

        #[test]
        fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_recovering(&String::from_utf8_lossy(&bytes));
        }

        /// Text built from UCI's special characters reaches the quote/escape corners that
        /// random Unicode rarely does.
        #[test]
        fn never_panics_on_uci_like_text(
            s in proptest::collection::vec(
                prop::sample::select(vec![
                    "config", "option", "list", "package", "c", "o", "l", " ", "\t", "\n",
                    "\r\n", "'", "\"", "\\", "#", ";", "a", "_", "-", "0", "wan", "''",
                ]),
                0..80,
            )
        ) {
            let text: String = s.concat();
            let (doc, errors) = parse_recovering(&text);
            for e in &errors {
                prop_assert!(e.line >= 1 && e.line <= text.matches('\n').count() + 1);
            }
            for section in &doc.sections {
                prop_assert!(is_valid_type(&section.section_type));
                for o in &section.options {
                    prop_assert!(is_valid_name(&o.name));
                }
            }
        }

        #[test]
        fn quoted_values_round_trip(v in any::<String>()) {
            let text = format!("config t\n\toption o {}\n", quote(&v));
            let doc = parse(&text).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
            prop_assert_eq!(doc.sections[0].options[0].value.as_str(), v.as_str());
        }
    }
}
