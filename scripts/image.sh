#!/usr/bin/env bash
# Builds the operator image without a container daemon: a static release
# binary compiled here, put on an empty root filesystem by buildah (vfs
# storage, chroot isolation), written as an OCI archive, then checked:
# unpacked with umoci, its config read, and the binary run from the
# unpacked root filesystem as UID 65532.
#
#   scripts/image.sh            build and check target/image/vaultsync.oci.tar
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/target/image"
# The full reference, also as the archive's org.opencontainers.image.ref.name:
# a container runtime that imports the archive (`ctr images import`, which
# `kind load image-archive` runs) names the image by it, and a bare
# `vaultsync:dev` would be found by nobody (the CRI looks that up as
# docker.io/library/vaultsync:dev).
tag=localhost/vaultsync/vaultsync:dev

need() {
  local missing=()
  for tool in buildah umoci setpriv; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  [ ${#missing[@]} -eq 0 ] && return
  echo "image: installing buildah and umoci from Debian's packages" >&2
  [ "$(id -u)" -eq 0 ] || { echo "image: run as root, or install buildah and umoci" >&2; exit 1; }
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah umoci util-linux >/dev/null
}
need

host=$(rustc -vV | sed -n 's/^host: //p')
commit=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
echo "image: building a static vaultsync for $host (commit $commit)" >&2
(cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" VAULTSYNC_GIT_COMMIT="$commit" \
  cargo build --release --locked -p vaultsync --target "$host")
mkdir -p "$out"
cp "$root/target/$host/release/vaultsync" "$out/vaultsync"
# A dynamically linked binary names its loader (a PT_INTERP program
# header); such a binary would not start on an empty root filesystem.
python3 - "$out/vaultsync" <<'PY'
import struct, sys
elf = open(sys.argv[1], "rb").read()
assert elf[:4] == b"\x7fELF" and elf[4] == 2, "not a 64-bit ELF file"
phoff, = struct.unpack_from("<Q", elf, 0x20)
phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
kinds = [struct.unpack_from("<I", elf, phoff + i * phentsize)[0] for i in range(phnum)]
if 3 in kinds:
    sys.exit("image: target/image/vaultsync is dynamically linked; it would not run on an empty root filesystem")
PY

storage=(--storage-driver vfs)
buildah "${storage[@]}" bud --isolation chroot --quiet --build-arg BINARY_STAGE=prebuilt \
  --build-arg VAULTSYNC_GIT_COMMIT="$commit" -f "$root/Containerfile" -t "$tag" "$root" >/dev/null
rm -f "$out/vaultsync.oci.tar"
buildah "${storage[@]}" push --quiet "$tag" "oci-archive:$out/vaultsync.oci.tar:$tag" >/dev/null

# Check what was built, from the archive alone.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/oci"
tar -xf "$out/vaultsync.oci.tar" -C "$work/oci"
umoci unpack --image "$work/oci:$tag" "$work/bundle" >/dev/null
rootfs="$work/bundle/rootfs"
config="$work/bundle/config.json"
python3 - "$config" "$rootfs" <<'PY'
import json, os, sys
config, rootfs = json.load(open(sys.argv[1])), sys.argv[2]
process = config["process"]
user = (process["user"]["uid"], process["user"]["gid"])
assert user == (65532, 65532), f"image runs as {user}, not 65532:65532"
assert process["args"][:2] == ["/vaultsync", "run"], f"entrypoint and command are {process['args']}"
files = sorted(os.path.relpath(os.path.join(d, f), rootfs) for d, _, fs in os.walk(rootfs) for f in fs)
assert files == ["vaultsync"], f"the root filesystem must hold only the binary, not {files}"
for shell in ("bin/sh", "bin/bash", "bin/busybox"):
    assert not os.path.exists(os.path.join(rootfs, shell)), f"image has a shell: {shell}"
print("image: config ok (user 65532:65532, entrypoint /vaultsync run, no shell, one file)")
PY
as_nobody=(setpriv --reuid 65532 --regid 65532 --clear-groups)
chmod 755 "$work" "$work/bundle"
version=$("${as_nobody[@]}" "$rootfs/vaultsync" --version)
[[ "$version" == *"(commit $commit)"* ]] || { echo "image: --version says '$version', not commit $commit" >&2; exit 1; }
"${as_nobody[@]}" "$rootfs/vaultsync" crdgen >"$work/crds.yaml"
crd_count=$(find "$root/crds" -name '*.yaml' | wc -l)
[ "$(grep -c "^kind: CustomResourceDefinition" "$work/crds.yaml")" -eq "$crd_count" ] ||
  { echo "image: crdgen from the image did not print the $crd_count CRDs of crds/" >&2; exit 1; }
size=$(stat -c %s "$out/vaultsync.oci.tar")
echo "image: $tag ok: $version, runs as 65532 from the unpacked root filesystem; archive $out/vaultsync.oci.tar is $((size / 1024 / 1024)) MiB ($size bytes)"
