//! One field of a table: missing, a number, or text.

/// The values that mean "missing", compared without case after trimming spaces: the
/// empty field, `NA`, `N/A`, `NaN`, `null`, `None` and `?`.
pub const MISSING_TOKENS: [&str; 7] = ["", "NA", "N/A", "NaN", "null", "None", "?"];

/// A field as a table reads it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Cell {
    /// One of [`MISSING_TOKENS`].
    Missing,
    /// A number (possibly infinite: a numeric column refuses it).
    Number(f64),
    /// Anything else.
    Text,
}

/// `field` without leading and trailing ASCII spaces and tabs (and a `\r` left by a
/// `\r\n` line end).
pub(super) fn trim(field: &[u8]) -> &[u8] {
    let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r');
    // Most fields have nothing to trim.
    match (field.first(), field.last()) {
        (Some(first), Some(last)) if !is_space(first) && !is_space(last) => return field,
        _ => {}
    }
    let start = field
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(field.len());
    let end = field
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |end| end + 1);
    &field[start..end]
}

/// Whether `field` (untrimmed) is one of [`MISSING_TOKENS`].
pub fn is_missing_token(field: &[u8]) -> bool {
    let field = trim(field);
    field.len() <= 4
        && MISSING_TOKENS
            .iter()
            .any(|token| token.as_bytes().eq_ignore_ascii_case(field))
}

/// What `field` holds.
pub(super) fn classify(field: &[u8]) -> Cell {
    let field = trim(field);
    // Only a sign, a digit or a point can start a number (or `inf`, which is kept as a
    // number so that a numeric column can refuse it by name); no missing token does.
    if let Some(b'0'..=b'9' | b'+' | b'-' | b'.' | b'i' | b'I') = field.first() {
        if let Ok(value) = fast_float2::parse::<f64, _>(field) {
            if !value.is_nan() {
                return Cell::Number(value);
            }
        }
    }
    if is_missing_token(field) {
        Cell::Missing
    } else {
        Cell::Text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_missing_numbers_or_text() {
        for missing in [
            "", " ", "NA", "na", "N/A", "NaN", "nan", "null", "NULL", "None", "?", " ? ",
        ] {
            assert_eq!(classify(missing.as_bytes()), Cell::Missing, "{missing:?}");
        }
        for (text, value) in [
            ("1", 1.0),
            (" -2.5 ", -2.5),
            ("1e3", 1000.0),
            (".5", 0.5),
            ("+7\r", 7.0),
        ] {
            assert_eq!(classify(text.as_bytes()), Cell::Number(value), "{text:?}");
        }
        assert_eq!(classify(b"inf"), Cell::Number(f64::INFINITY));
        for text in ["setosa", "1,5", "12a", "-", "Nan!", "0x10", "\u{e9}t\u{e9}"] {
            assert_eq!(classify(text.as_bytes()), Cell::Text, "{text:?}");
        }
    }
}
