#!/usr/bin/env bash
# Builds the libFuzzer harnesses (fuzz/harnesses/*.cpp) with AddressSanitizer
# and UndefinedBehaviorSanitizer, linked against the core sources directly
# (the core is plain C++17: no Python involved).
#
#   fuzz/build.sh [OUT_DIR]      (default fuzz/build; needs clang++)
#
# Each harness becomes OUT_DIR/<name>. Objects are rebuilt when their source
# or any header is newer.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/fuzz/build}
cxx=${CXX:-clang++}
mkdir -p "$out/obj"

san=(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
flags=(-std=c++17 -O1 -gline-tables-only -Wall -Wextra "${san[@]}" -I"$root/csrc/include")
newest_header=$(find "$root/csrc" "$root/fuzz/harnesses" -name '*.hpp' -printf '%T@ %p\n' |
                sort -n | tail -1 | cut -d' ' -f2-)

stale() {  # stale OBJECT SOURCE: true when OBJECT must be rebuilt
    [[ ! -e $1 || $2 -nt $1 || $newest_header -nt $1 ]]
}

objects=()
pending=()
for src in "$root"/csrc/*/*.cpp; do
    [[ $src == "$root"/csrc/bindings/* ]] && continue  # the Python shims
    rel=${src#"$root"/csrc/}
    obj=$out/obj/${rel//\//_}.o
    objects+=("$obj")
    if stale "$obj" "$src"; then
        pending+=("$src" "$obj")
    fi
done
# FUZZ_BUILD_JOBS compiles at once (default: every core).
if ((${#pending[@]})); then
    printf -v compile '%q ' "$cxx" "${flags[@]}" -fsanitize=fuzzer-no-link
    export compile
    printf '%s\0' "${pending[@]}" |
        xargs -0 -n 2 -P "${FUZZ_BUILD_JOBS:-$(nproc)}" \
            bash -c 'echo "compile $(basename "$1")" && eval "$compile -c \"\$1\" -o \"\$2\""' _
fi
# CRoaring (C), for the aggregation pass the C interface reaches.
roaring=$root/csrc/third_party/croaring/roaring.c
objects+=("$out/obj/croaring.o")
if [[ ! -e $out/obj/croaring.o || $roaring -nt $out/obj/croaring.o ]]; then
    echo "compile croaring"
    "${CC:-clang}" -std=c11 -O1 -w "${san[@]}" -fsanitize=fuzzer-no-link -c "$roaring" \
        -o "$out/obj/croaring.o"
fi
rm -f "$out/libcore.a"
ar rcs "$out/libcore.a" "${objects[@]}"

for src in "$root"/fuzz/harnesses/*.cpp; do
    name=$(basename "$src" .cpp)
    echo "link $name"
    "$cxx" "${flags[@]}" -fsanitize=fuzzer "$src" "$out/libcore.a" -o "$out/$name"
done
