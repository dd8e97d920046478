//! Ten million permits at one gate: resident memory, start time, decision time, store size.
//! (Being written for issue 22.)

fn main() {
    if std::env::args().any(|a| a == "--smoke") {
        eprintln!("gate_scale: not written yet");
    }
}
