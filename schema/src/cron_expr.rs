//! Cron expressions as people write them, translated for the `cron` crate.
//!
//! Accepted: 5 fields (`min hour day month weekday`), 6 fields (a leading seconds field),
//! 7 fields (seconds first, a year last), and `@hourly`, `@daily`, `@weekly`, `@monthly`,
//! `@yearly`. Weekdays are numbered as in classic cron (0 or 7 = Sunday, 1 = Monday) or
//! named (`mon-fri`). A time matches when every field matches: when both day-of-month and
//! weekday are restricted, both must hold.

use std::collections::BTreeSet;
use std::str::FromStr;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct Cron {
    source: String,
    schedule: cron::Schedule,
}

/// Why a cron expression did not parse, in words for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CronError(pub String);

/// Day names and their classic cron numbers (0 = Sunday).
const DAY_NAMES: &[(&str, u32)] = &[
    ("sun", 0),
    ("sunday", 0),
    ("mon", 1),
    ("monday", 1),
    ("tue", 2),
    ("tues", 2),
    ("tuesday", 2),
    ("wed", 3),
    ("wednesday", 3),
    ("thu", 4),
    ("thurs", 4),
    ("thursday", 4),
    ("fri", 5),
    ("friday", 5),
    ("sat", 6),
    ("saturday", 6),
];

impl Cron {
    pub fn parse(expr: &str) -> Result<Cron, CronError> {
        let trimmed = expr.trim();
        let expanded = match trimmed {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other if other.starts_with('@') => {
                return Err(CronError(format!(
                    "{other:?} is not a known shortcut (use @hourly, @daily, @weekly, @monthly or @yearly)"
                )));
            }
            other => other,
        };
        let mut fields: Vec<String> = expanded.split_whitespace().map(str::to_string).collect();
        match fields.len() {
            5 => fields.insert(0, "0".into()),
            6 | 7 => {}
            n => {
                return Err(CronError(format!(
                    "has {n} fields; write 5 (min hour day month weekday), 6 (with seconds first) or 7 (and a year last)"
                )));
            }
        }
        fields[5] = weekdays_for_crate(&fields[5])?;
        if let Some(year) = fields.get(6) {
            for y in year
                .split([',', '-', '/'])
                .filter_map(|n| n.parse::<u32>().ok())
            {
                if !(1970..=2099).contains(&y) {
                    return Err(CronError(format!(
                        "year {y} is outside 1970-2099, the years a schedule can name"
                    )));
                }
            }
        }
        let joined = fields.join(" ");
        let schedule = cron::Schedule::from_str(&joined).map_err(|e| {
            // The library's message is the expression, a caret line, then what is wrong:
            // say what is wrong and name the field (the diagnostic shows where).
            let text = e.to_string();
            let mut lines = text.lines();
            let (_, caret, what) = (lines.next(), lines.next(), lines.next());
            let field = caret
                .and_then(|c| c.find('^'))
                .map(|at| joined[..at.min(joined.len())].split_whitespace().count());
            const NAMES: [&str; 7] = [
                "seconds", "minute", "hour", "day", "month", "weekday", "year",
            ];
            let named = field
                .and_then(|i| NAMES.get(i))
                .map(|n| format!("the {n} field"));
            let what = what.map(str::trim).filter(|w| !w.is_empty());
            CronError(match (named, what) {
                (Some(n), Some(w)) => format!("{n}: {}", lowercase_first(w)),
                (Some(n), None) => format!("{n} is not valid"),
                (None, Some(w)) => lowercase_first(w),
                (None, None) => lowercase_first(text.trim()),
            })
        })?;
        Ok(Cron {
            source: expr.to_string(),
            schedule,
        })
    }

    /// The expression as the user wrote it.
    pub fn source(&self) -> &str {
        &self.source
    }

    pub(crate) fn schedule(&self) -> &cron::Schedule {
        &self.schedule
    }
}

fn lowercase_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

fn weekday(token: &str) -> Result<u32, CronError> {
    let lower = token.to_ascii_lowercase();
    if let Some(&(_, day)) = DAY_NAMES.iter().find(|(name, _)| *name == lower) {
        return Ok(day);
    }
    match token.parse::<u32>() {
        Ok(n) if n <= 7 => Ok(n % 7),
        _ => Err(CronError(format!(
            "weekday {token:?} is not 0-7 or a day name like \"mon\""
        ))),
    }
}

/// Rewrite a classic weekday field (0/7 = Sunday) as the crate's (1 = Sunday) explicit list.
fn weekdays_for_crate(field: &str) -> Result<String, CronError> {
    if field == "*" || field == "?" {
        return Ok(field.to_string());
    }
    let mut days = BTreeSet::new();
    for item in field.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                    CronError(format!("weekday step {s:?} is not a positive number"))
                })?;
                (r, step)
            }
            None => (item, 1),
        };
        let (first, last) = if range == "*" || range == "?" {
            (0, 6)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (weekday(a)?, weekday(b)?);
            // `5-7` and `fri-sun` end on Sunday: count it as day 7 so the range is ascending.
            let b = if b == 0 && a > 0 { 7 } else { b };
            if a > b {
                return Err(CronError(format!("weekday range {range:?} runs backwards")));
            }
            (a, b)
        } else {
            let a = weekday(range)?;
            (a, if step > 1 { 6 } else { a })
        };
        days.extend((first..=last).step_by(step as usize).map(|d| d % 7));
    }
    Ok(days
        .iter()
        .map(|d| (d + 1).to_string())
        .collect::<Vec<_>>()
        .join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, TimeZone, Utc, Weekday};

    fn weekdays(expr: &str) -> Vec<Weekday> {
        let cron = Cron::parse(expr).unwrap();
        let start = Utc.with_ymd_and_hms(2026, 1, 4, 0, 0, 0).unwrap(); // a Sunday
        let mut days: Vec<Weekday> = cron
            .schedule()
            .after(&start)
            .take(7)
            .map(|t| t.weekday())
            .collect();
        days.sort_by_key(|d| d.num_days_from_sunday());
        days.dedup();
        days
    }

    #[test]
    fn weekdays_are_numbered_as_in_classic_cron() {
        use Weekday::*;
        assert_eq!(weekdays("0 9 * * 1-5"), vec![Mon, Tue, Wed, Thu, Fri]);
        assert_eq!(weekdays("0 9 * * 0"), vec![Sun]);
        assert_eq!(weekdays("0 9 * * 7"), vec![Sun]);
        assert_eq!(weekdays("0 9 * * 5-7"), vec![Sun, Fri, Sat]);
        assert_eq!(weekdays("0 9 * * sat,sun"), vec![Sun, Sat]);
        assert_eq!(weekdays("0 9 * * mon-fri"), vec![Mon, Tue, Wed, Thu, Fri]);
        assert_eq!(weekdays("0 9 * * */2"), vec![Sun, Tue, Thu, Sat]);
    }

    #[test]
    fn seconds_and_years_are_optional_fields() {
        let start = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let five = Cron::parse("30 22 * * *").unwrap();
        let six = Cron::parse("15 30 22 * * *").unwrap();
        let seven = Cron::parse("0 0 12 1 6 * 2030").unwrap();
        assert_eq!(
            five.schedule().after(&start).next().unwrap().to_rfc3339(),
            "2026-01-01T22:30:00+00:00"
        );
        assert_eq!(
            six.schedule().after(&start).next().unwrap().to_rfc3339(),
            "2026-01-01T22:30:15+00:00"
        );
        assert_eq!(
            seven.schedule().after(&start).next().unwrap().to_rfc3339(),
            "2030-06-01T12:00:00+00:00"
        );
    }

    #[test]
    fn shortcuts_expand() {
        let start = Utc.with_ymd_and_hms(2026, 3, 5, 10, 0, 0).unwrap();
        let next = |e: &str| {
            Cron::parse(e)
                .unwrap()
                .schedule()
                .after(&start)
                .next()
                .unwrap()
                .to_rfc3339()
        };
        assert_eq!(next("@daily"), "2026-03-06T00:00:00+00:00");
        assert_eq!(next("@hourly"), "2026-03-05T11:00:00+00:00");
        assert_eq!(next("@weekly"), "2026-03-08T00:00:00+00:00");
    }

    #[test]
    fn malformed_expressions_say_why() {
        assert!(Cron::parse("* * *").unwrap_err().0.contains("3 fields"));
        assert!(
            Cron::parse("0 9 * * 8")
                .unwrap_err()
                .0
                .contains("weekday \"8\"")
        );
        assert!(
            Cron::parse("0 9 * * fri-mon")
                .unwrap_err()
                .0
                .contains("backwards")
        );
        assert!(
            Cron::parse("@fortnightly")
                .unwrap_err()
                .0
                .contains("shortcut")
        );
        assert!(Cron::parse("61 * * * *").is_err());
        // One line naming the field, without the library's own copy and caret.
        let minute = Cron::parse("61 * * * *").unwrap_err().0;
        assert!(minute.starts_with("the minute field: "), "{minute}");
        assert!(!minute.contains('\n') && !minute.contains('^'), "{minute}");
        let hour = Cron::parse("0 0 99 * * *").unwrap_err().0;
        assert!(hour.starts_with("the hour field: "), "{hour}");
        let year = Cron::parse("0 0 0 1 1 * 1969").unwrap_err().0;
        assert_eq!(
            year,
            "year 1969 is outside 1970-2099, the years a schedule can name"
        );
    }
}
