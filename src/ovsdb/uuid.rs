//! OVSDB UUIDs: 128-bit values printed in canonical lowercase form.

use std::fmt;
use std::str::FromStr;

/// A 128-bit UUID. Ordered by its 128-bit value, as ovsdb-server orders uuids.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Uuid(pub u128);

/// Error for a string that is not a canonical UUID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a valid UUID")]
pub struct UuidParseError(pub String);

impl Uuid {
    /// The all-zero UUID (used as "no last transaction id").
    pub const ZERO: Uuid = Uuid(0);

    /// A random (version 4) UUID.
    pub fn random() -> Uuid {
        let mut v: u128 = rand::random();
        // Set version 4 and the RFC 4122 variant, as OVS's uuid_generate() does.
        v &= !(0xf000u128 << 64);
        v |= 0x4000u128 << 64;
        v &= !(0xc000u128 << 48);
        v |= 0x8000u128 << 48;
        Uuid(v)
    }

    pub fn is_zero(&self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            (v >> 96) as u32,
            (v >> 80) as u16,
            (v >> 64) as u16,
            (v >> 48) as u16,
            v & 0xffff_ffff_ffff
        )
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Uuid {
    type Err = UuidParseError;

    /// Accepts exactly the 36-character 8-4-4-4-12 form (either case), like OVS's uuid_from_string.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || UuidParseError(s.to_string());
        let b = s.as_bytes();
        if b.len() != 36 {
            return Err(err());
        }
        let mut v: u128 = 0;
        for (i, &c) in b.iter().enumerate() {
            if matches!(i, 8 | 13 | 18 | 23) {
                if c != b'-' {
                    return Err(err());
                }
                continue;
            }
            let d = (c as char).to_digit(16).ok_or_else(err)?;
            v = (v << 4) | d as u128;
        }
        Ok(Uuid(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let s = "550e8400-e29b-41d4-a716-446655440000";
        let u: Uuid = s.parse().unwrap();
        assert_eq!(u.to_string(), s);
        assert_eq!(
            "550E8400-E29B-41D4-A716-446655440000"
                .parse::<Uuid>()
                .unwrap(),
            u
        );
    }

    #[test]
    fn rejects_bad() {
        for s in [
            "",
            "550e8400e29b41d4a716446655440000",
            "550e8400-e29b-41d4-a716-44665544000g",
            "550e8400-e29b-41d4-a716_446655440000",
        ] {
            assert!(s.parse::<Uuid>().is_err(), "{s}");
        }
    }

    #[test]
    fn random_is_v4() {
        let u = Uuid::random();
        assert_eq!(u.to_string().as_bytes()[14], b'4');
        assert_ne!(u, Uuid::random());
    }
}
