//! A link's schedule keys (`every`, `align_to`, `jitter`, `cron`,
//! `timezone`) turned into a [`Schedule`], each mistake reported at its key.

use databay_core::Schedule;
use toml::de::DeTable;

use super::loader::Loader;
use super::settings::LinkSettings;

/// The shortest `every` a config may give.
const MIN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(1);

impl<'t> Loader<'_, 't> {
    pub(super) fn schedule(
        &mut self,
        s: &LinkSettings,
        table: &DeTable<'t>,
        key: &str,
    ) -> Option<Schedule> {
        let at = |k: &str| table.get(k).map(|v| v.span());
        match (&s.every, &s.cron) {
            (Some(_), Some(_)) => {
                self.diag.error(
                    at("cron"),
                    format!("{key}.cron"),
                    "`every` and `cron` are exclusive: give one schedule",
                    None,
                );
                None
            }
            (None, None) => {
                self.diag.error(
                    at("name"),
                    key.to_owned(),
                    "the link has no schedule",
                    Some("add `every = \"5s\"` or `cron = \"*/5 * * * *\"`".into()),
                );
                None
            }
            (Some(every), None) => {
                if s.timezone.is_some() {
                    self.diag.error(
                        at("timezone"),
                        format!("{key}.timezone"),
                        "`timezone` applies to `cron` schedules only",
                        None,
                    );
                }
                // Below a millisecond the timer wheel cannot keep the
                // interval anyway (its resolution), and `"1ns"` is a typo.
                if !every.0.is_zero() && every.0 < MIN_INTERVAL {
                    self.diag.error(
                        at("every"),
                        format!("{key}.every"),
                        format!("{:?} is shorter than the shortest interval, 1ms", every.0),
                        Some("write e.g. `every = \"1ms\"` or longer".into()),
                    );
                    return None;
                }
                match Schedule::every(every.0) {
                    Ok(mut schedule) => {
                        if let Some(a) = s.align_to {
                            schedule = schedule.align_to(a.0);
                        }
                        if let Some(j) = s.jitter {
                            schedule = schedule.jitter(j.0);
                        }
                        Some(schedule)
                    }
                    Err(e) => {
                        self.diag
                            .error(at("every"), format!("{key}.every"), e.to_string(), None);
                        None
                    }
                }
            }
            (None, Some(cron)) => {
                for k in ["align_to", "jitter"] {
                    if table.contains_key(k) {
                        self.diag.error(
                            at(k),
                            format!("{key}.{k}"),
                            format!("`{k}` applies to `every` schedules only"),
                            None,
                        );
                    }
                }
                let tz = s.timezone.as_deref().unwrap_or("UTC");
                match Schedule::cron(cron, tz) {
                    Ok(schedule) => Some(schedule),
                    Err(e) => {
                        let k = if matches!(e, databay_core::ScheduleError::TimeZone(_)) {
                            "timezone"
                        } else {
                            "cron"
                        };
                        self.diag
                            .error(at(k), format!("{key}.{k}"), e.to_string(), None);
                        None
                    }
                }
            }
        }
    }
}
