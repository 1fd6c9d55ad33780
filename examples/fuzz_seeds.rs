//! Writes a valid example of every fuzz target's input (from a whole
//! in-memory ceremony, `dvkg::fuzzing::seeds`) into `fuzz/corpus/<target>/`,
//! plus the standards' keystore and deposit vectors; `scripts/fuzz.sh` runs
//! it before fuzzing.

use std::path::Path;

fn main() -> std::io::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (target, name, bytes) in dvkg::fuzzing::seeds() {
        let dir = root.join("corpus").join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
    }
    // The standards' vectors, taken out of their wrappers.
    let vectors = root.join("../ceremony-specs/vectors");
    let read = |name: &str| -> std::io::Result<serde_json::Value> {
        let text = std::fs::read_to_string(vectors.join(name))?;
        serde_json::from_str(&text).map_err(std::io::Error::other)
    };
    let eip2335 = read("eip2335.json")?;
    let dir = root.join("corpus/keystore");
    std::fs::create_dir_all(&dir)?;
    if let Some(keystores) = eip2335["keystores"].as_object() {
        for (kdf, keystore) in keystores {
            std::fs::write(dir.join(format!("vector-{kdf}")), keystore.to_string())?;
        }
    }
    let deposits = read("deposit.json")?;
    let dir = root.join("corpus/deposit_data");
    std::fs::create_dir_all(&dir)?;
    if let Some(entries) = deposits["entries"].as_array() {
        for (i, entry) in entries.iter().enumerate() {
            let entry = entry.get("entry").unwrap_or(entry);
            std::fs::write(dir.join(format!("vector-{i}")), format!("[{entry}]"))?;
        }
    }
    Ok(())
}
