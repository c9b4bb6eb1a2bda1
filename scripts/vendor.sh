#!/usr/bin/env bash
# Vendors the third-party browser assets into assets/ from the npm registry.
# Called by the Taskfile `vendor` task. Change the versions here, run it,
# then update assets/VENDOR.md with the printed sha256 sums.
set -euo pipefail

HTMX_VERSION="${HTMX_VERSION:-2.0.11}"
PICO_VERSION="${PICO_VERSION:-2.1.1}"
HTMX_EXT_SSE_VERSION="${HTMX_EXT_SSE_VERSION:-2.2.4}"
IDIOMORPH_VERSION="${IDIOMORPH_VERSION:-0.8.0}"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
assets="$root/assets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() { # fetch PACKAGE@VERSION FILE-IN-PACKAGE DEST
	local spec="$1" file="$2" dest="$3" tgz
	mkdir -p "$work/$spec"
	tgz="$(cd "$work/$spec" && npm pack --silent "$spec")"
	tar -xzf "$work/$spec/$tgz" -C "$work/$spec" "package/$file"
	mkdir -p "$(dirname "$dest")"
	cp "$work/$spec/package/$file" "$dest"
	chmod 0644 "$dest"
	printf '%s  %s  (%s %s)\n' "$(sha256sum "$dest" | cut -d' ' -f1)" "${dest#"$root"/}" "$spec" "$file"
}

fetch "htmx.org@${HTMX_VERSION}" dist/htmx.min.js "$assets/htmx.min.js"
fetch "@picocss/pico@${PICO_VERSION}" css/pico.min.css "$assets/css/pico.min.css"
# htmx extensions: server-sent events (live access) and idiomorph morph swaps.
fetch "htmx-ext-sse@${HTMX_EXT_SSE_VERSION}" dist/sse.min.js "$assets/htmx-ext-sse.min.js"
fetch "idiomorph@${IDIOMORPH_VERSION}" dist/idiomorph-ext.min.js "$assets/idiomorph-ext.min.js"

grep -q "\"${HTMX_VERSION}\"" "$assets/htmx.min.js" || {
	echo "vendor.sh: htmx.min.js does not contain version ${HTMX_VERSION}" >&2
	exit 1
}
