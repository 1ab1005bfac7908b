#!/usr/bin/env bash
# Fuzzes the Go-template engine: each cargo-fuzz target in fuzz/ for
# SECONDS (default 60) on the nightly toolchain, starting from the
# committed fuzz/corpus/<target>/ and writing new inputs to the ignored
# fuzz/corpus-new/<target>/ (to keep some: `cargo +nightly fuzz cmin`, see
# fuzz/STATS.md). Exits non-zero when a target finds a crash, a timeout or
# an out-of-memory input; libFuzzer then names the input it saved under
# fuzz/artifacts/<target>/ (add it to the corpus once fixed, so the replay
# test in crates/template/tests/fuzz_corpus.rs keeps it fixed).
#
#   scripts/fuzz.sh [SECONDS]
set -euo pipefail

SECONDS_PER_TARGET="${1:-60}"
CARGO_FUZZ_VERSION=0.13.2
TARGETS=(template_parse template_render template_render_vault)

cd "$(dirname "$0")/../fuzz"

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz.sh: the nightly toolchain is needed (rustup toolchain install nightly)" >&2
    exit 2
fi
# cargo-fuzz is kept by version outside the repository, as scripts/tools.sh
# keeps the Go tools, so a warm `make test` does not build it again.
fuzz_root="${VAULTSYNC_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vaultsync}/cargo-fuzz-$CARGO_FUZZ_VERSION"
if ! "$fuzz_root/bin/cargo-fuzz" --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
    echo "fuzz.sh: building cargo-fuzz $CARGO_FUZZ_VERSION into $fuzz_root"
    cargo install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked --root "$fuzz_root"
fi
export PATH="$fuzz_root/bin:$PATH"

cargo +nightly fuzz build
status=0
for target in "${TARGETS[@]}"; do
    echo "fuzz.sh: $target for ${SECONDS_PER_TARGET}s"
    mkdir -p "corpus-new/$target"
    if ! cargo +nightly fuzz run "$target" "corpus-new/$target" "corpus/$target" -- \
        -dict=template.dict \
        -max_total_time="$SECONDS_PER_TARGET" \
        -rss_limit_mb=2048 \
        -timeout=5 \
        -max_len=4096 \
        -print_final_stats=1; then
        echo "fuzz.sh: $target failed; the input is under fuzz/artifacts/$target/" >&2
        status=1
    fi
done
exit "$status"
