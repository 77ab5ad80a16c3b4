//! Resource identifiers: 128-bit random values written as 32 lowercase hex characters, the
//! Lytics wire form. Each resource has its own type so an account id cannot be passed where
//! an auth id is expected. Ids are `Copy` and hash cheaply: they key the token cache.

use std::fmt;

macro_rules! id_type {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name([u8; 16]);

        impl $name {
            /// A fresh random id from the OS CSPRNG.
            pub fn generate() -> Self {
                Self(rand::random())
            }

            /// A fresh id that sorts by creation time: the first 48 bits are `now_ms` (big
            /// endian), the other 80 random (the layout of a UUIDv7 without its version
            /// bits). Tables clustered on the id (SQLite's `auths`) then take new rows at
            /// their end instead of splitting a page at random for each one. Ids are public
            /// handles, not secrets: what they reveal (when the record was created) every
            /// answer carrying them shows anyway.
            pub fn generate_at(now_ms: i64) -> Self {
                let mut bytes: [u8; 16] = rand::random();
                let ms = u64::try_from(now_ms).unwrap_or(0).to_be_bytes();
                bytes[..6].copy_from_slice(&ms[2..]);
                Self(bytes)
            }

            /// Parses exactly 32 lowercase hex characters; anything else is `None`.
            pub fn parse(s: &str) -> Option<Self> {
                parse_hex32(s.as_bytes()).map(Self)
            }

            /// Parses 32 lowercase hex bytes (no allocation; used on the token hot path).
            pub fn parse_bytes(s: &[u8]) -> Option<Self> {
                parse_hex32(s).map(Self)
            }

            /// The raw 16 bytes.
            pub fn as_bytes(&self) -> &[u8; 16] {
                &self.0
            }

            /// Builds an id from raw bytes.
            pub const fn from_bytes(b: [u8; 16]) -> Self {
                Self(b)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; 32];
                // hex::encode_to_slice only fails on a wrong output length, which is fixed here.
                if hex::encode_to_slice(self.0, &mut buf).is_err() {
                    return Err(fmt::Error);
                }
                f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl std::str::FromStr for $name {
            type Err = crate::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s).ok_or(crate::Error::NotFound)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                // Straight to a str: `collect_str` would go through `fmt` (ids are on the
                // path of every answer).
                let mut buf = [0u8; 32];
                match hex::encode_to_slice(self.0, &mut buf) {
                    Ok(()) => s.serialize_str(std::str::from_utf8(&buf).unwrap_or_default()),
                    Err(_) => s.collect_str(self),
                }
            }
        }
    };
}

/// 32 lowercase hex digits to 16 bytes, validated and decoded in one pass (every request
/// parses one or two ids: the token's and the path's).
fn parse_hex32(s: &[u8]) -> Option<[u8; 16]> {
    if s.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        *byte = (lower_hex_digit(*hi)? << 4) | lower_hex_digit(*lo)?;
    }
    Some(out)
}

const fn lower_hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

id_type!(
    /// An account (tenant).
    AccountId
);
id_type!(
    /// An auth: an API token or a stored integration credential.
    AuthId
);
id_type!(
    /// A user of an account.
    UserId
);
id_type!(
    /// A provider (built-in or custom).
    ProviderId
);
id_type!(
    /// A work (import/export job).
    WorkId
);
id_type!(
    /// A named worker credential (operator-level; not tenant data).
    WorkerCredentialId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_hex() {
        let id = AuthId::generate();
        let s = id.to_string();
        assert_eq!(s.len(), 32);
        assert_eq!(AuthId::parse(&s), Some(id));
    }

    #[test]
    fn ids_made_later_sort_later() {
        let a = AuthId::generate_at(1_795_997_324_004);
        let b = AuthId::generate_at(1_795_997_324_005);
        assert!(a < b && a.to_string() < b.to_string());
        assert!(a.to_string().starts_with("01a229c852e4")); // the millisecond count in hex
        assert_ne!(AuthId::generate_at(5), AuthId::generate_at(5));
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            "abc",
            "1B53B88A06B418B07D601B6F57B8EB40",
            "1b53b88a06b418b07d601b6f57b8eb4g",
            "1b53b88a06b418b07d601b6f57b8eb400",
        ] {
            assert_eq!(AuthId::parse(bad), None, "{bad}");
        }
        assert!(AuthId::parse("1b53b88a06b418b07d601b6f57b8eb40").is_some());
        // Every digit decodes to its own value.
        let all = "0123456789abcdeffedcba9876543210";
        assert_eq!(
            AuthId::parse(all).map(|id| id.to_string()).as_deref(),
            Some(all)
        );
    }
}
