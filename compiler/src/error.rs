//! Errors are one line each: what went wrong and where (file, field, node).
//! Long diagnostic text (an MLIR verifier dump, a linker's output) is kept
//! behind the line and printed only with `--verbose`.

use std::fmt;

/// An error whose message is one line, with details for `--verbose`.
#[derive(Debug)]
pub struct Detailed {
    pub summary: String,
    pub details: String,
}

impl fmt::Display for Detailed {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.summary)
    }
}

impl std::error::Error for Detailed {}

/// An error with a one-line `summary` and multi-line `details`; the first
/// line of the details is appended to the summary so that the short form
/// still says why.
pub fn detailed(summary: impl Into<String>, details: impl Into<String>) -> anyhow::Error {
    let details = details.into();
    let summary = summary.into();
    let first = details.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let summary = if first.is_empty() { summary } else { format!("{summary}: {}", crate::text::shown_max(first, 300)) };
    anyhow::Error::new(Detailed { summary, details })
}

/// The details of every `Detailed` error in an error's chain.
pub fn details_of(error: &anyhow::Error) -> Vec<&str> {
    error.chain().filter_map(|e| e.downcast_ref::<Detailed>()).map(|d| d.details.as_str()).collect()
}
