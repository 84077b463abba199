//! urunit: PID 1 inside Linux guests started by urunc (filled in by its own issue).

fn main() {
    eprintln!("urunit: not implemented yet");
    std::process::exit(1);
}
