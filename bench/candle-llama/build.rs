// Records the resolved candle-core version (from Cargo.lock) so the JSON
// output can report it without hard-coding.
fn main() {
    println!("cargo:rerun-if-changed=Cargo.lock");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut version = String::from("unknown");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"candle-core\"" {
            if let Some(v) = lines.next() {
                if let Some(rest) = v.trim().strip_prefix("version = \"") {
                    version = rest.trim_end_matches('"').to_string();
                }
            }
            break;
        }
    }
    println!("cargo:rustc-env=CANDLE_CORE_VERSION={version}");
}
