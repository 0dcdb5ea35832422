//! One encoded line taken apart and put back together, for the few rows a
//! defect touches: CSV cells in the contract's dialect, or a JSON object.

use serde_json::{Map, Value};

use crate::dataset::{Dataset, FileFormat};

/// A CSV cell: its text, and whether it is quoted even though it need not be
/// (a quoted number).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub quoted: bool,
}

impl Cell {
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell {
            text: text.into(),
            quoted: false,
        }
    }
}

/// The row's ID: the first CSV cell (IDs are never quoted), or the first
/// JSON member's string value.
pub fn key(format: FileFormat, line: &[u8]) -> &[u8] {
    match format {
        FileFormat::Csv => line.split(|b| *b == b',').next().unwrap_or(line),
        FileFormat::JsonLines => {
            // `{"note_id":"E...-N01",...`: the value between the third and
            // fourth quote.
            let mut quotes = memchr::memchr_iter(b'"', line);
            match (quotes.nth(2), quotes.next()) {
                (Some(open), Some(close)) => &line[open + 1..close],
                _ => line,
            }
        }
    }
}

/// Splits a CSV line of the contract's dialect (RFC 4180 quoting) into cells.
pub fn split_csv(line: &[u8]) -> Vec<Cell> {
    let text = String::from_utf8_lossy(line);
    let mut cells = Vec::new();
    let mut cell = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if in_quotes => {
                if chars.peek() == Some(&'"') {
                    cell.push('"');
                    chars.next();
                } else {
                    in_quotes = false;
                }
            }
            '"' if cell.is_empty() => {
                in_quotes = true;
                quoted = true;
            }
            ',' if !in_quotes => {
                cells.push(Cell {
                    text: std::mem::take(&mut cell),
                    quoted: std::mem::take(&mut quoted),
                });
            }
            c => cell.push(c),
        }
    }
    cells.push(Cell { text: cell, quoted });
    cells
}

/// Joins cells into a CSV line (no line end), quoting as the contract's
/// writer does, and where a cell asks for it.
pub fn join_csv(cells: &[Cell], out: &mut Vec<u8>) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let needs = cell
            .text
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'));
        if needs || cell.quoted {
            out.push(b'"');
            out.extend_from_slice(cell.text.replace('"', "\"\"").as_bytes());
            out.push(b'"');
        } else {
            out.extend_from_slice(cell.text.as_bytes());
        }
    }
}

/// A row taken apart, its columns in schema order.
pub enum Line {
    Csv(Vec<Cell>),
    Json(Map<String, Value>),
}

impl Line {
    pub fn parse(dataset: Dataset, bytes: &[u8]) -> Option<Line> {
        match dataset.format() {
            FileFormat::Csv => {
                let cells = split_csv(bytes);
                (cells.len() == crate::schema::header(dataset).len()).then_some(Line::Csv(cells))
            }
            FileFormat::JsonLines => serde_json::from_slice(bytes).ok().map(Line::Json),
        }
    }

    /// The value of column `name` as text; `None` when empty or null.
    pub fn get(&self, dataset: Dataset, name: &str) -> Option<String> {
        match self {
            Line::Csv(cells) => {
                let i = crate::schema::header(dataset)
                    .iter()
                    .position(|c| *c == name)?;
                let text = &cells.get(i)?.text;
                (!text.is_empty()).then(|| text.clone())
            }
            Line::Json(object) => match object.get(name)? {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => Some(other.to_string()),
            },
        }
    }

    /// Sets column `name`: `None` empties it (CSV) or makes it null (JSON);
    /// `quoted` quotes a CSV cell that need not be (in JSON every value set
    /// here is a string, so a number set here is a quoted number).
    pub fn set(&mut self, dataset: Dataset, name: &str, value: Option<String>, quoted: bool) {
        match self {
            Line::Csv(cells) => {
                if let Some(i) = crate::schema::header(dataset)
                    .iter()
                    .position(|c| *c == name)
                    && let Some(cell) = cells.get_mut(i)
                {
                    *cell = Cell {
                        text: value.unwrap_or_default(),
                        quoted,
                    };
                }
            }
            Line::Json(object) => {
                if let Some(slot) = object.get_mut(name) {
                    *slot = value.map_or(Value::Null, Value::String);
                }
            }
        }
    }

    /// The line's bytes, without a line end.
    pub fn render(&self, out: &mut Vec<u8>) {
        match self {
            Line::Csv(cells) => join_csv(cells, out),
            // A map of strings and numbers always serializes.
            Line::Json(object) => {
                let _ = serde_json::to_writer(&mut *out, object);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_split_and_join_back_to_the_same_bytes() {
        for line in [
            "a,b,c",
            "E1,\"CO2, total\",,5",
            "\"say \"\"hi\"\"\",x",
            "",
            "P1, Smith ,x",
        ] {
            let cells = split_csv(line.as_bytes());
            let mut out = Vec::new();
            join_csv(&cells, &mut out);
            assert_eq!(String::from_utf8(out).unwrap(), line);
        }
        let cells = split_csv(b"x,\"88\"");
        assert_eq!(
            cells[1],
            Cell {
                text: "88".into(),
                quoted: true
            }
        );
    }

    #[test]
    fn the_key_is_the_first_value() {
        assert_eq!(
            key(FileFormat::Csv, b"E0000000001-V001,E1,P1"),
            b"E0000000001-V001"
        );
        assert_eq!(
            key(
                FileFormat::JsonLines,
                br#"{"note_id":"E0000000001-N01","x":1}"#
            ),
            b"E0000000001-N01"
        );
    }
}
