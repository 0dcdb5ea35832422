//! Numbers as text on the hot paths (file rows, note phrases): integers with
//! itoa, and decimals by integer arithmetic, never through `format!`'s float
//! formatting. Each writes into a [`Text`], a `Vec<u8>` or a `String`.

/// Where formatted text goes.
pub trait Text {
    fn put(&mut self, s: &str);
}

impl Text for Vec<u8> {
    fn put(&mut self, s: &str) {
        self.extend_from_slice(s.as_bytes());
    }
}

impl Text for String {
    fn put(&mut self, s: &str) {
        self.push_str(s);
    }
}

pub fn uint(out: &mut impl Text, value: u64) {
    out.put(itoa::Buffer::new().format(value));
}

/// A signed integer.
pub fn int(out: &mut impl Text, value: i64) {
    out.put(itoa::Buffer::new().format(value));
}

/// `number` zero-padded to at least `width` digits.
pub fn padded(out: &mut impl Text, number: u64, width: usize) {
    let mut buf = itoa::Buffer::new();
    let digits = buf.format(number);
    for _ in digits.len()..width {
        out.put("0");
    }
    out.put(digits);
}

/// `YYYY-MM-DD`, as chrono's `Display` writes a date of years 0 to 9999.
pub fn date(out: &mut impl Text, date: chrono::NaiveDate) {
    use chrono::Datelike;
    padded(out, date.year().max(0) as u64, 4);
    out.put("-");
    padded(out, u64::from(date.month()), 2);
    out.put("-");
    padded(out, u64::from(date.day()), 2);
}

/// Tenths as a one-decimal number: 372 is `37.2`.
pub fn tenths(out: &mut impl Text, tenths: u16) {
    uint(out, u64::from(tenths / 10));
    out.put(".");
    padded(out, u64::from(tenths % 10), 1);
}

/// `value` with exactly `decimals` digits after the point, the same text as
/// `format!("{:.*}", decimals, value)` for a value already rounded to that
/// many decimals (as every lab value is).
pub fn fixed(out: &mut impl Text, value: f64, decimals: usize) {
    let unit = 10u64.pow(decimals as u32);
    let scaled = (value * unit as f64).round() as i64;
    if scaled < 0 {
        out.put("-");
    }
    let scaled = scaled.unsigned_abs();
    uint(out, scaled / unit);
    if decimals > 0 {
        out.put(".");
        padded(out, scaled % unit, decimals);
    }
}

/// The shortest decimal that is exactly `value`, as `Display` writes it,
/// for short constants such as reference ranges (up to six decimals).
pub fn shortest(out: &mut impl Text, value: f64) {
    // Most are whole numbers (reference ranges such as 135..145).
    if value.fract() == 0.0 && value.abs() < 1e15 {
        if value < 0.0 {
            out.put("-");
        }
        return uint(out, value.abs() as u64);
    }
    let decimals = (1..=6)
        .find(|&d| {
            let scale = 10f64.powi(d);
            (value * scale).round() / scale == value
        })
        .unwrap_or(6) as usize;
    fixed(out, value, decimals);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(write: impl FnOnce(&mut String)) -> String {
        let mut s = String::new();
        write(&mut s);
        s
    }

    /// The same text as the standard formatting, for the values it is used on.
    #[test]
    fn numbers_read_as_the_standard_formatting_would_write_them() {
        for decimals in 0..=3usize {
            let scale = 10f64.powi(decimals as i32);
            for k in [0i64, 1, 7, 10, 99, 125, 1005, 4999, 123_456] {
                let v = k as f64 / scale;
                assert_eq!(text(|s| fixed(s, v, decimals)), format!("{v:.decimals$}"));
            }
        }
        for v in [135.0, 3.5, 0.6, 1.2, 17.5, 0.0, 14.0, 1000.0, 2.2] {
            assert_eq!(text(|s| shortest(s, v)), format!("{v}"));
        }
        assert_eq!(text(|s| tenths(s, 372)), "37.2");
        assert_eq!(text(|s| tenths(s, 380)), "38.0");
        assert_eq!(text(|s| padded(s, 42, 8)), "00000042");
        assert_eq!(text(|s| padded(s, 123_456_789, 3)), "123456789");
    }
}
