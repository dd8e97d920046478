//! Check: the centre's reader of uploaded import files (`central::bulk::read`: CSV in UTF-8,
//! or XLSX recognised by its ZIP signature) on arbitrary bytes. It never panics and never
//! takes more than the import's limits allow: it returns the rows or a file error.
//!
//! Shared by the fuzz target of the same name and the corpus replay in `tests/gate/`.

use gatehouse::central::bulk;

/// Runs one input; panics on a finding.
pub(crate) fn check(data: &[u8]) {
    if let Ok(sheet) = bulk::read(data) {
        // Every row keeps its line number, in order, after the header.
        let mut last = 0;
        for (line, _) in &sheet.rows {
            assert!(*line > last, "rows keep their lines in order");
            last = *line;
        }
    }
}
