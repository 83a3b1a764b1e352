#!/bin/sh
# Make Fashion-MNIST available offline: the Debian package where we can (root + apt),
# otherwise a torchvision download into the user cache (needs a network).
PYTHON="${1:-python3}"
DEBIAN_DIR=/usr/share/datasets/fashion-mnist
if [ -f "$DEBIAN_DIR/t10k-labels-idx1-ubyte.gz" ]; then
    echo "Fashion-MNIST: found in $DEBIAN_DIR"
    exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "Fashion-MNIST: installing the Debian package dataset-fashion-mnist"
    apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null && exit 0
    echo "Fashion-MNIST: apt-get failed; trying a torchvision download" >&2
fi
exec "$PYTHON" -m mct_plugin.harness.cli data --dataset FashionMNIST --download
