#!/usr/bin/env bash
# The Vulkan benchmark on a lent GPU machine that has no build tools and no
# Vulkan loader (by hand; not part of the tests). Two halves:
#   scripts/vk-device.sh bundle      here: packs build/squish-bench,
#       build/squish-verify, build/squish-quantize and build/make-testdata (a
#       synthetic 1B-class model made there for the decode figures: 2.1 GB
#       does not travel) with the shared libraries they load (not libc/libm)
#       into .vkb/bundle.tar.xz; .gl/ must hold the loader packages
#       (see the device README): libvulkan1 libegl1 libglvnd0 libopengl0 libgl1
#       libglx0 libgles2, not libvulkan1 alone: on an H100 image without
#       libglvnd the NVIDIA ICD then fails ("Could not get 'vkCreateInstance'
#       via 'vk_icdGetInstanceProcAddr' for ICD libGLX_nvidia.so.0"). Both
#       folders are git-ignored and travel as carried paths.
#   scripts/vk-device.sh run [PART]  there: unpacks .gl/*.deb into / and the
#       bundle into /tmp/vkb, points the loader at the NVIDIA driver when it
#       finds no GPU by itself, then runs scripts/vk-tune.sh (PART 1, 2 or
#       table, default 1 and 2) with a 2048 MiB working set, or with PART 1b
#       scripts/vk-device-1b.sh (the 1B-class decode, CPU and device). The
#       table of docs/vulkan-gemv.md: `SHAPE_TIMEOUT=100 QUIP_TIMEOUT=15
#       scripts/vk-device.sh run table` (one 10-minute call).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
case "${1:-}" in
bundle)
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    mkdir -p "$tmp/lib" "$root/.vkb"
    bins="$root/build/squish-bench $root/build/squish-verify $root/build/squish-quantize $root/build/make-testdata"
    cp $bins "$tmp/"
    for f in $(ldd $bins | awk '$3 ~ /^\// { print $3 }' | sort -u); do
        case "$(basename "$f")" in libc.so.* | libm.so.*) ;; *) cp -L "$f" "$tmp/lib/" ;; esac
    done
    strip "$tmp"/squish-* "$tmp"/make-testdata
    tar -C "$tmp" -cJf "$root/.vkb/bundle.tar.xz" .
    ls -l "$root/.vkb/bundle.tar.xz"
    ;;
run)
    for f in "$root"/.gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
    rm -rf /tmp/vkb && mkdir -p /tmp/vkb && tar -C /tmp/vkb -xJf "$root/.vkb/bundle.tar.xz"
    export LD_LIBRARY_PATH=${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/tmp/vkb/lib
    B=/tmp/vkb/squish-bench
    "$B" --list-devices 2>/dev/null | grep -qi nvidia ||
        export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
    if [ "${2:-}" = 1b ]; then BIN=/tmp/vkb bash "$root/scripts/vk-device-1b.sh"; else PART=${2:-} bash "$root/scripts/vk-tune.sh" "$B" 2048; fi
    ;;
*)
    echo "usage: scripts/vk-device.sh bundle | run [1|2|table|1b]" >&2
    exit 2
    ;;
esac
