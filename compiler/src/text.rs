//! Archive text in the languages aotc writes. Every string in an archive
//! (tensor, node and argument names, file names in stack traces, string
//! arguments) is hostile: it is never spliced into C, assembler or MLIR
//! source as it is. It goes through one of these functions, each of which
//! gives a form that the target language reads as data only.

/// A C identifier made from a name: `[A-Za-z0-9_]`, not starting with a
/// digit (used for symbol prefixes, which come from the output file name).
pub fn sanitize(name: &str) -> String {
    let mut s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with(|c: char| c.is_ascii_digit()) {
        s.insert(0, '_');
    }
    s
}

/// C and C++ keywords and names the generated code uses itself: a name in
/// this list is never used as a parameter name.
const RESERVED: &[&str] = &[
    "alignas", "alignof", "and", "and_eq", "asm", "auto", "bitand", "bitor", "bool", "break", "case", "catch", "char",
    "char16_t", "char32_t", "char8_t", "class", "co_await", "co_return", "co_yield", "compl", "concept", "const",
    "const_cast", "consteval", "constexpr", "constinit", "continue", "decltype", "default", "delete", "do", "double",
    "dynamic_cast", "else", "enum", "explicit", "export", "extern", "false", "float", "for", "friend", "goto", "if",
    "inline", "int", "long", "mutable", "namespace", "new", "noexcept", "not", "not_eq", "nullptr", "operator", "or",
    "or_eq", "private", "protected", "public", "register", "reinterpret_cast", "requires", "restrict", "return", "short",
    "signed", "sizeof", "static", "static_assert", "static_cast", "struct", "switch", "template", "this",
    "thread_local", "throw", "true", "try", "typedef", "typeid", "typename", "union", "unsigned", "using", "virtual",
    "void", "volatile", "wchar_t", "while", "xor", "xor_eq", "NULL", "m", "main",
];

/// `name` itself when it is a plain identifier (`[A-Za-z][A-Za-z0-9_]*`, at
/// most 64 characters, not a keyword, not reserved by C's `_X`/`__` rule);
/// otherwise None and the caller uses a generated name.
pub fn c_identifier(name: &str) -> Option<&str> {
    let valid = (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&name);
    valid.then_some(name)
}

/// A NUL-terminated C string as an array initializer of byte values:
/// `{0x78, 0x00}`. No byte of the name can end the initializer. An embedded
/// NUL would cut the string short in C: it is written as the four
/// characters `\x00` instead.
pub fn c_string_initializer(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 5 + 8);
    out.push('{');
    let escaped = s.replace('\0', "\\x00");
    for b in escaped.bytes().chain(std::iter::once(0)) {
        out.push_str(&format!("0x{b:02x},"));
    }
    out.push('}');
    out
}

/// A name as it may appear inside a C block comment (or a message): bytes
/// outside `[A-Za-z0-9_.:-]` and space become `\xNN`, so neither `*/`,
/// a line break, a trigraph nor a backslash-newline can appear; long names
/// are cut to `limit` characters with `...`.
pub fn comment_text(s: &str, limit: usize) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if out.len() >= limit {
            out.push_str("...");
            break;
        }
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-' | b' ') {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// A name for an error message: one line, at most 120 characters (control
/// characters and line separators escaped as in Rust's `{:?}`).
pub fn shown(s: &str) -> String {
    shown_max(s, 120)
}

/// [`shown`] with another length limit (for messages that quote a value).
pub fn shown_max(s: &str, limit: usize) -> String {
    let escaped: String = s
        .chars()
        .flat_map(|c| {
            let special = c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
            let mut e: Vec<char> = if special { c.escape_debug().collect() } else { vec![c] };
            if special && e.len() == 1 {
                e = c.escape_unicode().collect();
            }
            e
        })
        .collect();
    if escaped.chars().count() > limit {
        let cut: String = escaped.chars().take(limit).collect();
        format!("{cut}...")
    } else {
        escaped
    }
}

/// An MLIR string literal (with its quotes): `"`, `\` and every byte
/// outside printable ASCII are written as `\XX` hex escapes, which the MLIR
/// lexer reads back as the same bytes.
pub fn mlir_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for b in s.bytes() {
        if (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\' {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\{b:02X}"));
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_plain_names_only() {
        assert_eq!(c_identifier("x"), Some("x"));
        assert_eq!(c_identifier("input_ids"), Some("input_ids"));
        for bad in ["", "int", "m", "_x", "1x", "a b", "x\"", "a-b", &"y".repeat(65), "é"] {
            assert_eq!(c_identifier(bad), None, "{bad}");
        }
    }

    #[test]
    fn c_strings_are_byte_arrays() {
        assert_eq!(c_string_initializer("a\""), "{0x61,0x22,0x00,}");
        assert_eq!(c_string_initializer("\0"), "{0x5c,0x78,0x30,0x30,0x00,}");
    }

    #[test]
    fn comments_cannot_be_closed() {
        let text = comment_text("x */ system(\"id\"); /*\n??/", 100);
        assert!(!text.contains("*/") && !text.contains('\n') && !text.contains("??") && !text.contains('"'), "{text}");
        assert_eq!(comment_text(&"a".repeat(300), 10), "aaaaaaaaaa...");
    }

    #[test]
    fn mlir_strings_escape_quotes_backslashes_and_control_bytes() {
        assert_eq!(mlir_string("a\"b\\c\nd"), "\"a\\22b\\5Cc\\0Ad\"");
        assert_eq!(mlir_string("é"), "\"\\C3\\A9\"");
    }

    #[test]
    fn shown_names_are_one_short_line() {
        assert_eq!(shown("a\nb"), "a\\nb");
        assert_eq!(shown(&"z".repeat(1000)).len(), 123);
    }
}
