//! Dates as mail writes them, in UTC, without a calendar library: RFC 5322
//! (`Thu, 1 Jan 1970 00:00:00 +0000`) for headers and asctime
//! (`Thu Jan  1 00:00:00 1970`) for mbox From_ lines.

/// Weekday names, starting from 1970-01-01 (a Thursday).
const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// (year, month 1..=12, day 1..=31) of a day count since 1970-01-01,
/// after Howard Hinnant's `civil_from_days`.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date (`days_from_civil`).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

struct Parts {
    weekday: &'static str,
    month: &'static str,
    year: i64,
    day: u32,
    hour: u64,
    minute: u64,
    second: u64,
}

fn parts(secs: u64) -> Parts {
    let days = (secs / 86_400) as i64;
    let (year, month, day) = civil_from_days(days);
    let rem = secs % 86_400;
    Parts {
        weekday: WEEKDAYS[days.rem_euclid(7) as usize],
        month: MONTHS[(month as usize + 11) % 12],
        year,
        day,
        hour: rem / 3600,
        minute: rem / 60 % 60,
        second: rem % 60,
    }
}

/// `Thu, 1 Jan 1970 00:00:00 +0000` for seconds since the UNIX epoch.
pub fn rfc5322(secs: u64) -> String {
    let p = parts(secs);
    format!(
        "{}, {} {} {} {:02}:{:02}:{:02} +0000",
        p.weekday, p.day, p.month, p.year, p.hour, p.minute, p.second
    )
}

/// `Thu Jan  1 00:00:00 1970` for seconds since the UNIX epoch.
pub fn asctime(secs: u64) -> String {
    let p = parts(secs);
    format!(
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        p.weekday, p.month, p.day, p.hour, p.minute, p.second, p.year
    )
}

/// Seconds since the UNIX epoch of an asctime date (a trailing zone or
/// other words after the year are ignored); `None` if it is not one.
pub fn parse_asctime(text: &str) -> Option<u64> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    if parts.len() < 5 {
        return None;
    }
    let month = MONTHS.iter().position(|m| *m == parts[1])? as u32 + 1;
    let day: u32 = parts[2].parse().ok().filter(|d| (1..=31).contains(d))?;
    let mut hms = parts[3].split(':').map(|p| p.parse::<u64>().ok());
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    if h > 23 || m > 59 || s > 60 {
        return None;
    }
    let year: i64 = parts[4].parse().ok()?;
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(rfc5322(0), "Thu, 1 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322(1_000_000_000), "Sun, 9 Sep 2001 01:46:40 +0000");
        assert_eq!(rfc5322(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(rfc5322(1_795_437_296), "Mon, 23 Nov 2026 12:34:56 +0000");
        assert_eq!(asctime(0), "Thu Jan  1 00:00:00 1970");
        assert_eq!(parse_asctime("Mon Nov 23 08:34:56 2026"), Some(1_795_422_896));
        assert_eq!(parse_asctime("Mon Nov 23 08:34 2026"), None);
        for secs in [0, 59, 86_399, 951_782_400, 1_795_437_296, 4_102_444_800] {
            assert_eq!(parse_asctime(&asctime(secs)), Some(secs));
        }
        for d in [-1000, 0, 59, 60, 365, 11_016, 20_000, 100_000] {
            let (y, m, day) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, day), d);
        }
    }
}
