//! Every input the fuzzers keep, run on stable in `make test` through the
//! same bodies the fuzz targets call (`tally_proto::fuzzing`):
//! `fuzz/seeds/TARGET/` (a small corpus: valid conversations and edge cases
//! the fuzzers start from and found coverage with) and
//! `fuzz/regressions/TARGET/` (each input that once crashed a target,
//! named after what it broke). A panic here is a regression.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.is_file()).collect();
    files.sort();
    files
}

#[test]
fn every_kept_fuzz_input_runs_clean() {
    let mut total = 0;
    for (target, body) in tally_proto::fuzzing::TARGETS {
        let seeds = inputs(&fuzz_dir().join("seeds").join(target));
        assert!(!seeds.is_empty(), "no seeds for the {target} target in fuzz/seeds/{target}/");
        let regressions = inputs(&fuzz_dir().join("regressions").join(target));
        for path in seeds.iter().chain(&regressions) {
            let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
            total += 1;
        }
    }
    eprintln!("{total} kept fuzz inputs ran clean");
}
