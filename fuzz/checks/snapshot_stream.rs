//! Check: the gate's reader of the centre's snapshot stream (NDJSON, `sync::client::
//! SnapshotReader`) on arbitrary bytes cut into chunks the input chooses. It never panics; it
//! reads the same stream the same way however the bytes are cut (the same rows, the same
//! verdict); and a stream it accepts whole is then applied to a real gate store and index
//! (`Store::replace_all`, which validates every row), which may refuse it but never panics.
//!
//! Shared by the fuzz target of the same name and the corpus replay in `tests/gate/`.

use std::sync::OnceLock;

use gatehouse::gate::store::{SnapshotPart, Store};
use gatehouse::sync::client::SnapshotReader;

/// Reads `stream` in chunks of `size` bytes: the parts read and whether it was accepted.
fn read(stream: &[u8], size: usize) -> (Vec<SnapshotPart>, Option<u64>, bool) {
    let mut reader = SnapshotReader::default();
    let mut parts = Vec::new();
    for chunk in stream.chunks(size) {
        if reader.chunk(chunk, &mut parts).is_err() {
            return (parts, None, false);
        }
    }
    match reader.finish() {
        Ok(done) => (parts, Some(done.version), true),
        Err(_) => (parts, None, false),
    }
}

/// Runs one input; panics on a finding.
pub(crate) fn check(data: &[u8]) {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let whole = read(stream, stream.len().max(1));
    let chunked = read(stream, usize::from(cut % 64) + 1);
    assert_eq!(
        whole, chunked,
        "the same stream reads the same in any chunks"
    );
    let (parts, Some(version), true) = whole else {
        return;
    };
    apply(parts, version);
}

/// Applies an accepted snapshot to a scratch store, as a gate does after a download.
fn apply(mut parts: Vec<SnapshotPart>, version: u64) {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime builds")
    });
    parts.push(SnapshotPart::End {
        data_version: version,
    });
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("a scratch directory");
        let store = Store::open(&dir.path().join("store.db"))
            .await
            .expect("a fresh store opens");
        let (tx, rx) = tokio::sync::mpsc::channel(parts.len());
        for part in parts {
            tx.send(part)
                .await
                .expect("the channel has room for every part");
        }
        drop(tx);
        // Refusing a row (a bad plate, an unknown permit) is a fine answer; a panic is not.
        let _ = store.replace_all(rx, |s| s.build()).await;
    });
}
