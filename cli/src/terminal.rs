//! The terminal's size, and prose wrapped to its width. Tables, codes and QR drawings are
//! never wrapped.

use textwrap::{Options, WordSplitter};

/// What is assumed when the output is not a terminal or its size is unknown.
pub const FALLBACK: Size = Size {
    columns: 80,
    rows: 24,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub columns: usize,
    pub rows: usize,
}

/// The size of the terminal on standard output, else on standard error, else [`FALLBACK`].
pub fn size() -> Size {
    terminal_size::terminal_size()
        .or_else(|| terminal_size::terminal_size_of(std::io::stderr()))
        .map(|(width, height)| Size {
            columns: usize::from(width.0),
            rows: usize::from(height.0),
        })
        .filter(|size| size.columns > 0 && size.rows > 0)
        .unwrap_or(FALLBACK)
}

/// `text` wrapped to `columns`, each line keeping its indentation for the lines it becomes.
/// Words (commands, flags, paths) are never broken, even where longer than a line.
pub fn wrap(text: &str, columns: usize) -> String {
    let mut wrapped = String::with_capacity(text.len() + 16);
    for (index, line) in text.split('\n').enumerate() {
        if index > 0 {
            wrapped.push('\n');
        }
        let body = line.trim_start_matches(' ');
        let indent = &line[..line.len() - body.len()];
        let options = Options::new(columns.max(indent.len() + 20))
            .initial_indent(indent)
            .subsequent_indent(indent)
            .break_words(false)
            .word_splitter(WordSplitter::NoHyphenation);
        wrapped.push_str(&textwrap::fill(body, options));
    }
    wrapped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prose_wraps_at_words_and_keeps_indentation_and_flags_whole() {
        let text = "Replacing the enrollment of alice: run `twofactor enroll --qr-invert` \
                    on a light background, or read /usr/share/doc/twofactor/README.md.";
        let wrapped = wrap(text, 40);
        assert!(
            wrapped.lines().all(|line| line.chars().count() <= 40),
            "{wrapped}"
        );
        assert!(wrapped.contains("--qr-invert"), "{wrapped}");
        assert!(
            wrapped.contains("/usr/share/doc/twofactor/README.md."),
            "{wrapped}"
        );
        assert_eq!(
            wrapped.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
        let indented = wrap(
            "    Account: a b c d e f g h i j k l m n o p q r s t u v",
            30,
        );
        assert!(
            indented.lines().all(|line| line.starts_with("    ")),
            "{indented}"
        );
        assert_eq!(wrap("short\n\nlines", 80), "short\n\nlines");
    }
}
