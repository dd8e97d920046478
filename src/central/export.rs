//! Tables as files people open in a spreadsheet: CSV (UTF-8 with a byte-order mark, so Excel
//! shows Chinese text correctly, and a header row) and XLSX (one sheet, bold header row, numbers
//! as numbers). Statistics and bulk exports both render through [`Table`].
//!
//! What it never does: query the database or decide what a role may see (callers mask before
//! they build the table).

use crate::central::api::error::{Lang, Msg};

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

impl Cell {
    fn text(&self) -> String {
        match self {
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
            w.write_record(row.iter().map(Cell::text))?;
        }
        w.flush().map_err(csv::Error::from)?;
        w.into_inner()
            .map_err(|e| ExportError::Csv(csv::Error::from(e.into_error())))
    }

    /// The table as an XLSX workbook with one sheet.
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
