//! Small value conventions shared by the stages (spec ovn-ic-core.md §0).

/// `smap_get_bool` with default false: true only for `true` (case-insensitive).
pub fn smap_bool_default_false(v: Option<&str>) -> bool {
    v.is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

/// `smap_get_bool` with default true: false only for `false` (case-insensitive).
pub fn smap_bool_default_true(v: Option<&str>) -> bool {
    !v.is_some_and(|s| s.eq_ignore_ascii_case("false"))
}

/// `smap_get_int`: a complete base-10 integer fitting a signed 32-bit int, else `default`.
pub fn smap_int(v: Option<&str>, default: i64) -> i64 {
    match v.map(str::trim_start) {
        Some(s) if !s.is_empty() => match s.parse::<i32>() {
            Ok(i) => i64::from(i),
            Err(_) => default,
        },
        _ => default,
    }
}

/// Allocate a key in `[min, max]` not in `used`, scanning from `hint + 1` upward and wrapping
/// to `min` (OVN `ovn_allocate_tnlid`). Returns None when every key is taken.
pub fn allocate_key(
    used: &std::collections::BTreeSet<i64>,
    min: i64,
    max: i64,
    hint: i64,
) -> Option<i64> {
    if min > max {
        return None;
    }
    let span = max - min + 1;
    let start = if hint < min || hint >= max {
        min
    } else {
        hint + 1
    };
    (0..span)
        .map(|i| min + (start - min + i) % span)
        .find(|k| !used.contains(k))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn bools() {
        assert!(smap_bool_default_false(Some("TRUE")));
        assert!(!smap_bool_default_false(Some("yes")));
        assert!(!smap_bool_default_false(None));
        assert!(smap_bool_default_true(None));
        assert!(smap_bool_default_true(Some("no")));
        assert!(!smap_bool_default_true(Some("False")));
    }

    #[test]
    fn ints() {
        assert_eq!(smap_int(Some("1025"), 0), 1025);
        assert_eq!(smap_int(Some("12x"), 0), 0);
        assert_eq!(smap_int(Some("99999999999"), 0), 0);
        assert_eq!(smap_int(Some("-5"), 0), -5);
        assert_eq!(smap_int(None, 7), 7);
    }

    #[test]
    fn allocation() {
        let mut used = BTreeSet::new();
        assert_eq!(
            allocate_key(&used, 16711681, 16777215, 16711681),
            Some(16711682)
        );
        used.insert(16711682);
        assert_eq!(
            allocate_key(&used, 16711681, 16777215, 16711681),
            Some(16711683)
        );
        assert_eq!(allocate_key(&used, 1, 32767, 0), Some(1));
        let full: BTreeSet<i64> = (1..=3).collect();
        assert_eq!(allocate_key(&full, 1, 3, 0), None);
        assert_eq!(allocate_key(&BTreeSet::from([2]), 1, 3, 1), Some(3));
        assert_eq!(allocate_key(&BTreeSet::from([2, 3]), 1, 3, 1), Some(1));
    }
}
