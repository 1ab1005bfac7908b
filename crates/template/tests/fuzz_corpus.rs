//! Replays the fuzzers' corpus (`fuzz/corpus/<target>/`) through the same
//! functions the cargo-fuzz targets call, on the stable toolchain: every
//! input the fuzzer kept, including each crash it found once, must parse
//! and render without a panic, and every render must stop near its budget.

use std::cell::Cell;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::{Duration, Instant};

use vaultsync_template::fuzzing::{BUDGET, parse_input, render_input, render_vault_input};

/// How far past its budget a render may end: one function call (a
/// PKCS#12 key derivation in an unoptimised build, say) is not interrupted.
const GRACE: Duration = Duration::from_secs(5);

thread_local! {
    /// Panics on this thread, even those the engine catches and turns into
    /// an error (the Vault agent dialect does): a fuzzer reports those as
    /// crashes, so a replay must too.
    static PANICS: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` and says whether anything panicked on this thread meanwhile.
fn panics_in<T>(f: impl FnOnce() -> T) -> (T, bool) {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.with(|count| count.set(count.get() + 1));
            previous(info);
        }));
    });
    let before = PANICS.with(Cell::get);
    let value = f();
    (value, PANICS.with(Cell::get) != before)
}

fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

#[test]
fn parse_corpus_never_panics() {
    for path in corpus("template_parse") {
        let input = fs::read(&path).expect("corpus file");
        let ((), panicked) = panics_in(|| parse_input(&input));
        assert!(!panicked, "{} panicked", path.display());
    }
}

#[test]
fn render_corpus_never_panics_and_keeps_its_budget() {
    for path in corpus("template_render") {
        let input = fs::read(&path).expect("corpus file");
        let started = Instant::now();
        let (_, panicked) = panics_in(|| render_input(&input, BUDGET));
        let took = started.elapsed();
        assert!(!panicked, "{} panicked", path.display());
        assert!(took < BUDGET + GRACE, "{} took {took:?}", path.display());
    }
}

/// The Vault agent dialect's corpus, and the ESO one's inputs too (most
/// fail to parse there, which is what they should do, without a panic).
#[test]
fn vault_agent_corpus_never_panics_and_keeps_its_budget() {
    let budget = vaultsync_template::Limits::default().time;
    for path in corpus("template_render_vault").into_iter().chain(corpus("template_render")) {
        let input = fs::read(&path).expect("corpus file");
        let started = Instant::now();
        let (_, panicked) = panics_in(|| render_vault_input(&input));
        let took = started.elapsed();
        assert!(!panicked, "{} panicked", path.display());
        assert!(took < budget + GRACE, "{} took {took:?}", path.display());
    }
}
