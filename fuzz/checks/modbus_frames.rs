//! Check: arbitrary bytes, in chunks the input chooses, into both Modbus RTU decoders (the
//! simulator's side of the lane I/O link). Neither may panic, the raw buffer must stay under one
//! maximum ADU, every byte must end up in a decoded frame or be counted as dropped, and every
//! decoded frame must encode back to exactly the bytes it was decoded from.
//!
//! Shared by the fuzz target of the same name and the corpus replay in `tests/gate/`.

use firmware_protocols::modbus::{MAX_ADU_LEN, RequestDecoder, ResponseDecoder};

/// Runs one input; panics on a finding.
pub(crate) fn check(data: &[u8]) {
    // The first byte picks the chunk size, so the fuzzer explores frames split across pushes.
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut requests = RequestDecoder::new();
    let mut responses = ResponseDecoder::new();
    let (mut request_bytes, mut response_bytes) = (0u64, 0u64);
    let mut drain = |requests: &mut RequestDecoder, responses: &mut ResponseDecoder| {
        while let Some((frame, raw)) = requests.next_frame_with_bytes() {
            let encoded = frame.encode().expect("a decoded request encodes");
            assert_eq!(encoded, raw, "a decoded request encodes to its own bytes");
            request_bytes += raw.len() as u64;
        }
        while let Some((frame, raw)) = responses.next_frame_with_bytes() {
            let encoded = frame.encode().expect("a decoded response encodes");
            assert_eq!(encoded, raw, "a decoded response encodes to its own bytes");
            response_bytes += raw.len() as u64;
        }
    };
    for piece in data.chunks(chunk) {
        requests.push(piece);
        responses.push(piece);
        assert!(requests.buffered() < MAX_ADU_LEN);
        assert!(responses.buffered() < MAX_ADU_LEN);
        drain(&mut requests, &mut responses);
    }
    requests.line_idle();
    responses.line_idle();
    drain(&mut requests, &mut responses);
    assert_eq!(requests.buffered() + responses.buffered(), 0);
    assert_eq!(request_bytes + requests.dropped_bytes(), data.len() as u64);
    assert_eq!(
        response_bytes + responses.dropped_bytes(),
        data.len() as u64
    );
}
