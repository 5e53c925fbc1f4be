#!/usr/bin/env bash
# Prints the path of the versitygw binary (an S3 server with a posix backend) that the S3
# tests run on loopback, building it once from the Go module proxy when it is missing
# (about 8 minutes on 2 cores). It is kept outside the clone, where later runs on the same
# machine (CI included) find it, as staticcheck is (scripts/staticcheck.sh).
set -euo pipefail
version=v1.8.0
dir=${ECOMSTREAM_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ecomstream-tools}/versitygw-$version
bin=$dir/versitygw
if [ ! -x "$bin" ]; then
  echo "versitygw $version: building it once into $dir" >&2
  GOBIN=$dir go install "github.com/versity/versitygw/cmd/versitygw@$version" >&2
fi
echo "$bin"
