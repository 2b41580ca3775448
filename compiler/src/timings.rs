//! Per-stage compile times, for `aotc --timings` and `aotc run --timings`.
//! Recording is off unless [`enable`] was called on this thread; the stages
//! are timed where the driver calls them, so the recorder needs no plumbing
//! through every function signature.

use std::cell::RefCell;
use std::time::Instant;

thread_local! {
    static STAGES: RefCell<Option<Vec<(&'static str, f64)>>> = const { RefCell::new(None) };
}

/// Starts recording stage times on this thread (forgetting earlier ones).
pub fn enable() {
    STAGES.with(|s| *s.borrow_mut() = Some(Vec::new()));
}

/// Runs `f` as the stage `name`, recording its seconds when enabled.
pub fn stage<T>(name: &'static str, f: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let result = f();
    let seconds = start.elapsed().as_secs_f64();
    STAGES.with(|s| {
        if let Some(stages) = s.borrow_mut().as_mut() {
            stages.push((name, seconds));
        }
    });
    result
}

/// One line per stage and the total, or nothing when not enabled.
pub fn report() -> Vec<String> {
    STAGES.with(|s| {
        let stages = s.borrow();
        let Some(stages) = stages.as_ref() else { return Vec::new() };
        let width = stages.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let mut lines: Vec<String> = stages.iter().map(|(n, t)| format!("{n:<width$}  {t:8.3} s")).collect();
        let total: f64 = stages.iter().map(|(_, t)| t).sum();
        lines.push(format!("{:<width$}  {total:8.3} s", "total"));
        lines
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_only_when_enabled() {
        assert_eq!(stage("ignored", || 1), 1);
        assert!(report().is_empty());
        enable();
        stage("first", || ());
        stage("second", || ());
        let lines = report();
        assert_eq!(lines.len(), 3);
        assert!(lines[0].starts_with("first ") && lines[2].starts_with("total"));
    }
}
