//! Reading an uploaded file as text rows: CSV (UTF-8, BOM optional) or XLSX (its first sheet),
//! streamed cell by cell, only the columns the import reads kept, and every limit checked before
//! what it bounds is allocated (an XLSX's inflated size before calamine reads it).
//!
//! What it never does: check a row's values (see [`super::check()`]) or touch the database.

use std::io::Cursor;

use super::{FileError, Kind};
use crate::i18n::Msg;

/// The most data rows (after the header) one file may hold. The largest campuses have some
/// 70,000 students and staff; a bigger file is better split, and the cap bounds the rows kept
/// in memory while a file is checked.
pub const MAX_ROWS: usize = 100_000;
/// The most columns a row may have (column `IV`, the old Excel limit). HR exports carry a few
/// dozen; a cell further right is refused instead of widening every row to it.
pub const MAX_COLUMNS: usize = 256;
/// The longest cell, in bytes: a note is at most 500 characters (≤ 2,000 bytes in UTF-8), every
/// other field is shorter.
pub const MAX_CELL_BYTES: usize = 4 * 1024;
/// The most bytes an XLSX file may inflate to, all its parts together: a 100,000-row sheet
/// with its shared strings is some 40 MiB of XML. Checked against the sizes the file declares
/// before anything is inflated, then counted while inflating (declared sizes can lie).
pub const MAX_XLSX_INFLATED: u64 = 256 * 1024 * 1024;
/// The most bytes one part of an XLSX file may inflate to: calamine keeps the shared-string
/// table whole in memory (whatever the part is named), only the sheet itself is streamed.
pub const MAX_PART_INFLATED: u64 = 96 * 1024 * 1024;

/// The file's rows as text, with their line numbers: only the columns the import reads (the
/// header cells that name one of [`Kind::columns`]), so other columns of an HR export cost
/// nothing.
#[derive(Debug, Clone, Default)]
pub struct Sheet {
    pub header: Vec<String>,
    pub rows: Vec<(u64, Vec<String>)>,
}

/// Reads a CSV (UTF-8, BOM optional) or XLSX (recognised by its ZIP signature) file as `kind`,
/// streaming its cells: memory grows with the kept cells, never with the sheet's extent, and
/// every limit ([`MAX_ROWS`], [`MAX_COLUMNS`], [`MAX_CELL_BYTES`], [`MAX_XLSX_INFLATED`],
/// [`MAX_PART_INFLATED`]) is checked before what it bounds is allocated. CPU-bound: callers
/// on an async runtime run it with `spawn_blocking`.
pub fn read(kind: Kind, bytes: &[u8]) -> Result<Sheet, FileError> {
    let mut sheet = Collector::new(kind);
    if bytes.starts_with(b"PK\x03\x04") {
        read_xlsx(bytes, &mut sheet)?;
    } else {
        read_csv(bytes, &mut sheet)?;
    }
    sheet.finish()
}

/// Gathers rows as a reader streams them: the first non-blank row is the header and decides
/// which columns are kept.
struct Collector {
    kind: Kind,
    /// The header's kept cells and their column indices, once the header has been seen.
    header: Option<(Vec<String>, Vec<usize>)>,
    rows: Vec<(u64, Vec<String>)>,
}

impl Collector {
    fn new(kind: Kind) -> Collector {
        Collector {
            kind,
            header: None,
            rows: Vec::new(),
        }
    }

    /// One row of the file (`cells` at most [`MAX_COLUMNS`] long, each cell checked).
    fn row(&mut self, line: u64, cells: &[&str]) -> Result<(), FileError> {
        if cells.iter().all(|c| c.trim().is_empty()) {
            return Ok(());
        }
        let Some((_, keep)) = &self.header else {
            let mut names = Vec::new();
            let mut keep = Vec::new();
            for (i, h) in cells.iter().enumerate() {
                let h = h.trim().trim_start_matches('\u{feff}').trim();
                if self
                    .kind
                    .columns()
                    .iter()
                    .any(|(key, zh, _)| super::header_names(key, zh, h))
                {
                    names.push(h.to_string());
                    keep.push(i);
                }
            }
            self.header = Some((names, keep));
            return Ok(());
        };
        if self.rows.len() >= MAX_ROWS {
            return Err(FileError(Msg::new(
                format!(
                    "文件超过 {MAX_ROWS} 行数据（第 {line} 行起超出）：请拆分为几个文件分别导入"
                ),
                format!(
                    "The file has more than {MAX_ROWS} data rows (line {line} is over): split it into several files"
                ),
            )));
        }
        let kept = keep
            .iter()
            .map(|i| cells.get(*i).map_or(String::new(), |c| (*c).to_string()))
            .collect();
        self.rows.push((line, kept));
        Ok(())
    }

    fn finish(self) -> Result<Sheet, FileError> {
        let Some((header, _)) = self.header else {
            return Err(FileError(Msg::new(
                "文件是空的：第一行应为表头",
                "The file is empty: the first row must be the header",
            )));
        };
        Ok(Sheet {
            header,
            rows: self.rows,
        })
    }
}

/// A column's spreadsheet name: 0 → `A`, 25 → `Z`, 26 → `AA`.
fn column_name(mut index: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).unwrap_or_default()
}

fn too_many_columns(line: u64, column: usize) -> FileError {
    let cell = format!("{}{line}", column_name(column));
    let last = column_name(MAX_COLUMNS - 1);
    FileError(Msg::new(
        format!(
            "单元格 {cell} 超出导入读取的范围（最多 {MAX_COLUMNS} 列，到 {last} 列为止）：请删除多余的列"
        ),
        format!(
            "Cell {cell} is beyond the columns an import reads ({MAX_COLUMNS}, up to column {last}): delete the extra columns"
        ),
    ))
}

fn cell_too_long(line: u64, column: usize, len: usize) -> FileError {
    let cell = format!("{}{line}", column_name(column));
    FileError(Msg::new(
        format!("单元格 {cell} 内容过长（{len} 字节，上限 {MAX_CELL_BYTES} 字节）"),
        format!("Cell {cell} is too long ({len} bytes; the limit is {MAX_CELL_BYTES} bytes)"),
    ))
}

fn read_csv(bytes: &[u8], sheet: &mut Collector) -> Result<(), FileError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if let Err(e) = std::str::from_utf8(bytes) {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1;
        return Err(FileError(Msg::new(
            format!(
                "第 {line} 行不是 UTF-8 编码：请在 Excel 中另存为“CSV UTF-8”，或上传 XLSX 文件"
            ),
            format!(
                "line {line} is not UTF-8: save as \"CSV UTF-8\" in Excel, or upload the XLSX file"
            ),
        )));
    }
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    // One record buffer for the whole file: a record is at most a line of the upload.
    let mut record = csv::StringRecord::new();
    // The csv crate counts lines by LF only, so in a file with CR line endings (Excel for
    // Mac's "CSV (Macintosh)") every record was "line 1": a record starts at least one line
    // after the one before it (found by the bulk_import fuzz target).
    let mut last_line = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => return Ok(()),
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line()).max(last_line + 1);
                return Err(FileError(Msg::new(
                    format!("第 {line} 行无法按 CSV 读取：{e}"),
                    format!("line {line} cannot be read as CSV: {e}"),
                )));
            }
        }
        let line = record.position().map_or(0, |p| p.line()).max(last_line + 1);
        last_line = line;
        let mut cells = Vec::with_capacity(record.len().min(MAX_COLUMNS));
        for (i, cell) in record.iter().enumerate() {
            if cell.trim().is_empty() {
                cells.push("");
                continue;
            }
            if i >= MAX_COLUMNS {
                return Err(too_many_columns(line, i));
            }
            if cell.len() > MAX_CELL_BYTES {
                return Err(cell_too_long(line, i, cell.len()));
            }
            cells.push(cell);
        }
        sheet.row(line, &cells)?;
    }
}

fn xlsx_unreadable(e: impl std::fmt::Display) -> FileError {
    FileError(Msg::new(
        format!("无法读取 XLSX 文件：{e}"),
        format!("The XLSX file cannot be read: {e}"),
    ))
}

fn xlsx_too_big(part: &str, limit: u64) -> FileError {
    let mib = limit / (1024 * 1024);
    let (zh, en) = if part.is_empty() {
        ("全部内容".to_string(), "all its parts together".to_string())
    } else {
        (part.to_string(), part.to_string())
    };
    FileError(Msg::new(
        format!(
            "XLSX 文件解压后过大（{zh} 超过 {mib} MiB 上限）：请删除多余的工作表、图片和列，或另存为 CSV"
        ),
        format!(
            "The XLSX file is too large once inflated ({en} over the {mib} MiB limit): remove extra sheets, pictures and columns, or save it as CSV"
        ),
    ))
}

/// Refuses a ZIP that would inflate past [`MAX_XLSX_INFLATED`] (or one part past
/// [`MAX_PART_INFLATED`]): first by the sizes its central directory declares, without
/// inflating anything, then by inflating every part into a counter that stops at the limit
/// (a forged size must not let calamine inflate more). Nothing inflated is kept.
fn check_zip_sizes(bytes: &[u8]) -> Result<(), FileError> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(xlsx_unreadable)?;
    let mut declared: u64 = 0;
    for i in 0..zip.len() {
        let entry = zip.by_index_raw(i).map_err(xlsx_unreadable)?;
        let size = entry.size();
        if size > MAX_PART_INFLATED {
            let name = entry.name().map_err(xlsx_unreadable)?;
            return Err(xlsx_too_big(&name, MAX_PART_INFLATED));
        }
        declared = declared.saturating_add(size);
        if declared > MAX_XLSX_INFLATED {
            return Err(xlsx_too_big("", MAX_XLSX_INFLATED));
        }
    }
    let mut budget = MAX_XLSX_INFLATED;
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).map_err(xlsx_unreadable)?;
        let name = entry.name().map_err(xlsx_unreadable)?.into_owned();
        let limit = budget.min(MAX_PART_INFLATED);
        let inflated = std::io::copy(
            &mut std::io::Read::take(&mut entry, limit + 1),
            &mut std::io::sink(),
        )
        .map_err(xlsx_unreadable)?;
        if inflated > limit {
            return Err(if limit == MAX_PART_INFLATED {
                xlsx_too_big(&name, MAX_PART_INFLATED)
            } else {
                xlsx_too_big("", MAX_XLSX_INFLATED)
            });
        }
        budget -= inflated;
    }
    Ok(())
}

/// An XLSX cell as the text a user sees.
fn cell_text(cell: &calamine::DataRef<'_>) -> String {
    use calamine::DataRef;
    match cell {
        DataRef::Empty => String::new(),
        DataRef::String(s) => s.clone(),
        DataRef::SharedString(s) => (*s).to_string(),
        DataRef::Int(n) => n.to_string(),
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        DataRef::Float(f) => f.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) => d
            .as_datetime()
            .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
            .unwrap_or_default(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => s.clone(),
        DataRef::Error(e) => format!("#{e:?}"),
    }
}

/// Streams the first sheet's cells (calamine's cell reader, never its whole-grid `Range`):
/// blank cells are skipped wherever they are, a row is at most [`MAX_COLUMNS`] wide.
fn read_xlsx(bytes: &[u8], sheet: &mut Collector) -> Result<(), FileError> {
    use calamine::{Reader, Xlsx};
    check_zip_sizes(bytes)?;
    let mut book = Xlsx::new(Cursor::new(bytes)).map_err(xlsx_unreadable)?;
    let Some(first) = book.sheet_names().first().cloned() else {
        return Err(xlsx_unreadable("no sheet"));
    };
    let mut cells = book
        .worksheet_cells_reader(&first)
        .map_err(xlsx_unreadable)?;
    // The row being gathered: its index and its cells, dense up to the last non-blank one.
    let mut current: Option<(u32, Vec<String>)> = None;
    let flush = |row: Option<(u32, Vec<String>)>, sheet: &mut Collector| match row {
        Some((r, cells)) => {
            let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
            sheet.row(u64::from(r) + 1, &refs)
        }
        None => Ok(()),
    };
    while let Some(cell) = cells.next_cell().map_err(xlsx_unreadable)? {
        let text = cell_text(cell.get_value());
        if text.trim().is_empty() {
            continue;
        }
        let (row, col) = cell.get_position();
        let (line, col) = (u64::from(row) + 1, col as usize);
        if col >= MAX_COLUMNS {
            return Err(too_many_columns(line, col));
        }
        if text.len() > MAX_CELL_BYTES {
            return Err(cell_too_long(line, col, text.len()));
        }
        if current.as_ref().is_some_and(|(r, _)| *r != row) {
            flush(current.take(), sheet)?;
        }
        let (_, row_cells) = current.get_or_insert_with(|| (row, Vec::new()));
        if row_cells.len() <= col {
            row_cells.resize(col + 1, String::new());
        }
        row_cells[col] = text;
    }
    flush(current, sheet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_with_classic_mac_line_endings_numbers_each_row_on_its_own_line() {
        let file = "姓名,类别\r张三,staff\r李四,student\r";
        let sheet = read(Kind::Persons, file.as_bytes()).expect("a CR-only CSV reads");
        let lines: Vec<u64> = sheet.rows.iter().map(|(line, _)| *line).collect();
        assert_eq!(lines, [2, 3]);
    }
}
