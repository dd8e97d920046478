//! Check: the centre's reader of uploaded import files (`central::bulk::read`: CSV in UTF-8,
//! or XLSX recognised by its ZIP signature) on arbitrary bytes, as each kind of import (the
//! first byte picks persons, vehicles or permits). It never panics and keeps to the import's
//! limits: it returns the rows or a file error, and what it returns is within them.
//!
//! Shared by the fuzz target of the same name and the corpus replay in `tests/gate/`.

use gatehouse::central::bulk::{self, Kind, MAX_CELL_BYTES, MAX_COLUMNS, MAX_ROWS};

/// Runs one input; panics on a finding.
pub(crate) fn check(data: &[u8]) {
    let Some((&pick, file)) = data.split_first() else {
        return;
    };
    let kind = [Kind::Persons, Kind::Vehicles, Kind::Permits][usize::from(pick % 3)];
    let Ok(sheet) = bulk::read(kind, file) else {
        return;
    };
    assert!(sheet.rows.len() <= MAX_ROWS, "{} rows", sheet.rows.len());
    assert!(sheet.header.len() <= MAX_COLUMNS);
    // Every row keeps its line number, in order, after the header.
    let mut last = 0;
    for (line, cells) in &sheet.rows {
        assert!(*line > last, "rows keep their lines in order");
        last = *line;
        assert!(cells.len() <= MAX_COLUMNS);
        assert!(cells.iter().all(|c| c.len() <= MAX_CELL_BYTES));
    }
}
