//! Fuzz target: arbitrary bytes, in chunks the input chooses, into both Modbus RTU decoders.
//! Neither may panic, the raw buffer must stay under one maximum ADU, every byte must end up in
//! a decoded frame or be counted as dropped, and every decoded frame must encode again.

#![no_main]

use firmware_protocols::modbus::{MAX_ADU_LEN, RequestDecoder, ResponseDecoder};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The first byte picks the chunk size, so the fuzzer explores frames split across pushes.
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut requests = RequestDecoder::new();
    let mut responses = ResponseDecoder::new();
    let (mut request_bytes, mut response_bytes) = (0u64, 0u64);
    let mut drain = |requests: &mut RequestDecoder, responses: &mut ResponseDecoder| {
        while let Some(frame) = requests.next_frame() {
            request_bytes += frame.encode().expect("a decoded request encodes").len() as u64;
        }
        while let Some(frame) = responses.next_frame() {
            response_bytes += frame.encode().expect("a decoded response encodes").len() as u64;
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
    assert_eq!(request_bytes + requests.dropped_bytes(), data.len() as u64);
    assert_eq!(
        response_bytes + responses.dropped_bytes(),
        data.len() as u64
    );
});
