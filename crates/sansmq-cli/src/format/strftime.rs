//! One `strftime` conversion at a time, as glibc prints it in the C locale (mosquitto_sub never
//! calls `setlocale`): what `-F '@X'` prints, and the pieces of `%I`, `%U` and `%j`'s time.

use jiff::Zoned;

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Appends what glibc's `strftime` prints for `%` followed by the byte `conversion` at `time`.
/// A byte that is no conversion is printed as it came, `%` and all (`%Q` → `%Q`); a digit from
/// 3 to 9 there is a width with nothing to apply to, so glibc pads the `%` and the digit to it.
pub(crate) fn write_conversion(out: &mut Vec<u8>, conversion: u8, time: &Zoned) {
    let weekday = usize::try_from(time.weekday().to_sunday_zero_offset()).unwrap_or(0);
    let month = usize::try_from(time.month()).unwrap_or(1);
    let hour_12 = match time.hour() % 12 {
        0 => 12,
        hour => hour,
    };
    let text = match conversion {
        b'%' => "%".to_owned(),
        b'a' => abbreviation(WEEKDAYS.get(weekday)),
        b'A' => WEEKDAYS
            .get(weekday)
            .copied()
            .unwrap_or_default()
            .to_owned(),
        b'b' | b'h' => abbreviation(MONTHS.get(month.wrapping_sub(1))),
        b'B' => MONTHS
            .get(month.wrapping_sub(1))
            .copied()
            .unwrap_or_default()
            .to_owned(),
        b'c' => compose(time, b"a b e H:M:S Y"),
        b'C' => format!("{:02}", time.year().div_euclid(100)),
        b'd' => format!("{:02}", time.day()),
        b'D' | b'x' => compose(time, b"m/d/y"),
        b'e' => format!("{:2}", time.day()),
        b'F' => compose(time, b"Y-m-d"),
        b'g' => format!("{:02}", time.date().iso_week_date().year().rem_euclid(100)),
        b'G' => time.date().iso_week_date().year().to_string(),
        b'H' => format!("{:02}", time.hour()),
        b'I' => format!("{hour_12:02}"),
        b'j' => format!("{:03}", time.day_of_year()),
        b'k' => format!("{:2}", time.hour()),
        b'l' => format!("{hour_12:2}"),
        b'm' => format!("{:02}", time.month()),
        b'M' => format!("{:02}", time.minute()),
        b'n' => "\n".to_owned(),
        b'p' => if time.hour() < 12 { "AM" } else { "PM" }.to_owned(),
        b'P' => if time.hour() < 12 { "am" } else { "pm" }.to_owned(),
        b'r' => compose(time, b"I:M:S p"),
        b'R' => compose(time, b"H:M"),
        b's' => time.timestamp().as_second().to_string(),
        b'S' => format!("{:02}", time.second()),
        b't' => "\t".to_owned(),
        b'T' | b'X' => compose(time, b"H:M:S"),
        b'u' => time.weekday().to_monday_one_offset().to_string(),
        b'U' => format!("{:02}", week_of_year(time, weekday)),
        b'V' => format!("{:02}", time.date().iso_week_date().week()),
        b'w' => weekday.to_string(),
        b'W' => format!("{:02}", week_of_year(time, (weekday + 6) % 7)),
        b'y' => format!("{:02}", time.year().rem_euclid(100)),
        b'Y' => time.year().to_string(),
        b'z' => utc_offset(time),
        b'Z' => time
            .time_zone()
            .to_offset_info(time.timestamp())
            .abbreviation()
            .to_owned(),
        b'3'..=b'9' => {
            out.extend(std::iter::repeat_n(b' ', usize::from(conversion - b'2')));
            out.extend_from_slice(&[b'%', conversion]);
            return;
        }
        _ => {
            out.extend_from_slice(&[b'%', conversion]);
            return;
        }
    };
    out.extend_from_slice(text.as_bytes());
}

/// The C locale's three-letter abbreviation of a day or month name.
fn abbreviation(name: Option<&&str>) -> String {
    name.map_or_else(String::new, |name| name.chars().take(3).collect())
}

/// Conversions joined by the separators between them: `b"H:M"` is `%H:%M`.
fn compose(time: &Zoned, pattern: &[u8]) -> String {
    let mut out = Vec::new();
    for &byte in pattern {
        if byte.is_ascii_alphabetic() {
            write_conversion(&mut out, byte, time);
        } else {
            out.push(byte);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `%U` (weeks start on Sunday, `days_since_week_start` = weekday from Sunday) and `%W` (from
/// Monday): the week of the year, 00 before the year's first such weekday.
fn week_of_year(time: &Zoned, days_since_week_start: usize) -> usize {
    let day_of_year = usize::try_from(time.day_of_year()).unwrap_or(1);
    (day_of_year + 6 - days_since_week_start) / 7
}

/// `%FT%T`: `2026-12-05T02:09:34`.
pub(crate) fn date_and_time(time: &Zoned) -> Vec<u8> {
    let mut out = Vec::new();
    write_conversion(&mut out, b'F', time);
    out.push(b'T');
    write_conversion(&mut out, b'T', time);
    out
}

/// `%z`: `+hhmm` or `-hhmm`; seconds of an offset are dropped, as glibc does.
fn utc_offset(time: &Zoned) -> String {
    let seconds = time.offset().seconds();
    let sign = if seconds < 0 { '-' } else { '+' };
    let minutes = seconds.unsigned_abs() / 60;
    format!("{sign}{:02}{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::Timestamp;
    use jiff::tz::TimeZone;

    /// 2026-12-04 03:46:51 UTC, a Friday.
    const FRIDAY: i64 = 1_796_356_011;

    fn at(seconds: i64, zone: &str) -> Zoned {
        let zone = TimeZone::posix(zone).unwrap();
        Timestamp::from_second(seconds).unwrap().to_zoned(zone)
    }

    fn converted(conversion: u8, time: &Zoned) -> String {
        let mut out = Vec::new();
        write_conversion(&mut out, conversion, time);
        String::from_utf8(out).unwrap()
    }

    /// The expected strings were printed by glibc 2.36's `strftime` for the same instant and
    /// `TZ` (a C program looping over every printable byte after `%`).
    #[test]
    fn every_conversion_prints_as_glibc_in_the_c_locale() {
        let utc = at(FRIDAY, "UTC0");
        for (conversion, expected) in [
            (b'%', "%"),
            (b'a', "Fri"),
            (b'A', "Friday"),
            (b'b', "Dec"),
            (b'B', "December"),
            (b'c', "Fri Dec  4 03:46:51 2026"),
            (b'C', "20"),
            (b'd', "04"),
            (b'D', "12/04/26"),
            (b'e', " 4"),
            (b'F', "2026-12-04"),
            (b'g', "26"),
            (b'G', "2026"),
            (b'h', "Dec"),
            (b'H', "03"),
            (b'I', "03"),
            (b'j', "338"),
            (b'k', " 3"),
            (b'l', " 3"),
            (b'm', "12"),
            (b'M', "46"),
            (b'n', "\n"),
            (b'p', "AM"),
            (b'P', "am"),
            (b'r', "03:46:51 AM"),
            (b'R', "03:46"),
            (b's', "1796356011"),
            (b'S', "51"),
            (b't', "\t"),
            (b'T', "03:46:51"),
            (b'u', "5"),
            (b'U', "48"),
            (b'V', "49"),
            (b'w', "5"),
            (b'W', "48"),
            (b'x', "12/04/26"),
            (b'X', "03:46:51"),
            (b'y', "26"),
            (b'Y', "2026"),
            (b'z', "+0000"),
            (b'Z', "UTC"),
        ] {
            assert_eq!(
                converted(conversion, &utc),
                expected,
                "%{}",
                conversion as char
            );
        }
    }

    #[test]
    fn unknown_conversions_print_themselves_and_digits_pad() {
        let utc = at(FRIDAY, "UTC0");
        for conversion in [
            b'E', b'O', b'Q', b'f', b'i', b'N', b'+', b'0', b'1', b'2', b'-', 0xc3,
        ] {
            let mut out = Vec::new();
            write_conversion(&mut out, conversion, &utc);
            assert_eq!(out, [b'%', conversion], "%{}", conversion as char);
        }
        assert_eq!(converted(b'3', &utc), " %3");
        assert_eq!(converted(b'9', &utc), "       %9");
    }

    #[test]
    fn local_time_follows_the_zone_offset_and_abbreviation() {
        // glibc with TZ=ABC-5:30.
        let east = at(FRIDAY, "ABC-5:30");
        assert_eq!(converted(b'c', &east), "Fri Dec  4 09:16:51 2026");
        assert_eq!(converted(b'z', &east), "+0530");
        assert_eq!(converted(b'Z', &east), "ABC");
        assert_eq!(converted(b's', &east), "1796356011");
        let west = at(FRIDAY, "XYZ3");
        assert_eq!(converted(b'z', &west), "-0300");
        assert_eq!(converted(b'r', &west), "12:46:51 AM");
        assert_eq!(converted(b'l', &west), "12");
        assert_eq!(converted(b'P', &at(FRIDAY + 9 * 3600, "UTC0")), "pm");
    }

    #[test]
    fn week_numbers_around_new_year() {
        // 2027-01-01 is a Friday: Sunday- and Monday-based weeks are 00, the ISO week is 53 of
        // 2026 (checked against glibc: %U=00 %W=00 %V=53 %G=2026 %g=26 %j=001).
        let new_year = at(1_798_761_600, "UTC0");
        for (conversion, expected) in [
            (b'U', "00"),
            (b'W', "00"),
            (b'V', "53"),
            (b'G', "2026"),
            (b'g', "26"),
            (b'j', "001"),
        ] {
            assert_eq!(
                converted(conversion, &new_year),
                expected,
                "%{}",
                conversion as char
            );
        }
        // 2027-01-03, a Sunday: week 01 when weeks start on Sunday, still 00 from Monday.
        let sunday = at(1_798_761_600 + 2 * 86_400, "UTC0");
        assert_eq!(converted(b'U', &sunday), "01");
        assert_eq!(converted(b'W', &sunday), "00");
    }
}
