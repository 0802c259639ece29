//! Replays the committed corpus of every fuzz target, and the crash reproducers kept beside
//! it, so an ordinary `cargo test` runs every target over what the fuzzer found.

use std::path::{Path, PathBuf};

use unlock_fuzz_targets::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files in `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_replays_its_corpus_and_kept_crashes() {
    for (name, target) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name}/ has no inputs");
        let kept = files(&fuzz_dir().join("artifacts").join(name));
        for input in corpus.iter().chain(&kept) {
            let data = std::fs::read(input).expect("read a corpus file");
            let replay = std::panic::catch_unwind(|| target(&data));
            assert!(replay.is_ok(), "{name} panicked on {}", input.display());
        }
    }
}

#[test]
fn every_target_has_a_cargo_fuzz_binary_and_every_binary_a_target() {
    let mut binaries: Vec<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|path| Some(path.file_stem()?.to_str()?.to_owned()))
        .collect();
    binaries.sort();
    let mut names: Vec<String> = TARGETS.iter().map(|(name, _)| (*name).to_owned()).collect();
    names.sort();
    assert_eq!(binaries, names);
}
