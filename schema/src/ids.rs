//! Identifiers that cross a boundary, each a newtype with a validating constructor.
//!
//! Document ids are automerge-repo's: the base58check encoding (SHA-256d checksum)
//! of 16 random bytes, written in URLs as `automerge:<id>`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The string is empty.
    #[error("{kind} is empty")]
    Empty {
        /// Which identifier.
        kind: &'static str,
    },
    /// The string is longer than the identifier allows.
    #[error("{kind} is longer than {max} bytes")]
    TooLong {
        /// Which identifier.
        kind: &'static str,
        /// The longest allowed.
        max: usize,
    },
    /// The string has a character the identifier does not allow.
    #[error("{kind} has a character that is not allowed: {found:?}")]
    BadChar {
        /// Which identifier.
        kind: &'static str,
        /// The first offending character.
        found: char,
    },
    /// A document id that is not base58check of 16 bytes.
    #[error("not an automerge-repo document id: {0}")]
    NotDocId(String),
}

/// An automerge-repo document id: 16 bytes, shown as base58check.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocId([u8; 16]);

impl DocId {
    /// A fresh random id, as automerge-repo makes them.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// The id of these 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(bytes)
    }

    /// The 16 bytes of the id.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The `automerge:<id>` URL of this document.
    pub fn url(&self) -> DocUrl {
        DocUrl(*self)
    }
}

impl fmt::Display for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.0).with_check().into_string())
    }
}

impl fmt::Debug for DocId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocId({self})")
    }
}

impl FromStr for DocId {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // 16 bytes + 4 checksum bytes is at most 28 base58 characters.
        if s.is_empty() || s.len() > 32 {
            return Err(IdError::NotDocId(truncate(s)));
        }
        let bytes = bs58::decode(s)
            .with_check(None)
            .into_vec()
            .map_err(|_| IdError::NotDocId(truncate(s)))?;
        let bytes: [u8; 16] = bytes
            .try_into()
            .map_err(|_| IdError::NotDocId(truncate(s)))?;
        Ok(Self(bytes))
    }
}

impl Serialize for DocId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `automerge:<id>`: how documents refer to each other.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DocUrl(DocId);

impl DocUrl {
    /// The document this URL names.
    pub fn id(&self) -> DocId {
        self.0
    }
}

impl fmt::Display for DocUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "automerge:{}", self.0)
    }
}

impl fmt::Debug for DocUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocUrl({self})")
    }
}

impl FromStr for DocUrl {
    type Err = IdError;

    /// Accepts `automerge:<id>`; a trailing `#heads` part, which automerge-repo
    /// URLs may carry, is not a document reference and is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let id = s
            .strip_prefix("automerge:")
            .ok_or_else(|| IdError::NotDocId(truncate(s)))?;
        Ok(Self(id.parse()?))
    }
}

impl Serialize for DocUrl {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DocUrl {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(40).collect()
}

/// Checks a token-like identifier: 1..=max bytes of ASCII letters, digits, `-`, `_`, `.`.
fn check_token(kind: &'static str, s: &str, max: usize) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { kind });
    }
    if s.len() > max {
        return Err(IdError::TooLong { kind, max });
    }
    if let Some(found) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(IdError::BadChar { kind, found });
    }
    Ok(())
}

macro_rules! token_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps the identifier.
            ///
            /// # Errors
            /// When it is empty, too long or has a character other than
            /// ASCII letters, digits, `-`, `_` and `.`.
            pub fn new(s: impl Into<String>) -> Result<Self, IdError> {
                let s = s.into();
                check_token($kind, &s, $max)?;
                Ok(Self(s))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

token_id!(
    /// A staff member's user name (`eng1`, `frontdesk`).
    UserId,
    "user id",
    64
);
token_id!(
    /// An enrolled device (an engineer's phone, the relay's dashboard actor).
    DeviceId,
    "device id",
    64
);
token_id!(
    /// An event's command id: generated on the device (a UUID), so replays are idempotent.
    EventId,
    "event id",
    64
);

impl EventId {
    /// A fresh random UUID (version 4, RFC 9562 variant) as an event id.
    pub fn random() -> Self {
        let mut b: [u8; 16] = rand::random();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
        Self(format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_ids_round_trip_through_base58check() {
        let id = DocId::from_bytes([7; 16]);
        let s = id.to_string();
        assert_eq!(s.parse::<DocId>(), Ok(id));
        let url: DocUrl = format!("automerge:{s}").parse().unwrap();
        assert_eq!(url.id(), id);
        assert_eq!(url.to_string(), format!("automerge:{s}"));
    }

    #[test]
    fn a_doc_id_with_a_bad_checksum_is_refused() {
        let s = DocId::from_bytes([1; 16]).to_string();
        let mut chars: Vec<char> = s.chars().collect();
        chars[3] = if chars[3] == 'a' { 'b' } else { 'a' };
        let forged: String = chars.into_iter().collect();
        assert!(forged.parse::<DocId>().is_err());
        assert!("automerge:".parse::<DocUrl>().is_err());
        assert!("2j9PSRTd9Mm6x6Qnbe8iE3ALCYYW".parse::<DocUrl>().is_err());
    }

    #[test]
    fn token_ids_are_checked() {
        assert!(UserId::new("eng1").is_ok());
        assert_eq!(UserId::new(""), Err(IdError::Empty { kind: "user id" }));
        assert!(matches!(
            UserId::new("a b"),
            Err(IdError::BadChar { found: ' ', .. })
        ));
        assert!(matches!(
            DeviceId::new("x".repeat(65)),
            Err(IdError::TooLong { .. })
        ));
        let e = EventId::random();
        assert_eq!(e.as_str().len(), 36);
        assert_eq!(&e.as_str()[14..15], "4", "version 4");
        assert!(
            matches!(&e.as_str()[19..20], "8" | "9" | "a" | "b"),
            "RFC 9562 variant"
        );
        assert!(EventId::new(e.as_str()).is_ok());
    }
}
