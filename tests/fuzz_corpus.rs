//! Replays the committed fuzz corpus (fuzz/corpus/api_sequence) through the
//! same decoder and checks as the fuzz target; part of `make test`.

#[path = "support/api_sequence.rs"]
mod api_sequence;

#[test]
fn corpus_replays_clean() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/api_sequence");
    let mut inputs: Vec<_> = std::fs::read_dir(&dir).expect("fuzz corpus directory").map(|e| e.unwrap().path()).collect();
    inputs.sort();
    assert!(!inputs.is_empty(), "the corpus is empty");
    for path in &inputs {
        let data = std::fs::read(path).unwrap();
        let result = std::panic::catch_unwind(|| api_sequence::run(&data));
        assert!(result.is_ok(), "input {} broke a promise", path.display());
    }
    println!("replayed {} corpus inputs", inputs.len());
}
