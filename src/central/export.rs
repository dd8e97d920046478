//! Tables as files people open in a spreadsheet: CSV (UTF-8 with a byte-order mark, so Excel
//! shows Chinese text correctly, and a header row) and XLSX (one sheet, bold header row, numbers
//! as numbers). Statistics and bulk exports both render through [`Table`]. CSV text cells that
//! a spreadsheet would run as a formula are neutralised with a leading `'`; XLSX cells are
//! typed strings and stay as they are.
//!
//! What it never does: query the database or decide what a role may see (callers mask before
//! they build the table).

use crate::i18n::{Lang, Msg};

/// A cell: text, or a whole number (written as a number in XLSX).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    Int(i64),
}

impl From<String> for Cell {
    fn from(v: String) -> Cell {
        Cell::Text(v)
    }
}

impl From<&str> for Cell {
    fn from(v: &str) -> Cell {
        Cell::Text(v.to_string())
    }
}

impl From<i64> for Cell {
    fn from(v: i64) -> Cell {
        Cell::Int(v)
    }
}

impl From<Option<String>> for Cell {
    fn from(v: Option<String>) -> Cell {
        Cell::Text(v.unwrap_or_default())
    }
}

impl From<Option<i64>> for Cell {
    fn from(v: Option<i64>) -> Cell {
        match v {
            Some(n) => Cell::Int(n),
            None => Cell::Text(String::new()),
        }
    }
}

/// The first characters that make a spreadsheet read a CSV cell as a formula (or, for TAB and
/// CR, hide one behind whitespace): `= + - @`, TAB and CR (OWASP "CSV injection").
const FORMULA_START: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

impl Cell {
    /// The cell as CSV text. A text cell that a spreadsheet could take for a formula gets a
    /// leading `'` (the spreadsheets' own "this is text" mark, shown by none of them): a
    /// name like `=HYPERLINK(…)` typed into a form must not run when the office opens the
    /// export. Numbers are written as they are (a negative number is not a formula).
    fn csv_text(&self) -> String {
        match self {
            Cell::Text(t) if t.starts_with(FORMULA_START) => format!("'{t}"),
            Cell::Text(t) => t.clone(),
            Cell::Int(n) => n.to_string(),
        }
    }
}

/// A titled table with headers in both languages.
#[derive(Debug, Clone)]
pub struct Table {
    /// The sheet name and the file name's stem (ASCII, e.g. `flows`).
    pub name: &'static str,
    pub columns: Vec<Msg>,
    pub rows: Vec<Vec<Cell>>,
}

/// What an export could not do.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("xlsx: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
}

/// The UTF-8 byte-order mark Excel needs to read a CSV file as UTF-8.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Table {
    /// The table as CSV: a BOM, the header row in `lang`, then the rows.
    pub fn to_csv(&self, lang: Lang) -> Result<Vec<u8>, ExportError> {
        let mut w = csv::Writer::from_writer(BOM.to_vec());
        w.write_record(self.columns.iter().map(|c| c.get(lang)))?;
        for row in &self.rows {
            w.write_record(row.iter().map(Cell::csv_text))?;
        }
        w.flush().map_err(csv::Error::from)?;
        w.into_inner()
            .map_err(|e| ExportError::Csv(csv::Error::from(e.into_error())))
    }

    /// The table as an XLSX workbook with one sheet. Text cells are written as strings, never
    /// as formulas, so they need no neutralising: `=1+1` shows as `=1+1`.
    pub fn to_xlsx(&self, lang: Lang) -> Result<Vec<u8>, ExportError> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name(self.name)?;
        let bold = rust_xlsxwriter::Format::new().set_bold();
        for (c, col) in self.columns.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, col.get(lang), &bold)?;
            sheet.set_column_width(c as u16, 16)?;
        }
        for (r, row) in self.rows.iter().enumerate() {
            let r = r as u32 + 1;
            for (c, cell) in row.iter().enumerate() {
                match cell {
                    Cell::Text(t) => sheet.write_string(r, c as u16, t)?,
                    Cell::Int(n) => sheet.write_number(r, c as u16, *n as f64)?,
                };
            }
        }
        Ok(book.save_to_buffer()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(cells: &[&str]) -> Table {
        Table {
            name: "t",
            columns: vec![Msg::new("值", "value"), Msg::new("数", "number")],
            rows: cells
                .iter()
                .map(|c| vec![Cell::from(*c), Cell::Int(-3)])
                .collect(),
        }
    }

    const HOSTILE: [&str; 6] = [
        "=HYPERLINK(\"http://evil.example\",\"x\")",
        "+1+1",
        "-2+3",
        "@SUM(A1)",
        "\t=1+1",
        "\r=1+1",
    ];

    #[test]
    fn csv_cells_a_spreadsheet_would_run_as_formulas_start_with_a_quote() {
        let csv = table(&HOSTILE).to_csv(Lang::En).unwrap();
        let mut reader = csv::Reader::from_reader(&csv[BOM.len()..]);
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), HOSTILE.len());
        for (row, hostile) in rows.iter().zip(HOSTILE) {
            assert_eq!(row[0], format!("'{hostile}"));
            // A number stays a number.
            assert_eq!(&row[1], "-3");
        }
        let plain = table(&["京A12345", "010-62345678", "张三 = 李四", ""])
            .to_csv(Lang::En)
            .unwrap();
        let text = String::from_utf8(plain[BOM.len()..].to_vec()).unwrap();
        assert_eq!(
            text,
            "value,number\n京A12345,-3\n010-62345678,-3\n张三 = 李四,-3\n,-3\n"
        );
    }

    #[test]
    fn xlsx_cells_stay_text_even_when_they_look_like_formulas() {
        use calamine::{Data, Reader, Xlsx};
        let bytes = table(&HOSTILE).to_xlsx(Lang::En).unwrap();
        let mut book = Xlsx::new(std::io::Cursor::new(bytes)).unwrap();
        let range = book.worksheet_range("t").unwrap();
        for (r, hostile) in HOSTILE.iter().enumerate() {
            assert_eq!(
                range.get((r + 1, 0)),
                Some(&Data::String(hostile.to_string()))
            );
            assert_eq!(range.get((r + 1, 1)), Some(&Data::Float(-3.0)));
        }
        let formulas = book.worksheet_formula("t").unwrap();
        assert!(
            formulas.used_cells().all(|(_, _, f)| f.is_empty()),
            "no cell is a formula"
        );
    }
}
