//! The property's settings, kept in the relay's `meta` table, and the
//! calendar they imply. Today one setting: the property's time zone (an IANA
//! name, `Asia/Shanghai` unless set), which decides what "today", "this week"
//! and "this year" mean wherever a person sees a day: report periods, the
//! serial number's year, the printed order and every time the dashboard
//! shows. The wire and the database stay RFC 3339 UTC.
//!
//! One function reads a setting and one writes it ([`time_zone`],
//! [`set_time_zone`]), so the admin command, the handlers and a later set-up
//! wizard share them; the connection-level pair (`time_zone_in`,
//! `set_time_zone_in`) is for code already inside a read or a transaction
//! (the serial number's year is read in the transaction that takes it).

use chrono::{
    DateTime, Datelike, Days, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};
use chrono_tz::Tz;
use rusqlite::{Connection, Transaction};

use crate::error::{AppError, AppResult};
use crate::state::Relay;
use crate::store::{StoreResult, records};

/// The zone a property has until someone sets another.
pub const DEFAULT_TIME_ZONE: Tz = chrono_tz::Asia::Shanghai;

const TIME_ZONE_KEY: &str = "time_zone";

/// Reads an IANA zone name (`Asia/Shanghai`), refusing anything else.
///
/// # Errors
/// [`AppError::BadRequest`] naming the unknown zone.
pub fn parse_time_zone(name: &str) -> AppResult<Tz> {
    name.trim().parse::<Tz>().map_err(|_| {
        AppError::BadRequest(format!(
            "{name:?} is not an IANA time zone (for example Asia/Shanghai)"
        ))
    })
}

/// The property's time zone, as stored (the default when none was set).
///
/// # Errors
/// Storage errors.
pub async fn time_zone(relay: &Relay) -> AppResult<Tz> {
    Ok(relay.db.read(time_zone_in).await?)
}

/// Sets the property's time zone by its IANA name and returns it.
///
/// # Errors
/// [`AppError::BadRequest`] for an unknown zone (nothing is written);
/// storage errors.
pub async fn set_time_zone(relay: &Relay, name: &str) -> AppResult<Tz> {
    let tz = parse_time_zone(name)?;
    relay.db.write(move |tx| set_time_zone_in(tx, tz)).await?;
    Ok(tz)
}

/// The property's time zone, read on a connection. A stored value that is
/// not a zone (only a hand-edited database has one) reads as the default,
/// with a warning, so reports keep working.
///
/// # Errors
/// Storage errors.
pub(crate) fn time_zone_in(conn: &Connection) -> StoreResult<Tz> {
    Ok(match records::meta(conn, TIME_ZONE_KEY)? {
        None => DEFAULT_TIME_ZONE,
        Some(name) => name.parse().unwrap_or_else(|_| {
            tracing::warn!(%name, "the stored time zone is unknown; using the default");
            DEFAULT_TIME_ZONE
        }),
    })
}

/// Writes the property's time zone in a transaction.
///
/// # Errors
/// Storage errors.
pub(crate) fn set_time_zone_in(tx: &Transaction<'_>, tz: Tz) -> StoreResult<()> {
    records::set_meta(tx, TIME_ZONE_KEY, tz.name())
}

// ------------------------------------------------------------ the calendar

/// The instant a local wall time names in `tz`: in an overlap (clocks set
/// back) the earlier one, in a gap (clocks set forward) the first instant
/// after the gap.
pub(crate) fn local_to_utc(wall: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    if let Some(t) = tz.from_local_datetime(&wall).earliest() {
        return t.to_utc();
    }
    (1..=24 * 60)
        .find_map(|m| {
            tz.from_local_datetime(&(wall + Duration::minutes(m)))
                .earliest()
        })
        .map_or_else(|| wall.and_utc(), |t| t.to_utc())
}

fn midnight(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    local_to_utc(day.and_time(NaiveTime::MIN), tz)
}

/// The local day `t` falls on.
pub(crate) fn local_date(t: DateTime<Utc>, tz: Tz) -> NaiveDate {
    t.with_timezone(&tz).date_naive()
}

/// Local midnight starting the day `t` falls on.
pub(crate) fn day_start(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    midnight(local_date(t, tz), tz)
}

/// Local midnight ending the day `t` falls on (the next day's start).
pub(crate) fn day_end(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let day = local_date(t, tz);
    midnight(day.checked_add_days(Days::new(1)).unwrap_or(day), tz)
}

/// Monday 00:00, local, starting the week `t` falls in.
pub(crate) fn week_start(t: DateTime<Utc>, tz: Tz) -> DateTime<Utc> {
    let day = local_date(t, tz);
    let back = u64::from(day.weekday().num_days_from_monday());
    midnight(day.checked_sub_days(Days::new(back)).unwrap_or(day), tz)
}

/// The local calendar year of `t` (the serial number's year).
pub(crate) fn year_of(t: DateTime<Utc>, tz: Tz) -> i32 {
    t.with_timezone(&tz).year()
}

/// A time from a query: RFC 3339 with its offset, or a wall time
/// (`2026-03-09T09:00`, seconds optional) or a date (`2026-03-09`, its
/// midnight) in the property's time zone `tz`.
pub(crate) fn parse_time(v: Option<&str>, what: &str, tz: Tz) -> AppResult<Option<DateTime<Utc>>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.with_timezone(&Utc));
            }
            let wall = ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|f| chrono::NaiveDateTime::parse_from_str(s, f).ok())
                .or_else(|| {
                    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
                        .ok()
                        .map(|d| d.and_time(chrono::NaiveTime::MIN))
                });
            wall.map(|w| local_to_utc(w, tz))
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "{what} must be RFC 3339, a local YYYY-MM-DDTHH:MM[:SS] or YYYY-MM-DD, not {s:?}"
                    ))
                })
        })
        .transpose()
}

/// `t` as the property's wall time, for people: `2026-03-02 09:05`.
pub(crate) fn wall_time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()
}

#[cfg(test)]
mod tests;
