//! Recurring periods (a cron start, a length, a time zone) and allow/deny window sets.
//!
//! Pure functions of time: every question takes `at` and never reads a clock.

use std::time::Duration;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::cron_expr::Cron;
use crate::raw::WindowAction;

/// A period that starts at each firing of a cron expression and lasts `duration`.
#[derive(Debug, Clone)]
pub struct Recurring {
    pub when: Cron,
    pub duration: Duration,
    pub zone: Tz,
}

/// Upper bound on the starts examined by one question, so a dense schedule with a long
/// duration (every second, for a year) cannot make a question run away.
const MAX_STARTS: usize = 100_000;

/// Starts looked at to tell whether a period is always open.
pub const GAPS: usize = 10_000;

/// Steps taken to tell whether deny windows cover the allow windows; past it, they are
/// taken not to.
const COVER_STEPS: usize = 100_000;

impl Recurring {
    fn span(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.duration).unwrap_or(chrono::Duration::MAX)
    }

    /// Starts strictly after `after`, in UTC.
    pub fn starts_after(&self, after: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        self.when
            .schedule()
            .after(&after.with_timezone(&self.zone))
            .map(|t| t.with_timezone(&Utc))
            .take(MAX_STARTS)
    }

    /// The latest start at or before `at`: one step of the schedule backwards, however
    /// long the period.
    pub fn last_start(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let just_after = at.checked_add_signed(chrono::Duration::nanoseconds(1))?;
        self.when
            .schedule()
            .after(&just_after.with_timezone(&self.zone))
            .next_back()
            .map(|t| t.with_timezone(&Utc))
    }

    /// When the period that contains `at` ends, if one does (the latest end, when
    /// periods overlap: every period lasts as long, so the latest start's). A period too
    /// long for the calendar never ends.
    pub fn active_until(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let start = self.last_start(at)?;
        let end = start
            .checked_add_signed(self.span())
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        (end > at).then_some(end)
    }

    /// Whether the period lasts at least as long as the longest gap between its starts
    /// (looked at over the next `horizon` from `at`, at most [`GAPS`] starts): once begun,
    /// it is always open. `false` when fewer than two starts fall in the horizon.
    pub fn always_open(&self, at: DateTime<Utc>, horizon: Duration) -> bool {
        let Ok(h) = chrono::Duration::from_std(horizon) else {
            return false;
        };
        let end = at + h;
        let span = self.span();
        let mut starts = self.starts_after(at).take_while(|s| *s <= end).take(GAPS);
        let Some(mut previous) = starts.next() else {
            return false;
        };
        let mut gaps = 0;
        for s in starts {
            if s - previous > span {
                return false;
            }
            previous = s;
            gaps += 1;
        }
        gaps > 0
    }

    pub fn is_active(&self, at: DateTime<Utc>) -> bool {
        self.active_until(at).is_some()
    }

    /// The next start at or after `at`.
    pub fn next_start(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let just_before = at - chrono::Duration::nanoseconds(1);
        self.starts_after(just_before).next()
    }
}

/// A window of a space or seed: a recurring period that allows or denies replication.
#[derive(Debug, Clone)]
pub struct Window {
    pub action: WindowAction,
    pub period: Recurring,
}

/// Whether replication may run at `at`: no deny window is active, and either there are no
/// allow windows or one of them is active.
pub fn allowed(windows: &[Window], at: DateTime<Utc>) -> bool {
    let mut any_allow = false;
    let mut allow_active = false;
    for w in windows {
        match w.action {
            WindowAction::Deny if w.period.is_active(at) => return false,
            WindowAction::Deny => {}
            WindowAction::Allow => {
                any_allow = true;
                allow_active = allow_active || w.period.is_active(at);
            }
        }
    }
    !any_allow || allow_active
}

/// The first instant at or after `at`, within `horizon`, at which replication is allowed.
pub fn next_allowed(
    windows: &[Window],
    at: DateTime<Utc>,
    horizon: Duration,
) -> Option<DateTime<Utc>> {
    let end = at + chrono::Duration::from_std(horizon).ok()?;
    let mut t = at;
    // Each step moves to a window boundary, so the loop ends; the count bounds it anyway.
    for _ in 0..MAX_STARTS {
        if t > end {
            return None;
        }
        if allowed(windows, t) {
            return Some(t);
        }
        // Not allowed at t: either a deny is active (jump to its end) or no allow is
        // active (jump to the next allow start). Take the nearest such boundary after t.
        let deny_end = windows
            .iter()
            .filter(|w| w.action == WindowAction::Deny)
            .filter_map(|w| w.period.active_until(t))
            .max();
        let next = match deny_end {
            Some(e) => e,
            None => windows
                .iter()
                .filter(|w| w.action == WindowAction::Allow)
                .filter_map(|w| w.period.next_start(t))
                .min()?,
        };
        if next <= t {
            return None;
        }
        t = next;
    }
    None
}

/// The first instant after `at` at which any of `periods` starts or ends: where the
/// answer of [`allowed`] or [`active`] may change. `None` when none ever does.
pub fn next_boundary<'a>(
    periods: impl IntoIterator<Item = &'a Recurring>,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    periods
        .into_iter()
        .flat_map(|p| {
            // The end of a running period, the next start, and that start's end (when a
            // period is longer than the gap between its starts, ends come after starts).
            let next = p.starts_after(at).next();
            [
                p.active_until(at),
                next,
                next.and_then(|n| n.checked_add_signed(p.span())),
            ]
        })
        .flatten()
        .filter(|t| *t > at)
        .min()
}

/// Of `items` with a period each, those whose period is active at `at`, in order.
pub fn active<'a, T>(
    items: &'a [T],
    period: impl Fn(&T) -> &Recurring + 'a,
    at: DateTime<Utc>,
) -> impl Iterator<Item = &'a T> + 'a {
    items.iter().filter(move |i| period(i).is_active(at))
}

/// Whether every allow period starting within `horizon` of `at` is wholly covered by
/// deny periods, so the windows, taken together, never let replication run.
/// `false` when there are no allow windows or no deny windows.
pub fn deny_covers_allow(windows: &[Window], at: DateTime<Utc>, horizon: Duration) -> bool {
    let allows: Vec<&Recurring> = windows
        .iter()
        .filter(|w| w.action == WindowAction::Allow)
        .map(|w| &w.period)
        .collect();
    let denies: Vec<&Recurring> = windows
        .iter()
        .filter(|w| w.action == WindowAction::Deny)
        .map(|w| &w.period)
        .collect();
    if allows.is_empty() || denies.is_empty() {
        return false;
    }
    let Ok(h) = chrono::Duration::from_std(horizon) else {
        return false;
    };
    let end = at + h;
    let mut checked = 0usize;
    let mut steps = 0usize;
    for allow in &allows {
        let span = allow.span();
        for start in allow.starts_after(at).take_while(|s| *s <= end).take(2_000) {
            checked += 1;
            let stop = start
                .checked_add_signed(span)
                .unwrap_or(DateTime::<Utc>::MAX_UTC)
                .min(end);
            let mut t = start;
            while t < stop {
                steps += 1;
                if steps > COVER_STEPS {
                    return false;
                }
                match denies.iter().filter_map(|d| d.active_until(t)).max() {
                    Some(until) if until > t => t = until,
                    _ => return false,
                }
            }
        }
    }
    checked > 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn period(when: &str, dur: &str, zone: &str) -> Recurring {
        Recurring {
            when: Cron::parse(when).unwrap(),
            duration: crate::units::parse_duration(dur).unwrap(),
            zone: zone.parse().unwrap(),
        }
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    #[test]
    fn a_nightly_period_is_active_through_midnight() {
        let night = period("0 22 * * *", "8h", "UTC");
        assert!(night.is_active(utc(2026, 5, 1, 23, 0)));
        assert!(night.is_active(utc(2026, 5, 2, 5, 59)));
        assert!(!night.is_active(utc(2026, 5, 2, 6, 0)));
        assert!(!night.is_active(utc(2026, 5, 2, 21, 59)));
        assert!(night.is_active(utc(2026, 5, 2, 22, 0)));
        assert_eq!(
            night.active_until(utc(2026, 5, 1, 23, 0)),
            Some(utc(2026, 5, 2, 6, 0))
        );
    }

    #[test]
    fn zones_follow_daylight_saving_time() {
        // 09:00 in London is 08:00 UTC in summer and 09:00 UTC in winter.
        let p = period("0 9 * * *", "1h", "Europe/London");
        assert_eq!(
            p.next_start(utc(2026, 3, 28, 10, 0)),
            Some(utc(2026, 3, 29, 8, 0))
        );
        assert_eq!(
            p.next_start(utc(2026, 10, 24, 10, 0)),
            Some(utc(2026, 10, 25, 9, 0))
        );
        assert!(p.is_active(utc(2026, 7, 1, 8, 30)));
        assert!(!p.is_active(utc(2026, 7, 1, 9, 30)));
        assert!(p.is_active(utc(2026, 12, 1, 9, 30)));
    }

    #[test]
    fn deny_beats_allow_and_no_windows_means_always() {
        let allow = Window {
            action: WindowAction::Allow,
            period: period("0 22 * * *", "8h", "UTC"),
        };
        let deny = Window {
            action: WindowAction::Deny,
            period: period("0 2 * * *", "1h", "UTC"),
        };
        let windows = [allow, deny];
        assert!(allowed(&[], utc(2026, 1, 1, 12, 0)));
        assert!(allowed(&windows, utc(2026, 1, 1, 23, 0)));
        assert!(!allowed(&windows, utc(2026, 1, 2, 2, 30)));
        assert!(!allowed(&windows, utc(2026, 1, 2, 12, 0)));
        let day = Duration::from_secs(86_400);
        assert_eq!(
            next_allowed(&windows, utc(2026, 1, 2, 2, 30), day),
            Some(utc(2026, 1, 2, 3, 0))
        );
        assert_eq!(
            next_allowed(&windows, utc(2026, 1, 2, 12, 0), day),
            Some(utc(2026, 1, 2, 22, 0))
        );
    }

    #[test]
    fn boundaries_are_the_starts_and_ends_in_local_time() {
        // Work hours in New York, on the Sunday clocks go forward and the Monday after.
        let work = period("0 9 * * 1-5", "8h", "America/New_York");
        let sat = utc(2026, 3, 7, 12, 0);
        // Next: Monday 9 March 09:00 EDT = 13:00 UTC (it was 14:00 UTC the week before).
        assert_eq!(next_boundary([&work], sat), Some(utc(2026, 3, 9, 13, 0)));
        assert_eq!(
            next_boundary([&work], utc(2026, 3, 9, 13, 0)),
            Some(utc(2026, 3, 9, 21, 0))
        );
        assert_eq!(
            next_boundary([&work], utc(2026, 3, 6, 15, 0)),
            Some(utc(2026, 3, 6, 22, 0)),
            "Friday 17:00 EST"
        );
        // Two periods: the nearest boundary of either (here the end of Saturday's lunch).
        let lunch = period("0 12 * * *", "1h", "UTC");
        assert_eq!(
            next_boundary([&work, &lunch], sat),
            Some(utc(2026, 3, 7, 13, 0))
        );
        assert_eq!(next_boundary(std::iter::empty(), sat), None);
        // Walking the boundaries visits every change of `allowed`.
        let windows = [
            Window {
                action: WindowAction::Allow,
                period: work.clone(),
            },
            Window {
                action: WindowAction::Deny,
                period: lunch.clone(),
            },
        ];
        let mut t = sat;
        let mut changes = Vec::new();
        let mut was = allowed(&windows, t);
        while let Some(next) = next_boundary(windows.iter().map(|w| &w.period), t) {
            if next > utc(2026, 3, 10, 0, 0) {
                break;
            }
            let now = allowed(&windows, next);
            if now != was {
                changes.push((next, now));
            }
            (t, was) = (next, now);
        }
        assert_eq!(
            changes,
            vec![
                (utc(2026, 3, 9, 13, 0), true),
                (utc(2026, 3, 9, 21, 0), false),
            ]
        );
        let limits = [lunch.clone(), work.clone()];
        let at_noon: Vec<_> = active(&limits, |p| p, utc(2026, 3, 9, 12, 30)).collect();
        assert_eq!(at_noon.len(), 1, "lunch only: work starts at 13:00 UTC");
    }

    #[test]
    fn a_deny_window_covering_every_allow_window_is_detected() {
        let year = Duration::from_secs(366 * 86_400);
        let at = utc(2026, 1, 1, 0, 0);
        let allow = Window {
            action: WindowAction::Allow,
            period: period("0 22 * * *", "2h", "UTC"),
        };
        let wide = Window {
            action: WindowAction::Deny,
            period: period("0 21 * * *", "4h", "UTC"),
        };
        let narrow = Window {
            action: WindowAction::Deny,
            period: period("0 23 * * *", "30m", "UTC"),
        };
        assert!(deny_covers_allow(&[allow.clone(), wide], at, year));
        assert!(!deny_covers_allow(&[allow.clone(), narrow], at, year));
        assert!(!deny_covers_allow(std::slice::from_ref(&allow), at, year));
    }

    #[test]
    fn periods_longer_than_their_schedule_are_always_open_and_answered_at_once() {
        let at = utc(2026, 6, 1, 12, 0);
        let year = Duration::from_secs(366 * 86_400);
        for dur in ["1y", "100y", "300000y"] {
            let p = period("0 22 * * *", dur, "UTC");
            assert!(p.always_open(at, year), "{dur}");
            // Open from the first start on (and the first start is long past).
            assert!(p.is_active(at), "{dur}");
            let windows = [Window {
                action: WindowAction::Allow,
                period: p.clone(),
            }];
            assert!(allowed(&windows, at), "{dur}");
            assert_eq!(next_allowed(&windows, at, year), Some(at));
            // A deny window that long covers every allow window.
            let deny = Window {
                action: WindowAction::Deny,
                period: p.clone(),
            };
            let nightly = Window {
                action: WindowAction::Allow,
                period: period("0 1 * * *", "1h", "UTC"),
            };
            assert!(deny_covers_allow(
                &[nightly.clone(), deny.clone()],
                at,
                year
            ));
            assert_eq!(next_allowed(&[nightly, deny], at, year), None);
        }
        // Just shorter than a day: open most of the time, not always.
        let almost = period("0 22 * * *", "23h59m", "UTC");
        assert!(!almost.always_open(at, year));
        assert!(!almost.is_active(utc(2026, 6, 1, 21, 59)));
        assert!(almost.is_active(utc(2026, 6, 1, 21, 58)));
        // Every minute, on the first of the month only, for two days: not always open.
        let monthly = period("* * 1 * *", "2d", "UTC");
        assert!(!monthly.always_open(at, year));
        // Long periods answer from the latest start, not by walking every start since.
        let dense = period("* * * * * *", "100y", "UTC");
        assert!(dense.is_active(at));
        assert!(dense.active_until(at).unwrap() > utc(2120, 1, 1, 0, 0));
    }
}
