# Sourced by the device scripts that compare two builds (vk-device-compare.sh,
# vk-device-sweep.sh) on the lent GPU machine: installs the Vulkan loader
# packages from $DIR/gl, unpacks $DIR/new.tar.xz and $DIR/old.tar.xz into
# /tmp/new and /tmp/old, points at NVIDIA's ICD where the loader does not
# find it, prints the GPU, and defines step (a timestamped heading).
for f in "$DIR"/gl/*.deb; do dpkg -x "$f" /; done
ldconfig
for b in new old; do mkdir -p /tmp/$b && tar -C /tmp/$b -xJf "$DIR/$b.tar.xz"; done
export LD_LIBRARY_PATH=/tmp/new/lib
/tmp/new/squish-bench --backend vulkan --list-devices 2>/dev/null | grep -qi nvidia ||
    export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
t0=$(date +%s)
step() { echo "== +$(($(date +%s) - t0))s: $*"; }
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
