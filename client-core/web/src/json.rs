//! The JSON the worker receives, built from the device library's answers.
//! Plain Rust (no wasm-bindgen), so it is tested natively.

use chrono::{DateTime, Utc};
use client_core::schema::ticket::{Kind, Urgency};
use client_core::schema::{Action, DocUrl, EventData};
use client_core::{Device, DeviceError, Report};
use serde::Deserialize;
use serde_json::{Value, json};

/// What an action, note or report answers: the id it made, or the refusal.
///
/// # Errors
/// Only failures that are not refusals (store, unknown ticket).
pub fn outcome(result: Result<String, DeviceError>) -> Result<Value, DeviceError> {
    match result {
        Ok(id) => Ok(json!({"ok": id})),
        Err(DeviceError::Refused(r)) => Ok(json!({"refused": r})),
        Err(e) => Err(e),
    }
}

/// The ticket screen: the view (official and pending), the offers, the
/// household's public file and what the store knows of each photo.
///
/// # Errors
/// When the ticket is unknown or unreadable, or the store fails.
pub fn ticket_screen(device: &Device, ticket: &str) -> Result<Value, DeviceError> {
    let view = device.show(ticket)?;
    let offers = device.offers(ticket)?;
    let household = match view.ticket.header.household {
        Some(url) => device.household(url)?,
        None => None,
    };
    let mut photos = serde_json::Map::new();
    for a in &view.ticket.attachments {
        let local = device.photo(&a.sha256)?;
        photos.insert(
            a.sha256.clone(),
            json!({"local": local.is_some(), "uploaded": local.as_ref().is_none_or(|b| b.complete)}),
        );
    }
    let flags: Vec<&str> = view
        .official
        .flags(device.now())
        .into_iter()
        .map(|f| f.as_str())
        .collect();
    Ok(json!({
        "view": view,
        "offers": offers,
        "household": household,
        "photos": photos,
        "flags": flags,
    }))
}

/// A report made on site, as the form sends it.
#[derive(Debug, Deserialize)]
pub struct ReportForm {
    /// `repair`, `complaint`, … (patrollers report matters, engineers orders).
    pub kind: Kind,
    /// The household file, if the find is in one.
    #[serde(default)]
    pub household: Option<DocUrl>,
    /// Where.
    pub location: String,
    /// One line.
    pub title: String,
    /// What was found.
    #[serde(default)]
    pub description: String,
    /// Repair category.
    #[serde(default)]
    pub category: Option<String>,
    /// Urgency (normal when not given).
    #[serde(default)]
    pub urgency: Option<Urgency>,
    /// Photos already stored (SHA-256), attached in the report's own change.
    #[serde(default)]
    pub photos: Vec<String>,
}

/// Records an on-site report with its photos. Answers the new ticket's URL.
///
/// # Errors
/// Refusals come back as `{"refused": …}`; store failures as errors.
pub fn report(device: &Device, form: ReportForm) -> Result<Value, DeviceError> {
    let r = Report {
        kind: form.kind,
        household: form.household,
        location: form.location,
        title: form.title,
        description: form.description,
        category: form.category.filter(|c| !c.trim().is_empty()),
        urgency: form.urgency.unwrap_or(Urgency::Normal),
    };
    outcome(
        device
            .report_with_photos(&r, &form.photos)
            .map(|(url, _)| url.to_string()),
    )
}

/// Parses an action name and its data.
///
/// # Errors
/// A refusal (`unknown_action`, `invalid_data`) when they cannot be read.
pub fn action(name: &str, data: &str) -> Result<(Action, EventData), DeviceError> {
    let action: Action = name.parse().map_err(|_| {
        DeviceError::Refused(client_core::Refused {
            rule: "unknown_action".into(),
            reason: format!("{name:?} is not a known action"),
        })
    })?;
    let data: EventData = serde_json::from_str(data).map_err(|e| {
        DeviceError::Refused(client_core::Refused {
            rule: "invalid_data".into(),
            reason: format!("the form's data could not be read: {e}"),
        })
    })?;
    Ok((action, data))
}

/// The last successful sync's end, from the device's own log.
///
/// # Errors
/// When the store fails.
pub fn last_sync(device: &Device) -> Result<Option<String>, DeviceError> {
    Ok(device
        .sync_log(50)?
        .into_iter()
        .find(|r| r.ok)
        .map(|r| r.ended))
}

/// Milliseconds since the Unix epoch as a time (the worker's `Date.now()`).
pub fn from_millis(ms: f64) -> DateTime<Utc> {
    #[allow(
        clippy::cast_possible_truncation,
        reason = "Date.now() is a whole number of milliseconds well inside i64"
    )]
    let ms = ms as i64;
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

#[cfg(test)]
mod tests;
