//! One user's windows, from the spec and their signup time: the events
//! features may read (`start <= at < cutoff`) and the label window
//! (`[cutoff + gap, cutoff + horizon)`). Point-in-time correctness rests on
//! this one definition: training builds its table with it, and a server
//! computing features online uses the same bounds.

use super::spec::{FeatureSpec, SpecError};
use crate::time::days_to_us;

/// A user's observation and label windows, in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserWindow {
    /// When the user signed up.
    pub signup_us: i64,
    /// The first instant features observe.
    pub start_us: i64,
    /// The cutoff: features read only events before it.
    pub cutoff_us: i64,
    /// The label window opens here (the cutoff plus the churn gap).
    pub label_start_us: i64,
    /// The label window closes here (the cutoff without a label).
    pub label_end_us: i64,
}

impl UserWindow {
    /// The windows of a user who signed up at `signup_us`. The spec must
    /// have passed [`FeatureSpec::check`]; an unparsable cutoff is an error.
    pub fn new(spec: &FeatureSpec, signup_us: i64) -> Result<Self, SpecError> {
        Ok(Self::with_cutoff(spec, spec.window.cutoff_us()?, signup_us))
    }

    /// As [`UserWindow::new`] with the absolute cutoff already parsed (once
    /// for many users).
    pub fn with_cutoff(spec: &FeatureSpec, absolute_cutoff: Option<i64>, signup_us: i64) -> Self {
        let window = &spec.window;
        let cutoff_us = match (absolute_cutoff, window.days_after_signup) {
            (Some(c), _) => c,
            (None, Some(days)) => signup_us + days_to_us(days),
            (None, None) => signup_us,
        };
        let start_us = match (absolute_cutoff, window.lookback_days) {
            (Some(c), Some(days)) => signup_us.max(c - days_to_us(days)),
            _ => signup_us,
        };
        let (label_start_us, label_end_us) = match &spec.label {
            Some(label) => (
                cutoff_us + days_to_us(label.gap_days()),
                cutoff_us + days_to_us(label.horizon_days()),
            ),
            None => (cutoff_us, cutoff_us),
        };
        UserWindow {
            signup_us,
            start_us,
            cutoff_us,
            label_start_us,
            label_end_us,
        }
    }

    /// Whether features observe an event at `at_us`.
    pub fn observes(&self, at_us: i64) -> bool {
        self.start_us <= at_us && at_us < self.cutoff_us
    }

    /// Whether an observed event at `at_us` falls in the second half of the
    /// observation window (for `activity_trend`).
    pub fn in_second_half(&self, at_us: i64) -> bool {
        at_us >= self.start_us + (self.cutoff_us - self.start_us).div_euclid(2)
    }

    /// Whether an event at `at_us` falls in the label window.
    pub fn in_label(&self, at_us: i64) -> bool {
        self.label_start_us <= at_us && at_us < self.label_end_us
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::DAY_US;

    fn spec(text: &str) -> FeatureSpec {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn relative_window_starts_at_signup() {
        let s = spec("[window]\ndays_after_signup = 7\n[label]\nkind = \"churn\"\ngap_days = 1\nhorizon_days = 14\n");
        let w = UserWindow::new(&s, 10 * DAY_US).unwrap();
        assert_eq!((w.start_us, w.cutoff_us), (10 * DAY_US, 17 * DAY_US));
        assert_eq!(
            (w.label_start_us, w.label_end_us),
            (18 * DAY_US, 31 * DAY_US)
        );
        assert!(
            w.observes(10 * DAY_US) && !w.observes(17 * DAY_US) && !w.observes(10 * DAY_US - 1)
        );
        assert!(w.in_second_half(10 * DAY_US + 7 * DAY_US / 2) && !w.in_second_half(13 * DAY_US));
    }

    #[test]
    fn absolute_window_with_lookback_never_starts_before_signup() {
        let s = spec("[window]\ncutoff = \"1970-01-31\"\nlookback_days = 10\n");
        assert_eq!(UserWindow::new(&s, 0).unwrap().start_us, 20 * DAY_US);
        assert_eq!(
            UserWindow::new(&s, 25 * DAY_US).unwrap().start_us,
            25 * DAY_US
        );
        assert_eq!(UserWindow::new(&s, 0).unwrap().cutoff_us, 30 * DAY_US);
    }
}
